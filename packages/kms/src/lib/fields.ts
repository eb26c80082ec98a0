/**
 * Record streams: encrypt or decrypt one field (dotted path) in each JSON/NDJSON record and pass
 * everything else through. Output framing follows the input: NDJSON in -> NDJSON out (streamed
 * line by line), a JSON array -> a JSON array, one JSON object -> one JSON object.
 */
import { assertSafeStructure, formatBytes, inputLimitBytes, isSecretRef, MAX_INPUT_DEPTH, usageError } from '@prov/core'
import type { FieldPlace } from './context'
import { ByteReader, type ByteSource, writeOut } from './io'

/** Transforms one field value; `place` is where it sits (what its ciphertext is bound to). */
export type FieldTransform = (value: unknown, place: FieldPlace) => Promise<unknown>

const forbiddenSegments = new Set(['__proto__', 'constructor', 'prototype'])

function splitPath(path: string): string[] {
  const parts = path.split('.')
  if (!path || parts.some((p) => !p))
    throw usageError(`bad field path '${path}'`, { location: '--field', hint: 'use a dotted path such as password or db.password' })
  const bad = parts.find((p) => forbiddenSegments.has(p))
  if (bad) throw usageError(`field path '${path}' names '${bad}', which is never a data field`, { location: '--field' })
  return parts
}

/**
 * Keys that identify a record, in order of preference. The first one present decides: when it
 * is a plain string or number, its value binds the record's field ciphertexts; when it is itself
 * one of the transformed fields or already a ciphertext, the record has no identity (the same
 * answer on encrypt and on decrypt, so the binding always matches).
 */
const identityKeys = ['name', 'id'] as const

function recordIdentity(record: Record<string, unknown>, paths: string[][]): string | undefined {
  for (const key of identityKeys) {
    if (!Object.hasOwn(record, key)) continue
    const value = record[key]
    if (paths.some((path) => path.length === 1 && path[0] === key)) return undefined
    if (typeof value === 'number' && Number.isFinite(value)) return String(value)
    if (typeof value !== 'string' || isCiphertext(value)) return undefined
    return value
  }
  return undefined
}

/** A value prov-kms wrote (or Vault, or sops): left alone by encrypt, opened by decrypt. */
export function isCiphertext(value: string): boolean {
  return /^(prov:[a-z0-9]+:[a-z0-9]+:|vault:v\d+:|ENC\[AES256_GCM,|-----BEGIN AGE ENCRYPTED FILE-----)/.test(value)
}

async function applyToRecord(record: unknown, paths: string[][], transform: FieldTransform, index: number): Promise<unknown> {
  if (!record || typeof record !== 'object' || Array.isArray(record)) throw usageError(`record ${index + 1} is not an object`, { location: `stdin[${index}]` })
  const identity = recordIdentity(record as Record<string, unknown>, paths)
  for (const path of paths) {
    let node: unknown = record
    for (let i = 0; i < path.length - 1 && node && typeof node === 'object'; i++) {
      node = Object.hasOwn(node, path[i]) ? (node as Record<string, unknown>)[path[i]] : undefined
    }
    if (!node || typeof node !== 'object' || Array.isArray(node)) continue
    const container = node as Record<string, unknown>
    const last = path[path.length - 1]
    if (!Object.hasOwn(container, last)) continue
    const place: FieldPlace = identity === undefined ? { path: path.join('.') } : { path: path.join('.'), record: identity }
    container[last] = await transform(container[last], place)
  }
  return record
}

/** `--field` reads records from stdin and writes records: DATA and --output-file do not go with it. */
export function assertRecordMode(args: { data?: unknown; 'output-file'?: unknown }): void {
  if (args.data !== undefined && args.data !== '-') throw usageError('--field reads records from stdin; do not pass DATA', { location: 'DATA' })
  if (args['output-file']) {
    throw usageError('--output-file writes one whole result, not --field records', { location: '--output-file', hint: 'redirect the records: > records.json' })
  }
}

/** Reads records from the source, transforms the fields, writes the same framing to stdout. Returns the record count. */
export async function transformRecordStream(source: ByteSource, fieldPaths: string[], transform: FieldTransform): Promise<number> {
  const paths = fieldPaths.map(splitPath)
  const reader = new ByteReader(source)
  const head = (await reader.peek(4096)).toString('utf8').trimStart()
  if (!head) return 0
  if (head[0] !== '[' && head[0] !== '{') {
    throw usageError('--field needs JSON or NDJSON records on stdin', { location: 'stdin:1', hint: 'pipe the JSON output of a prov command' })
  }
  const limit = inputLimitBytes()
  const tooLarge = (what: string) =>
    usageError(`${what} is larger than the input limit of ${formatBytes(limit)}`, {
      location: 'stdin',
      hint: 'raise limits.input_bytes (or PROV_LIMITS__INPUT_BYTES), or send NDJSON: one record per line is streamed',
    })
  if (head[0] === '[') {
    const text = await readText(reader, limit, tooLarge)
    let records: unknown
    try {
      records = JSON.parse(text)
    } catch (error) {
      throw usageError(`stdin is not valid JSON: ${(error as Error).message}`, { location: 'stdin' })
    }
    checkStructure(records, 'stdin', MAX_INPUT_DEPTH + 1)
    const list = records as unknown[]
    for (let i = 0; i < list.length; i++) list[i] = await applyToRecord(list[i], paths, transform, i)
    await writeOut(`${JSON.stringify(list, null, 2)}\n`)
    return list.length
  }
  // NDJSON (streamed) unless the first line is not a whole record: then one (pretty) JSON object.
  let pending = ''
  let count = 0
  let mode: 'ndjson' | 'object' | undefined
  let lineNo = 0
  const handleLine = async (line: string) => {
    lineNo++
    if (!line.trim()) return
    let record: unknown
    try {
      record = JSON.parse(line)
    } catch (error) {
      throw usageError(`stdin is not valid NDJSON: ${(error as Error).message}`, {
        location: `stdin:${lineNo}`,
        hint: 'each line must be one complete JSON record',
      })
    }
    checkStructure(record, `stdin:${lineNo}`)
    await writeOut(`${JSON.stringify(await applyToRecord(record, paths, transform, count))}\n`)
    count++
  }
  const decoder = new TextDecoder('utf-8', { fatal: true })
  for await (const chunk of reader.rest()) {
    pending += decodeUtf8(decoder, chunk, true)
    // One record (a line, or the whole pretty object) must fit the limit; a stream of them need not.
    if (pending.length > limit) throw tooLarge(mode === 'ndjson' ? `record ${count + 1}` : 'stdin')
    if (mode === 'object') continue
    let newline = pending.indexOf('\n')
    while (newline >= 0) {
      const line = pending.slice(0, newline)
      if (mode === undefined && line.trim()) {
        mode = isWholeJson(line) ? 'ndjson' : 'object'
        if (mode === 'object') break
      }
      pending = pending.slice(newline + 1)
      await handleLine(line)
      newline = pending.indexOf('\n')
    }
  }
  pending += decodeUtf8(decoder, new Uint8Array(), false)
  if (mode === 'object') {
    let record: unknown
    try {
      record = JSON.parse(pending)
    } catch (error) {
      throw usageError(`stdin is not valid JSON: ${(error as Error).message}`, { location: 'stdin' })
    }
    checkStructure(record, 'stdin')
    await writeOut(`${JSON.stringify(await applyToRecord(record, paths, transform, 0), null, 2)}\n`)
    return 1
  }
  if (pending.trim()) await handleLine(pending)
  return count
}

function isWholeJson(line: string): boolean {
  try {
    JSON.parse(line)
    return true
  } catch {
    return false
  }
}

async function readText(reader: ByteReader, limit: number, tooLarge: (what: string) => Error): Promise<string> {
  const chunks: Buffer[] = []
  let total = 0
  for await (const chunk of reader.rest()) {
    total += chunk.length
    if (total > limit) throw tooLarge('stdin')
    chunks.push(Buffer.from(chunk))
  }
  return decodeUtf8(new TextDecoder('utf-8', { fatal: true }), Buffer.concat(chunks), false)
}

/** JSON is UTF-8: invalid bytes are a usage error, not silently replaced. */
function decodeUtf8(decoder: InstanceType<typeof TextDecoder>, chunk: Uint8Array, stream: boolean): string {
  try {
    return decoder.decode(chunk, { stream })
  } catch {
    throw usageError('stdin is not valid UTF-8, so not JSON records', { location: 'stdin', hint: 'encrypt binary data without --field' })
  }
}

const recordForbiddenKeys: ReadonlySet<string> = new Set(['__proto__'])

/**
 * Records are parsed with JSON.parse (any depth), but written back with JSON.stringify and walked
 * by the field paths, which recurse: a record nested deeper than MAX_INPUT_DEPTH is refused
 * (exit 2), like a `__proto__` key, which is never data.
 */
export function checkStructure(value: unknown, source: string, maxDepth = MAX_INPUT_DEPTH): void {
  assertSafeStructure(value, { source, maxDepth, forbiddenKeys: recordForbiddenKeys })
}

/** Values left alone by `encrypt --field`: null, secret references, existing ciphertexts. */
export function skipForEncrypt(value: unknown): boolean {
  if (value === null || value === undefined || isSecretRef(value)) return true
  return typeof value === 'string' && isCiphertext(value)
}
