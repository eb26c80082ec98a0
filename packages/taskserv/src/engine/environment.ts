/** The environment of one item: global env, settings (secret references resolved), host and item variables. */
import { configError, isSecretRef, registerSecretValue, type SecretResolver } from '@prov/core'
import type { TaskItem, TaskRunOptions } from './types'

/** `db_port` -> `PROV_SETTING_DB_PORT`. */
export function settingEnvName(key: string): string {
  return `PROV_SETTING_${key.replace(/[^A-Za-z0-9]+/g, '_').toUpperCase()}`
}

function envValue(value: unknown): string {
  if (value === null || value === undefined) return ''
  if (typeof value === 'string') return value
  if (typeof value === 'number' || typeof value === 'boolean') return String(value)
  return JSON.stringify(value)
}

async function resolveValue(value: unknown, resolver: SecretResolver | undefined, where: string): Promise<string> {
  if (isSecretRef(value)) {
    if (!resolver) throw configError(`secret reference '${value.secret}' in ${where} but no secret resolver is configured`, { hint: 'set secrets.provider' })
    const plain = await resolver.get(value.secret)
    registerSecretValue(plain)
    return plain
  }
  return envValue(value)
}

/** The environment of one item, secret references resolved (never logged: values are registered for redaction). */
export async function taskEnvironment<T>(
  item: TaskItem<T>,
  options: Pick<TaskRunOptions<T>, 'env' | 'resolver' | 'timeoutSec'>,
): Promise<Record<string, string>> {
  const env: Record<string, string> = {}
  for (const [key, value] of Object.entries(options.env ?? {})) {
    if (/^[A-Za-z_][A-Za-z0-9_]*$/.test(key)) env[key] = await resolveValue(value, options.resolver, `taskservs.env.${key}`)
  }
  for (const [key, value] of Object.entries(item.unit.settings ?? {})) {
    env[settingEnvName(key)] = await resolveValue(value, options.resolver, `settings.${key} of ${item.unit.name}`)
  }
  Object.assign(env, item.host.env ?? {}, item.env ?? {}, {
    PROV_TASKSERV: item.unit.name,
    PROV_VERSION: item.unit.version,
    PROV_ACTION: item.action,
    PROV_SERVER: item.host.name,
    PROV_TIMEOUT: String(Math.max(1, Math.round(options.timeoutSec ?? 600))),
    PROV_SERVICES: (item.unit.services?.length ? item.unit.services : [item.unit.name]).join(' '),
  })
  return env
}
