// Entry `@prov/core/config-schema`: the zod schema of the configuration and JSON Schema output
// (kept apart from `@prov/core/config` so loading config does not load zod).
export { toJSONSchema } from 'zod'
export * from './schema'
export { validateConfig } from './validate'
