/** Encryption context (additional authenticated data): `--context env=prod,service=api`. */
import { usageError } from '@prov/core'

export type EncryptionContext = Record<string, string>

/**
 * Context keys prov-kms sets itself to bind a `--field` ciphertext to its place: the field's
 * dotted path and the identity of its record. A user context may not use the `prov:` prefix,
 * so nobody can pass a binding off as their own context (or the other way round).
 */
export const FIELD_KEY = 'prov:field'
export const RECORD_KEY = 'prov:record'
const reservedPrefix = 'prov:'
const prototypeKeys = new Set(['__proto__', 'constructor', 'prototype'])

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
      if (key.startsWith(reservedPrefix)) {
        throw usageError(`--context key '${key}' is reserved`, {
          location: '--context',
          hint: `keys starting with '${reservedPrefix}' are set by prov-kms itself`,
        })
      }
      if (prototypeKeys.has(key)) throw usageError(`--context key '${key}' is not allowed`, { location: '--context', hint: 'choose another key name' })
      if (Object.hasOwn(context, key)) throw usageError(`--context repeats key '${key}'`, { location: '--context' })
      context[key] = pair.slice(eq + 1).trim()
    }
  }
  return context
}

/** Where a `--field` value belongs: its dotted path and, when the record has one, its identity. */
export interface FieldPlace {
  path: string
  record?: string
}

/** The context a field ciphertext is sealed and opened with: the user's plus the binding. */
export function boundContext(context: EncryptionContext, place: FieldPlace): EncryptionContext {
  return { ...context, [FIELD_KEY]: place.path, ...(place.record === undefined ? {} : { [RECORD_KEY]: place.record }) }
}

/** Canonical bytes of a context: keys sorted, JSON-encoded pairs (no ambiguity with ',' or '='). */
export function canonicalContext(context: EncryptionContext): Buffer {
  const entries = Object.keys(context)
    .sort()
    .map((key) => [key, context[key]])
  return Buffer.from(JSON.stringify(entries))
}
