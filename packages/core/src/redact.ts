/**
 * Redaction of secret-looking fields and values, applied to every log line and error line.
 * Field names like password/secret/token/key have their values replaced; values that look like
 * private keys, age identities or known token formats are replaced wherever they appear.
 */
export const REDACTED = '[redacted]'

const secretFieldPattern =
  /(pass(word|wd|phrase)?|secret|token|api[_-]?key|private[_-]?key|access[_-]?key|secret[_-]?key|^key$|_key$|credential|auth(orization)?$|identity|cookie|session)/i
const harmlessFieldPattern = /^(key_id|keyid|public_key|publickey|recipient|recipients|key_path|identity_file|token_url|.*_ref)$/i

const secretValuePatterns: RegExp[] = [
  /-----BEGIN [A-Z ]*PRIVATE KEY-----[\s\S]*?(-----END [A-Z ]*PRIVATE KEY-----|$)/g,
  /AGE-SECRET-KEY-1[0-9A-Z]+/g,
  /\bAKIA[0-9A-Z]{16}\b/g,
  /\bgh[pousr]_[A-Za-z0-9]{30,}\b/g,
  /\bglpat-[A-Za-z0-9_-]{20,}\b/g,
  /\bxox[abpr]-[A-Za-z0-9-]{10,}\b/g,
  /\bhvs\.[A-Za-z0-9_-]{20,}\b/g,
  /\beyJ[A-Za-z0-9_-]{8,}\.[A-Za-z0-9_-]{8,}\.[A-Za-z0-9_-]{8,}\b/g,
  /(Bearer|Basic)\s+[A-Za-z0-9._~+/=-]{8,}/g,
  /(\b[a-z][a-z0-9+.-]*:\/\/[^:/\s]+:)[^@\s]+(@)/gi,
]

/** Known secret values registered at run time (for example a secret just resolved). */
const knownSecrets = new Set<string>()
/** The same, longest first: a longer form (an escaped one) is replaced before a shorter one inside it. */
let knownByLength: string[] = []

/** Secret values shorter than this are not registered (they would redact ordinary words); resolvers warn about them. */
export const MIN_REDACTED_SECRET_LENGTH = 4

/**
 * The ways a program commonly prints a value: JSON-escaped (`jq --arg`, `JSON.stringify`, with
 * `\u00e9` escapes too), shell-quoted (`set -x` / `printf %q`: `'It'\''s'`, `It\'s`) and
 * backslash-escaped for double quotes. base64/hex encodings are not derived (a limit).
 */
function printedForms(value: string): string[] {
  const json = JSON.stringify(value).slice(1, -1)
  const unicode = (upper: boolean) =>
    json.replace(/[\u007f-\uffff]/g, (c) => {
      const hex = c.charCodeAt(0).toString(16).padStart(4, '0')
      return `\\u${upper ? hex.toUpperCase() : hex}`
    })
  return [
    json,
    unicode(false),
    unicode(true),
    value.replace(/'/g, "'\\''"),
    value.replace(/'/g, `'"'"'`),
    value.replace(/[^A-Za-z0-9_\-.,:/@%+=^~]/g, '\\$&'),
    value.replace(/["\\$`]/g, '\\$&'),
  ]
}

/**
 * Registers a value to be redacted from every later log line (values shorter than 4 chars are
 * ignored), with its escaped forms (JSON, shell quoting). Each line of a multi-line value is
 * registered too: output is often read line by line (a last stderr line in an error, a log
 * chunk), so the whole value never appears there.
 */
export function registerSecretValue(value: string): void {
  if (!value || value.length < MIN_REDACTED_SECRET_LENGTH) return
  const add = (text: string) => {
    for (const form of [text, ...printedForms(text)]) if (form.length >= MIN_REDACTED_SECRET_LENGTH) knownSecrets.add(form)
  }
  add(value)
  if (/[\r\n]/.test(value))
    for (const line of value.split(/\r?\n|\r/)) {
      const trimmed = line.trim()
      if (trimmed.length >= MIN_REDACTED_SECRET_LENGTH) add(trimmed)
    }
  knownByLength = [...knownSecrets].sort((a, b) => b.length - a.length)
}

export function isSecretFieldName(name: string): boolean {
  return secretFieldPattern.test(name) && !harmlessFieldPattern.test(name)
}

/** Replaces only the values registered with registerSecretValue (for data such as step outputs, where patterns would corrupt fields). */
export function redactKnownSecrets(text: string): string {
  let out = text
  for (const secret of knownByLength) if (out.includes(secret)) out = out.split(secret).join(REDACTED)
  return out
}

/**
 * Replaces known secret values and secret-looking tokens (keys, identities, token formats, URL
 * credentials) wherever they appear. Safe for locations: `secret.yaml: steps[0].env.PW` stays.
 */
export function redactSecretValues(text: string): string {
  let out = redactKnownSecrets(text)
  for (const pattern of secretValuePatterns) {
    out = out.replace(pattern, (match, ...groups) => {
      // URL credentials keep scheme/user and '@'.
      if (typeof groups[0] === 'string' && match.includes('://') && typeof groups[1] === 'string') {
        return `${groups[0]}${REDACTED}${groups[1]}`
      }
      if (/^(Bearer|Basic)\s/.test(match)) return `${match.split(/\s/)[0]} ${REDACTED}`
      return REDACTED
    })
  }
  return out
}

/** `secret.yaml: steps[0]` names a file and a place in it, not a field holding a secret. */
const fileNamePattern = /\.(ya?ml|json|toml|txt|age|sops|env|md|[cm]?[jt]s|sh|conf|cfg|ini|log|db|sock|pem|enc|tar|gz)$/i

/**
 * Redacts secret values and the values of `key=value` / `"key": "value"` pairs whose key names a
 * secret, inside free text such as log lines and error messages. A name inside an indexed path
 * (`steps[0].env.PW.secret: ...`) or a file name (`secrets/db.yaml: ...`) is a place named by an
 * error message, not a field holding a value; `{secret: db/password}` (also as the value of
 * `token: {secret: NAME}`) is a reference, not a value, and `...` a placeholder.
 */
export function redactString(text: string): string {
  let out = redactSecretValues(text)
  out = out.replace(
    /(?<![/\w.\]-])([A-Za-z0-9_./-]*(?:password|passwd|secret|token|api[_-]?key|private[_-]?key)[A-Za-z0-9_.-]*)(\s*[=:]\s*)("[^"]*"|'[^']*'|[^\s,;}&)]+)/gi,
    (match, name: string, sep: string, value: string, offset: number, whole: string) => {
      if (harmlessFieldPattern.test(name) || value === REDACTED) return match
      // `token: {secret: NAME}` points into the secret store and `PASSWORD=...` is a hint's
      // placeholder: neither is a value, and redacting them leaves a hint nobody can follow.
      if (/^\{\s*"?secret"?\s*:/i.test(value) || /^(\.\.\.|…)$/.test(value)) return match
      if (/^"?secret"?$/i.test(name) && /\{\s*"?$/.test(whole.slice(Math.max(0, offset - 3), offset))) return match
      if (fileNamePattern.test(name)) return match
      return `${name}${sep}${REDACTED}`
    },
  )
  return out
}

/** Deep copy with secret-named fields and secret-looking values redacted. */
export function redactValue<T>(value: T, depth = 0): T {
  if (depth > 20) return value
  if (typeof value === 'string') return redactString(value) as T
  if (Array.isArray(value)) return value.map((v) => redactValue(v, depth + 1)) as T
  if (value && typeof value === 'object') {
    if (value instanceof Error) return value
    const out: Record<string, unknown> = {}
    for (const [k, v] of Object.entries(value as Record<string, unknown>)) {
      if (isSecretFieldName(k) && v !== null && v !== undefined && typeof v !== 'object' && v !== '') out[k] = REDACTED
      else out[k] = redactValue(v, depth + 1)
    }
    return out as T
  }
  return value
}
