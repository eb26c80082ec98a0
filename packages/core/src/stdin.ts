import { usageError } from './errors'
import { yamlLib } from './lazy'
import { formatBytes, inputLimitBytes } from './limits'
import { assertSafeStructure, assertYamlDepth, isStackOverflow, jsonNestingDepth, MAX_INPUT_DEPTH, tooDeepError } from './util/structure'

export type StdinFormat = 'json' | 'ndjson' | 'yaml'

export interface ParsedInput {
  format: StdinFormat
  /** Top-level documents: a JSON array is flattened into its records. */
  records: unknown[]
}

/**
 * Reads all of stdin as a Buffer; undefined when stdin is a TTY (no piped input). Input larger than
 * `maxBytes` (default: `limits.input_bytes`) is refused with exit 2 as soon as the limit is passed,
 * without buffering the rest.
 */
export async function readStdinBuffer(stream: NodeJS.ReadStream = process.stdin, maxBytes = inputLimitBytes()): Promise<Buffer | undefined> {
  if (stream.isTTY) return undefined
  const chunks: Buffer[] = []
  let total = 0
  for await (const chunk of stream) {
    const buffer = typeof chunk === 'string' ? Buffer.from(chunk) : (chunk as Buffer)
    total += buffer.length
    if (total > maxBytes) {
      stream.destroy()
      throw usageError(`stdin is larger than the input limit of ${formatBytes(maxBytes)}`, {
        location: 'stdin',
        hint: 'raise limits.input_bytes (or PROV_LIMITS__INPUT_BYTES), or pipe fewer records at once',
      })
    }
    chunks.push(buffer)
  }
  return Buffer.concat(chunks)
}

function lineOf(text: string, offset: number): number {
  let line = 1
  for (let i = 0; i < offset && i < text.length; i++) if (text.charCodeAt(i) === 10) line++
  return line
}

const looksLikeJson = (text: string) => /^[[{"]/.test(text) || /^(-?\d|true\b|false\b|null\b)/.test(text)

/**
 * Parses piped input as JSON, NDJSON or YAML (detected in that order).
 * Anything else is a usage error (exit 2) naming the line. `source` names the input in messages.
 * Documents nested deeper than MAX_INPUT_DEPTH and records holding `__proto__` are refused (exit 2).
 */
export function parseInput(text: string, source = 'stdin'): ParsedInput {
  let parsed: ParsedInput
  try {
    parsed = parseInputUnchecked(text, source)
  } catch (error) {
    if (isStackOverflow(error)) throw tooDeepError(source)
    throw error
  }
  assertSafeStructure(parsed.records, { source, forbiddenKeys: RECORD_FORBIDDEN_KEYS, maxDepth: MAX_INPUT_DEPTH + 1 })
  return parsed
}

/** Records may carry any field name a user chose (`constructor` is a fine label); only `__proto__` is never data. */
const RECORD_FORBIDDEN_KEYS: ReadonlySet<string> = new Set(['__proto__'])

function parseInputUnchecked(text: string, source: string): ParsedInput {
  const trimmed = text.replace(/^\uFEFF/, '').trim()
  if (!trimmed) return { format: 'json', records: [] }
  if (text.includes('\u0000')) throw usageError(`${source} is binary data, not JSON or YAML`, { location: source })
  // Refused before parsing: a flow document (JSON, NDJSON, flow YAML) nested deeper than any record
  // can be. The top-level array of a list adds one level.
  if (/^[[{]/.test(trimmed) && jsonNestingDepth(trimmed, MAX_INPUT_DEPTH + 1) > MAX_INPUT_DEPTH + 1) throw tooDeepError(source)
  if (looksLikeJson(trimmed)) {
    try {
      const value: unknown = JSON.parse(trimmed)
      return { format: 'json', records: Array.isArray(value) ? value : [value] }
    } catch (jsonError) {
      // Maybe NDJSON: every non-empty line a JSON value.
      const lines = trimmed.split('\n')
      if (lines.length > 1) {
        const records: unknown[] = []
        let ndjsonOk = true
        for (let i = 0; i < lines.length; i++) {
          const line = lines[i].trim()
          if (!line) continue
          try {
            records.push(JSON.parse(line))
          } catch (lineError) {
            if (/^[[{]/.test(line) || i > 0) {
              throw usageError(`${source} is not valid NDJSON: ${(lineError as Error).message}`, {
                location: `${source}:${i + 1}`,
                hint: 'each line must be one complete JSON record',
              })
            }
            ndjsonOk = false
            break
          }
        }
        if (ndjsonOk) return { format: 'ndjson', records }
      }
      if (/^[[{]/.test(trimmed)) {
        const match = /position (\d+)/.exec((jsonError as Error).message)
        const line = match ? lineOf(trimmed, Number(match[1])) : undefined
        throw usageError(`${source} is not valid JSON: ${(jsonError as Error).message}`, {
          location: line ? `${source}:${line}` : source,
          hint: 'pipe the JSON output of a prov command, or JSON/NDJSON/YAML records',
        })
      }
    }
  }
  assertYamlDepth(trimmed, source, MAX_INPUT_DEPTH + 1)
  let documents: ReturnType<typeof import('yaml').parseAllDocuments>
  try {
    documents = yamlLib().parseAllDocuments(trimmed, { prettyErrors: false, uniqueKeys: true })
  } catch (error) {
    if (isStackOverflow(error)) throw tooDeepError(source)
    throw usageError(`${source} is not JSON, NDJSON or YAML: ${(error as Error).message}`, { location: source })
  }
  const list = Array.isArray(documents) ? documents : [documents]
  const records: unknown[] = []
  for (const doc of list) {
    const error = doc.errors[0]
    if (error && isStackOverflow(error)) throw tooDeepError(source)
    if (error) {
      const line = error.linePos?.[0]?.line
      throw usageError(`${source} is not JSON, NDJSON or YAML: ${error.message.split('\n')[0]}`, {
        location: line ? `${source}:${line}` : source,
        hint: 'pipe the JSON output of a prov command, or JSON/NDJSON/YAML records',
      })
    }
    let value: unknown
    try {
      value = doc.toJS({ maxAliasCount: 100 })
    } catch (error) {
      if (isStackOverflow(error)) throw tooDeepError(source)
      throw usageError(`${source} is not usable YAML: ${(error as Error).message.split('\n')[0]}`, { location: source })
    }
    if (Array.isArray(value)) records.push(...value)
    else if (value !== null && value !== undefined) records.push(value)
  }
  // A bare word or sentence parses as a YAML scalar: that is not structured input.
  if (records.length && records.every((r) => typeof r !== 'object' || r === null)) {
    throw usageError(`${source} is not JSON, NDJSON or YAML records (got plain text)`, {
      location: `${source}:1`,
      hint: 'pipe the JSON output of a prov command, or JSON/NDJSON/YAML records',
    })
  }
  return { format: 'yaml', records }
}

/** Reads and parses piped records; undefined when nothing was piped (TTY or empty input). */
export async function readStdinRecords(stream: NodeJS.ReadStream = process.stdin): Promise<ParsedInput | undefined> {
  const buffer = await readStdinBuffer(stream)
  if (!buffer || buffer.length === 0) return undefined
  const text = buffer.toString('utf8')
  if (!text.trim()) return undefined
  return parseInput(text, 'stdin')
}

/** Checks that every input record has one of the expected schema ids; unknown ones are a usage error. */
export function expectSchema(records: unknown[], accepted: string[], source = 'stdin'): Record<string, unknown>[] {
  return records.map((record, index) => {
    if (!record || typeof record !== 'object' || Array.isArray(record)) {
      throw usageError(`${source} record ${index + 1} is not an object`, { location: `${source}[${index}]` })
    }
    const schema = (record as Record<string, unknown>).schema
    if (typeof schema !== 'string' || !accepted.some((id) => schema === id || schemaFamily(schema) === schemaFamily(id))) {
      throw usageError(
        `${source} record ${index + 1} has schema ${schema === undefined ? '(none)' : `'${String(schema)}'`}, expected ${accepted.join(' or ')}`,
        { location: `${source}[${index}].schema` },
      )
    }
    if (schema !== undefined && !accepted.includes(schema as string)) {
      throw usageError(`${source} record ${index + 1} has unsupported schema version '${String(schema)}'`, {
        location: `${source}[${index}].schema`,
        hint: `this version reads ${accepted.join(', ')}`,
      })
    }
    return record as Record<string, unknown>
  })
}

/** `prov.server/v1` -> `prov.server`. */
export function schemaFamily(id: string): string {
  return id.replace(/\/v\d+$/, '')
}
