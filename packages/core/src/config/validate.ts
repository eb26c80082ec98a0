import type { z } from 'zod'
import { configError } from '../errors'
import { didYouMean } from '../suggest'
import { type ConfigLayer, locateIn } from './load'
import { getPath } from './merge'
import { configSchema, type ProvConfig } from './schema'

/*
 * Schema validation of the merged configuration. Loaded on demand by load.ts (zod is heavy to
 * start); `validateConfig` turns the first zod issue into one config error.
 */

function describeType(value: unknown): string {
  if (value === null) return 'null'
  if (Array.isArray(value)) return 'a list'
  if (typeof value === 'object') return 'a mapping'
  return `${typeof value} ${JSON.stringify(value)}`
}

/** zod issue -> one config error naming key, file:line, and the nearest valid key. */
function toConfigError(issue: z.core.$ZodIssue, config: Record<string, unknown>, layers: ConfigLayer[]) {
  const path = issue.path.map(String)
  if (issue.code === 'unrecognized_keys') {
    const unknown = issue.keys[0]
    const key = [...path, unknown].join('.')
    const parent = path.length ? getPath(configSchemaShape(), path.join('.')) : configSchemaShape()
    const valid = parent && typeof parent === 'object' ? Object.keys(parent as object) : []
    return configError(`unknown config key '${key}'`, {
      location: locateIn(layers, key),
      hint: didYouMean(unknown, valid) ?? (valid.length ? `valid keys here: ${valid.join(', ')}` : undefined),
    })
  }
  const key = path.join('.')
  const value = getPath(config, key)
  return configError(
    `invalid config value for '${key}': ${issue.message.replace(/^Invalid input: /, '')}${value === undefined ? '' : ` (got ${describeType(value)})`}`,
    {
      location: locateIn(layers, key),
    },
  )
}

/** The nested key structure of the schema, for "did you mean" hints. */
function configSchemaShape(): Record<string, unknown> {
  return shapeOf(configSchema) as Record<string, unknown>
}
function shapeOf(schema: unknown): unknown {
  const def = (schema as { _zod?: { def?: { type?: string; shape?: Record<string, unknown>; innerType?: unknown } } })._zod?.def
  if (!def) return {}
  if (def.type === 'optional' || def.type === 'default') return shapeOf(def.innerType)
  if (def.type === 'object' && def.shape) return Object.fromEntries(Object.entries(def.shape).map(([k, v]) => [k, shapeOf(v)]))
  return {}
}

/** Validates a merged config; the first problem becomes a config error (exit 3). */
export function validateConfig(config: Record<string, unknown>, layers: ConfigLayer[] = []): ProvConfig {
  const result = configSchema.safeParse(config)
  if (!result.success) throw toConfigError(result.error.issues[0], config, layers)
  return result.data
}
