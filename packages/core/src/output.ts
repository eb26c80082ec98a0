import { usageError } from './errors'
import { yamlLib } from './lazy'
import { redactString } from './redact'
import { renderRecord, renderRecords, summarise, type TableOptions } from './table'
import { printable } from './util/printable'

/** Output formats every binary accepts with `--out` (`table`: the columns that matter; `wide`: all). */
export const outputFormats = ['json', 'ndjson', 'yaml', 'table', 'wide'] as const
export type OutputFormat = (typeof outputFormats)[number]

/** JSON off a TTY (pipelines), a table on a TTY (people). */
export function resolveOutputFormat(requested?: string, isTTY = Boolean(process.stdout.isTTY)): OutputFormat {
  if (!requested) return isTTY ? 'table' : 'json'
  if ((outputFormats as readonly string[]).includes(requested)) return requested as OutputFormat
  throw usageError(`unknown output format '${requested}'`, {
    location: '--out',
    hint: `use one of ${outputFormats.join(', ')}`,
  })
}

export type JsonRecord = Record<string, unknown>

let stdoutGuarded = false
/** A closed pipe (`| head`) is a normal end for a producer, not a crash. */
function guardStdout(): void {
  if (stdoutGuarded) return
  stdoutGuarded = true
  process.stdout.on('error', (error: NodeJS.ErrnoException) => {
    if (error.code === 'EPIPE') process.exit(process.exitCode ?? 0)
    throw error
  })
}

export function writeStdout(text: string): void {
  guardStdout()
  process.stdout.write(text)
}

/**
 * How a human view fits where it goes: the terminal's width on a terminal (else $COLUMNS, else no
 * limit); plain `key=value` lines on a dumb terminal or one that reports zero columns.
 */
export function terminalLayout(stream: { isTTY?: boolean; columns?: number } = process.stdout, env: NodeJS.ProcessEnv = process.env): TableOptions {
  if (env.TERM === 'dumb') return { plain: true }
  const fromEnv = env.COLUMNS !== undefined && env.COLUMNS.trim() !== '' ? Number(env.COLUMNS) : undefined
  const width = stream.isTTY ? (stream.columns ?? fromEnv) : fromEnv
  if (width !== undefined && (!Number.isFinite(width) || width <= 0)) return { plain: true }
  if (stream.isTTY && width === undefined) return { plain: true }
  return { width }
}

/** A table or key/value lines, with what the records carry from elsewhere unable to drive the terminal. */
function humanView(data: unknown, options: TableOptions): string {
  return printable(humanText(data, options))
}

function humanText(data: unknown, options: TableOptions): string {
  if (Array.isArray(data)) {
    const records = data.filter((r): r is JsonRecord => !!r && typeof r === 'object' && !Array.isArray(r))
    if (records.length === data.length) return renderRecords(records, options)
    return `${data.map((item) => summarise(item)).join('\n')}\n`
  }
  if (data && typeof data === 'object') return renderRecord(data as JsonRecord, options)
  return `${summarise(data)}\n`
}

/**
 * Fields of a record that carry messages: an API's or a remote command's error text may quote a
 * credential (an answer echoing the token it refused), so they are redacted like log lines.
 * Other fields are data the user asked for (a secret's value from `secret get`) and stay whole.
 */
const messageFields = new Set(['error', 'errors', 'message', 'reason', 'hint', 'warning', 'warnings', 'problem', 'problems'])

function redactMessages(value: unknown, inMessage = false, depth = 0): unknown {
  if (typeof value === 'string') return inMessage ? redactString(value) : value
  if (!value || typeof value !== 'object' || depth > 64) return value
  if (Array.isArray(value)) return value.map((item) => redactMessages(item, inMessage, depth + 1))
  const out: JsonRecord = {}
  for (const [key, item] of Object.entries(value)) out[key] = redactMessages(item, inMessage || messageFields.has(key), depth + 1)
  return out
}

/** Serialises a whole result (one record or a list of records) in the given format. */
export function formatOutput(result: unknown, format: OutputFormat): string {
  const data = redactMessages(result)
  switch (format) {
    case 'json':
      return `${JSON.stringify(data, null, 2)}\n`
    case 'ndjson':
      return Array.isArray(data) ? data.map((r) => `${JSON.stringify(r)}\n`).join('') : `${JSON.stringify(data)}\n`
    case 'yaml':
      return yamlLib().stringify(data, { lineWidth: 0 })
    case 'table':
    case 'wide':
      return humanView(data, { ...terminalLayout(), wide: format === 'wide' })
  }
}

/** Prints a whole result on stdout. */
export function emit(data: unknown, format: OutputFormat): void {
  writeStdout(formatOutput(data, format))
}

/**
 * Streams records: NDJSON lines go out as they arrive; other formats collect and print
 * once at `end()` (a JSON array, so `from json` and `jq '.[]'` work).
 */
export class RecordWriter {
  private readonly records: unknown[] = []
  private ended = false
  constructor(readonly format: OutputFormat) {}

  write(record: unknown): void {
    if (this.format === 'ndjson') writeStdout(`${JSON.stringify(redactMessages(record))}\n`)
    else this.records.push(record)
  }

  get written(): readonly unknown[] {
    return this.records
  }

  end(): void {
    if (this.ended) return
    this.ended = true
    if (this.format !== 'ndjson') emit(this.records, this.format)
  }
}
