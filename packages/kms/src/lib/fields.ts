/**
 * Record streams: encrypt or decrypt one field (dotted path) in each JSON/NDJSON record and pass
 * everything else through. Output framing follows the input: NDJSON in -> NDJSON out (streamed
 * line by line), a JSON array -> a JSON array, one JSON object -> one JSON object.
 */
import { isSecretRef, usageError } from '@prov/core'
import { ByteReader, type ByteSource, writeOut } from './io'

export type FieldTransform = (value: unknown, path: string) => Promise<unknown>

function splitPath(path: string): string[] {
  const parts = path.split('.')
  if (!path || parts.some((p) => !p))
    throw usageError(`bad field path '${path}'`, { location: '--field', hint: 'use a dotted path such as password or db.password' })
  return parts
}

async function applyToRecord(record: unknown, paths: string[][], transform: FieldTransform, index: number): Promise<unknown> {
  if (!record || typeof record !== 'object') throw usageError(`record ${index + 1} is not an object`, { location: `stdin[${index}]` })
  for (const path of paths) {
    let node: unknown = record
    for (let i = 0; i < path.length - 1 && node && typeof node === 'object'; i++) node = (node as Record<string, unknown>)[path[i]]
    if (!node || typeof node !== 'object') continue
    const container = node as Record<string, unknown>
    const last = path[path.length - 1]
    if (!(last in container)) continue
    container[last] = await transform(container[last], path.join('.'))
  }
  return record
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
  if (head[0] === '[') {
    const text = await readText(reader)
    let records: unknown
    try {
      records = JSON.parse(text)
    } catch (error) {
      throw usageError(`stdin is not valid JSON: ${(error as Error).message}`, { location: 'stdin' })
    }
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
    await writeOut(`${JSON.stringify(await applyToRecord(record, paths, transform, count))}\n`)
    count++
  }
  const decoder = new TextDecoder('utf-8', { fatal: true })
  for await (const chunk of reader.rest()) {
    pending += decodeUtf8(decoder, chunk, true)
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

async function readText(reader: ByteReader): Promise<string> {
  const chunks: Buffer[] = []
  for await (const chunk of reader.rest()) chunks.push(Buffer.from(chunk))
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

/** Values left alone by `encrypt --field`: null, secret references, existing ciphertexts. */
export function skipForEncrypt(value: unknown): boolean {
  if (value === null || value === undefined || isSecretRef(value)) return true
  return typeof value === 'string' && /^(prov:[a-z0-9]+:[a-z0-9]+:|vault:v\d+:|ENC\[AES256_GCM,)/.test(value)
}
