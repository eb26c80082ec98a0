import { createRequire } from 'node:module'

/**
 * Synchronous lazy loading of dependencies that only some commands need, so that a binary's
 * cold start (`--version`, `list`) does not pay for YAML, semver or zod (benchmark P1).
 */
const require = createRequire(import.meta.url)

function lazy<T>(id: string): () => T {
  let loaded: T | undefined
  return () => {
    loaded ??= require(id) as T
    return loaded
  }
}

export const yamlLib = lazy<typeof import('yaml')>('yaml')
export const semverLib = lazy<typeof import('semver')>('semver')
export const zodLib = lazy<typeof import('zod')>('zod')
export const consolaLib = lazy<typeof import('consola')>('consola')
