/**
 * Types a taskserv manifest can give its settings (`setting_types:`). prov checks every value
 * against its type before anything connects (plan time) and again once secret references are
 * resolved (run time), so a script can use a typed setting in a config file or a command line as
 * it is: a `port` is a number, a `name` cannot close a quote, a `host` holds no space or newline.
 */
import { isSecretRef } from '@prov/core'

export const SETTING_TYPES = ['port', 'integer', 'boolean', 'name', 'host', 'hosts', 'endpoints', 'path', 'size', 'word', 'line', 'text', 'secret'] as const
export type SettingType = (typeof SETTING_TYPES)[number]

const HOST = '(?:[A-Za-z0-9](?:[A-Za-z0-9.-]{0,251}[A-Za-z0-9])?|[0-9A-Fa-f:.]{2,45}|\\[[0-9A-Fa-f:.]{2,45}\\])'
const PORT = '(?:[1-9][0-9]{0,4})'
const inPortRange = (text: string) => Number(text) >= 1 && Number(text) <= 65535

interface TypeRule {
  /** What a value must be, for messages ("a port (1-65535)"). */
  describe: string
  accepts(value: string | number | boolean): boolean
}

const pattern = (regex: RegExp) => (value: string | number | boolean) => typeof value === 'string' && regex.test(value)

export const SETTING_TYPE_RULES: Record<SettingType, TypeRule> = {
  port: {
    describe: 'a port (1-65535)',
    accepts: (v) => (typeof v === 'number' || typeof v === 'string') && /^[0-9]{1,5}$/.test(String(v)) && inPortRange(String(v)),
  },
  integer: {
    describe: 'a whole number',
    accepts: (v) => (typeof v === 'number' && Number.isSafeInteger(v)) || (typeof v === 'string' && /^-?[0-9]{1,15}$/.test(v)),
  },
  boolean: { describe: 'true or false', accepts: (v) => typeof v === 'boolean' || v === 'true' || v === 'false' },
  name: { describe: 'a name (letters, digits, _ and -, starting with a letter or _, at most 63)', accepts: pattern(/^[A-Za-z_][A-Za-z0-9_-]{0,62}$/) },
  host: { describe: 'a host name or IP address', accepts: pattern(new RegExp(`^${HOST}$`)) },
  hosts: { describe: "'*' or host names / IP addresses separated by commas or spaces", accepts: pattern(new RegExp(`^(?:\\*|${HOST}(?:[, ]+${HOST})*)$`)) },
  endpoints: {
    describe: 'host:port pairs separated by commas',
    accepts: (v) =>
      typeof v === 'string' &&
      new RegExp(`^${HOST}:${PORT}(?:,${HOST}:${PORT})*$`).test(v) &&
      v.split(',').every((pair) => inPortRange(pair.slice(pair.lastIndexOf(':') + 1))),
  },
  path: {
    describe: "an absolute path below / (segments of letters, digits and _ . @ + -, no '.' or '..')",
    accepts: (v) => typeof v === 'string' && /^(\/[A-Za-z0-9_.@+-]+)+\/?$/.test(v) && !v.split('/').some((part) => part === '..' || part === '.'),
  },
  size: {
    describe: 'a size such as 512mb or 2g',
    accepts: (v) => (typeof v === 'number' && Number.isSafeInteger(v) && v >= 0) || pattern(/^[0-9]{1,15}(?:[kKmMgGtT][bB]?|[bB])?$/)(v),
  },
  word: { describe: 'one word (letters, digits and _ . : / @ + = -)', accepts: pattern(/^[A-Za-z0-9_.:/@+=-]+$/) },
  line: { describe: 'one line of text (no control characters)', accepts: (v) => typeof v !== 'string' || !/[\x00-\x1f\x7f]/.test(v) },
  text: { describe: 'text', accepts: () => true },
  secret: { describe: 'a secret reference ({secret: name})', accepts: () => false },
}

/**
 * Why a value does not fit its type, or undefined. A secret reference fits every type but
 * `secret` needs one; its value is checked once resolved (`resolved: true`).
 */
export function settingTypeProblem(type: SettingType, value: unknown, resolved = false): string | undefined {
  const rule = SETTING_TYPE_RULES[type]
  if (isSecretRef(value)) return undefined
  if (type === 'secret') return resolved ? undefined : `must be ${rule.describe}`
  if (value === null || value === undefined) return undefined
  if (typeof value !== 'string' && typeof value !== 'number' && typeof value !== 'boolean') return `must be ${rule.describe}, not a list or map`
  return rule.accepts(value) ? undefined : `must be ${rule.describe}`
}
