import { usageError } from './errors'
import { yamlLib } from './lazy'
import { renderRecord, renderRecords, summarise, type TableOptions } from './table'

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

function humanView(data: unknown, options: TableOptions): string {
  if (Array.isArray(data)) {
    const records = data.filter((r): r is JsonRecord => !!r && typeof r === 'object' && !Array.isArray(r))
    if (records.length === data.length) return renderRecords(records, options)
    return `${data.map((item) => summarise(item)).join('\n')}\n`
  }
  if (data && typeof data === 'object') return renderRecord(data as JsonRecord, options)
  return `${summarise(data)}\n`
}

/** Serialises a whole result (one record or a list of records) in the given format. */
export function formatOutput(data: unknown, format: OutputFormat): string {
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
    if (this.format === 'ndjson') writeStdout(`${JSON.stringify(record)}\n`)
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
