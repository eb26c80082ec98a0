/**
 * The environment of one item: global env, settings (secret references resolved), host and item
 * variables. Every name is checked and every value is plain data here: the program carries them
 * as a data section that the target reads without parsing it as shell (see program.ts).
 */
import { configError, isSecretFieldName, isSecretRef, registerSecretValue, type SecretResolver } from '@prov/core'
import { settingTypeProblem } from './setting-types'
import type { TaskItem, TaskRunOptions } from './types'

/** A shell variable name. */
export const ENV_NAME_PATTERN = /^[A-Za-z_][A-Za-z0-9_]*$/
/** A setting key: letters, digits, `_` and `-` (which becomes `_` in its variable). */
export const SETTING_KEY_PATTERN = /^[A-Za-z][A-Za-z0-9_-]*$/
/** Keys that would reach an object's prototype machinery when merged. */
const RESERVED_KEYS = new Set(['constructor', 'prototype'])
/** Largest value of one variable, and of all variables of an item together. */
export const MAX_ENV_VALUE_BYTES = 128 * 1024
export const MAX_ENV_TOTAL_BYTES = 1024 * 1024

/** `db_port` / `db-port` -> `PROV_SETTING_DB_PORT`. */
export function settingEnvName(key: string): string {
  return `PROV_SETTING_${key.replace(/[^A-Za-z0-9]+/g, '_').toUpperCase()}`
}

/**
 * Checks the keys of a settings map: the pattern, and no two keys naming the same variable
 * (`db-port` and `db_port`). Returns an error message, or undefined when they are fine.
 */
export function settingKeyProblem(settings: Record<string, unknown>): string | undefined {
  const seen = new Map<string, string>()
  for (const key of Object.keys(settings)) {
    if (!SETTING_KEY_PATTERN.test(key) || RESERVED_KEYS.has(key)) return `invalid setting name '${key}' (letters, digits, _ and -, starting with a letter)`
    const variable = settingEnvName(key)
    const other = seen.get(variable)
    if (other !== undefined) return `settings '${other}' and '${key}' both become ${variable}`
    seen.set(variable, key)
  }
  return undefined
}

/** The text a setting value becomes in its variable (objects and lists as JSON). */
export function envValue(value: unknown): string {
  if (value === null || value === undefined) return ''
  if (typeof value === 'string') return value
  if (typeof value === 'number' || typeof value === 'boolean') return String(value)
  return JSON.stringify(value)
}

/** Why a value cannot be a variable's value (a NUL byte, too large), or undefined. */
export function envValueProblem(value: string): string | undefined {
  if (value.includes('\0')) return 'contains a NUL character, which an environment variable cannot hold'
  if (Buffer.byteLength(value) > MAX_ENV_VALUE_BYTES) return `is larger than ${MAX_ENV_VALUE_BYTES / 1024} KiB`
  return undefined
}

/** Registers a secret for redaction, each of its lines too (scripts print line by line). */
function registerSecret(value: string): void {
  registerSecretValue(value)
  for (const line of value.split(/\r?\n/)) registerSecretValue(line)
}

async function resolveValue(value: unknown, resolver: SecretResolver | undefined, where: string, secretName: boolean): Promise<string> {
  if (isSecretRef(value)) {
    if (!resolver) throw configError(`secret reference '${value.secret}' in ${where} but no secret resolver is configured`, { hint: 'set secrets.provider' })
    const plain = await resolver.get(value.secret)
    registerSecret(plain)
    return plain
  }
  const text = envValue(value)
  // A password given in plain text (not as a reference) is still never shown.
  if (secretName) registerSecret(text)
  return text
}

/**
 * The environment of one item, secret references resolved (never logged: values are registered
 * for redaction). Throws a configuration error for a name or value no variable can carry.
 */
export async function taskEnvironment<T>(
  item: TaskItem<T>,
  options: Pick<TaskRunOptions<T>, 'env' | 'resolver' | 'timeoutSec'>,
): Promise<Record<string, string>> {
  const env: Record<string, string> = {}
  for (const [key, value] of Object.entries(options.env ?? {})) {
    if (!ENV_NAME_PATTERN.test(key))
      throw configError(`invalid variable name '${key}' in taskservs.env`, { location: 'taskservs.env', hint: 'letters, digits and _' })
    env[key] = await resolveValue(value, options.resolver, `taskservs.env.${key}`, isSecretFieldName(key))
  }
  const settings = item.unit.settings ?? {}
  const keyProblem = settingKeyProblem(settings)
  if (keyProblem) throw configError(`${keyProblem} (taskserv ${item.unit.name})`)
  for (const [key, value] of Object.entries(settings)) {
    const text = await resolveValue(value, options.resolver, `settings.${key} of ${item.unit.name}`, isSecretFieldName(key))
    const type = item.unit.settingTypes?.[key]
    const problem = type && settingTypeProblem(type, isSecretRef(value) ? text : value, true)
    if (problem) throw configError(`setting '${key}' of ${item.unit.name} ${problem}${isSecretRef(value) ? ` (the value of secret '${value.secret}')` : ''}`)
    env[settingEnvName(key)] = text
  }
  Object.assign(env, item.host.env ?? {}, item.env ?? {}, {
    PROV_TASKSERV: item.unit.name,
    PROV_VERSION: item.unit.version,
    PROV_ACTION: item.action,
    PROV_SERVER: item.host.name,
    PROV_TIMEOUT: String(Math.max(1, Math.round(options.timeoutSec ?? 600))),
    PROV_SERVICES: (item.unit.services?.length ? item.unit.services : [item.unit.name]).join(' '),
  })
  let total = 0
  for (const [key, value] of Object.entries(env)) {
    if (!ENV_NAME_PATTERN.test(key)) throw configError(`invalid variable name '${key}' for taskserv ${item.unit.name}`)
    const problem = envValueProblem(value)
    if (problem) throw configError(`the value of ${key} for taskserv ${item.unit.name} ${problem}`)
    total += Buffer.byteLength(key) + Buffer.byteLength(value)
  }
  if (total > MAX_ENV_TOTAL_BYTES) throw configError(`the environment of taskserv ${item.unit.name} is larger than ${MAX_ENV_TOTAL_BYTES / 1024} KiB`)
  return env
}
