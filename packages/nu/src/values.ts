/**
 * Nushell values as the plugin protocol encodes them in JSON (`{"Int": {"val": 5, "span": …}}`),
 * and the conversions between them and the JSON records prov binaries read and write.
 */

export interface Span {
  start: number
  end: number
}

/** A Nushell value: one variant name mapping to its fields. */
export type NuValue = { [variant: string]: Record<string, unknown> }

/** A labelled error as the protocol carries it (also the body of an `Error` value). */
export interface LabeledError {
  msg: string
  labels: { text: string; span: Span }[]
  code: string | null
  url: string | null
  help: string | null
  inner: LabeledError[]
}

/** RFC 3339 date-times (what prov writes for every timestamp): these become Nushell dates. */
const rfc3339 = /^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d{1,9})?(Z|[+-]\d{2}:\d{2})$/

function isTimestamp(text: string): boolean {
  return text.length <= 35 && rfc3339.test(text) && !Number.isNaN(Date.parse(text))
}

/**
 * A JSON value as a Nushell value: objects become records, arrays lists, RFC 3339 strings dates.
 * Numbers keep their kind (durations in `*_ms` and sizes in bytes stay ints, as the schemas say).
 */
export function toNu(value: unknown, span: Span): NuValue {
  if (value === null || value === undefined) return { Nothing: { span } }
  switch (typeof value) {
    case 'boolean':
      return { Bool: { val: value, span } }
    case 'number':
      if (Number.isSafeInteger(value)) return { Int: { val: value, span } }
      if (Number.isFinite(value)) return { Float: { val: value, span } }
      return { Nothing: { span } }
    case 'bigint':
      return { Int: { val: Number(value), span } }
    case 'string':
      return isTimestamp(value) ? { Date: { val: value, span } } : { String: { val: value, span } }
    case 'object': {
      if (Array.isArray(value)) return { List: { vals: value.map((v) => toNu(v, span)), span } }
      if (Buffer.isBuffer(value)) return { Binary: { val: [...value], span } }
      const record: Record<string, NuValue> = {}
      for (const [key, field] of Object.entries(value as Record<string, unknown>)) record[key] = toNu(field, span)
      return { Record: { val: record, span } }
    }
    default:
      return { String: { val: String(value), span } }
  }
}

/** Text of a plugin's output that is not JSON: a string when it is UTF-8, binary otherwise. */
export function bytesToNu(bytes: Buffer, span: Span): NuValue {
  const text = bytes.toString('utf8')
  if (Buffer.from(text, 'utf8').equals(bytes)) return { String: { val: text, span } }
  return { Binary: { val: [...bytes], span } }
}

/** Thrown when a value cannot become input of a prov binary (closures, custom values, errors). */
export class ValueError extends Error {
  constructor(
    message: string,
    readonly span?: Span,
    readonly labeled?: LabeledError,
  ) {
    super(message)
  }
}

function variantOf(value: NuValue): [string, Record<string, unknown>] {
  const entries = Object.entries(value ?? {})
  if (entries.length !== 1 || !entries[0][1] || typeof entries[0][1] !== 'object') throw new ValueError('malformed value from the engine')
  return entries[0] as [string, Record<string, unknown>]
}

/**
 * A Nushell value as JSON data for a prov binary's stdin: records → objects, lists → arrays,
 * dates → their RFC 3339 text, file sizes → bytes, durations → nanoseconds.
 */
export function fromNu(value: NuValue): unknown {
  const [variant, body] = variantOf(value)
  const span = body.span as Span | undefined
  switch (variant) {
    case 'Bool':
    case 'Int':
    case 'Float':
    case 'String':
    case 'Date':
    case 'Filesize':
    case 'Duration':
    case 'Glob':
      return body.val
    case 'Nothing':
      return null
    case 'Record': {
      const out: Record<string, unknown> = {}
      for (const [key, field] of Object.entries((body.val ?? {}) as Record<string, NuValue>)) out[key] = fromNu(field)
      return out
    }
    case 'List':
      return ((body.vals ?? []) as NuValue[]).map(fromNu)
    case 'Binary':
      return Buffer.from(body.val as number[]).toString('base64')
    case 'CellPath':
      return ((body.val as { members?: Record<string, { val: unknown }>[] })?.members ?? []).map((m) => String(Object.values(m)[0]?.val)).join('.')
    case 'Range':
      throw new ValueError('a range cannot be input of a prov command; use `| each` or a list', span)
    case 'Error': {
      const error = (body.error ?? body.val) as LabeledError | undefined
      throw new ValueError(String(error?.msg ?? 'error value'), span, error)
    }
    default:
      throw new ValueError(`a ${variant.toLowerCase()} cannot be input of a prov command`, span)
  }
}

/**
 * The bytes a binary reads on stdin for one pipeline value: strings and binary as they are
 * (`"s3cret" | prov kms encrypt`), everything else as JSON (`{…} | prov taskserv plan`).
 */
export function valueToStdin(value: NuValue): Buffer {
  const [variant, body] = variantOf(value)
  if (variant === 'String') return Buffer.from(String(body.val), 'utf8')
  if (variant === 'Binary') return Buffer.from(body.val as number[])
  if (variant === 'Nothing') return Buffer.alloc(0)
  return Buffer.from(`${JSON.stringify(fromNu(value))}\n`, 'utf8')
}

/** One item of a list stream as one NDJSON line. */
export function valueToLine(value: NuValue): Buffer {
  return Buffer.from(`${JSON.stringify(fromNu(value))}\n`, 'utf8')
}

/** Scalar arguments (positionals, flag values) as command-line words. */
export function valueToWords(value: NuValue): string[] {
  const [variant, body] = variantOf(value)
  if (variant === 'List') return ((body.vals ?? []) as NuValue[]).flatMap(valueToWords)
  const data = fromNu(value)
  if (data === null) return []
  if (typeof data === 'object') return [JSON.stringify(data)]
  return [String(data)]
}
