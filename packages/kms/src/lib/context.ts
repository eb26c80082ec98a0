/** Encryption context (additional authenticated data): `--context env=prod,service=api`. */
import { usageError } from '@prov/core'

export type EncryptionContext = Record<string, string>

/** Parses one or more `k=v,k=v` flags; a repeated key or a pair without '=' is a usage error. */
export function parseContext(raw: unknown): EncryptionContext {
  const values = raw === undefined || raw === false ? [] : ([raw].flat() as unknown[]).map(String)
  const context: EncryptionContext = {}
  for (const value of values) {
    for (const pair of value.split(',')) {
      if (!pair.trim()) continue
      const eq = pair.indexOf('=')
      if (eq <= 0) throw usageError(`bad --context entry '${pair}'`, { location: '--context', hint: 'use key=value pairs separated by commas' })
      const key = pair.slice(0, eq).trim()
      if (key in context) throw usageError(`--context repeats key '${key}'`, { location: '--context' })
      context[key] = pair.slice(eq + 1).trim()
    }
  }
  return context
}

/** Canonical bytes of a context: keys sorted, JSON-encoded pairs (no ambiguity with ',' or '='). */
export function canonicalContext(context: EncryptionContext): Buffer {
  const entries = Object.keys(context)
    .sort()
    .map((key) => [key, context[key]])
  return Buffer.from(JSON.stringify(entries))
}
