import { usageError } from './errors'
import { yamlLib } from './lazy'

/** Output formats every binary accepts with `--out`. */
export const outputFormats = ['json', 'ndjson', 'yaml', 'table'] as const
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

function cell(value: unknown): string {
  if (value === null || value === undefined) return ''
  if (typeof value === 'string') return value
  if (typeof value === 'number' || typeof value === 'boolean') return String(value)
  if (Array.isArray(value) && value.every((v) => typeof v !== 'object' || v === null)) return value.join(', ')
  return JSON.stringify(value)
}

/** A plain box table of records; nested values are shown as compact JSON. `schema` is left out. */
export function renderTable(records: JsonRecord[]): string {
  if (!records.length) return '(none)\n'
  const columns: string[] = []
  for (const record of records) for (const key of Object.keys(record)) if (key !== 'schema' && !columns.includes(key)) columns.push(key)
  const rows = records.map((r) => columns.map((c) => cell(r[c]).replace(/\s*\n\s*/g, ' ')))
  const widths = columns.map((c, i) => Math.min(60, Math.max(c.length, ...rows.map((row) => row[i].length))))
  const fit = (text: string, width: number) => (text.length > width ? `${text.slice(0, width - 1)}…` : text.padEnd(width))
  const line = (left: string, mid: string, right: string) => `${left}${widths.map((w) => '─'.repeat(w + 2)).join(mid)}${right}`
  const out = [line('┌', '┬', '┐'), `│ ${columns.map((c, i) => fit(c, widths[i])).join(' │ ')} │`, line('├', '┼', '┤')]
  for (const row of rows) out.push(`│ ${row.map((v, i) => fit(v, widths[i])).join(' │ ')} │`)
  out.push(line('└', '┴', '┘'))
  return `${out.join('\n')}\n`
}

function renderKeyValue(record: JsonRecord): string {
  const keys = Object.keys(record).filter((k) => k !== 'schema')
  const width = Math.max(0, ...keys.map((k) => k.length))
  return `${keys.map((k) => `${k.padEnd(width)}  ${cell(record[k])}`).join('\n')}\n`
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
      if (Array.isArray(data)) return renderTable(data.filter((r): r is JsonRecord => !!r && typeof r === 'object'))
      if (data && typeof data === 'object') return renderKeyValue(data as JsonRecord)
      return `${cell(data)}\n`
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
