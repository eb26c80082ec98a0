/**
 * Human views of records (`--out table`, `--out wide`, the default on a terminal): the few
 * columns that matter per schema, like `kubectl get`; `wide` shows every field. Nested values are
 * summarised (`role=web,zone=a`, `3 items`), never dumped as JSON. Tables fit the terminal width
 * (low-priority columns go first, then long values are cut with `…`); a dumb or zero-width
 * terminal gets plain `key=value` lines.
 */

export type Row = Record<string, unknown>

export interface Column {
  header: string
  /** The record field it shows, when it shows one field. */
  key?: string
  /** The cell text of a record. */
  value: (record: Row) => string
  /** Numbers and counts line up on the right. */
  right?: boolean
}

export interface TableOptions {
  /** Every field, not only the ones that matter (`--out wide`). */
  wide?: boolean
  /** Terminal columns; 0 means unknown width on a terminal that cannot lay out (plain lines). */
  width?: number
  /** `key=value` lines instead of aligned columns. */
  plain?: boolean
  /** For ages (`5m`): the time the view is rendered at. */
  now?: number
}

const nothing = '-'

/** A short human form of any value: scalars as text, records `k=v,…`, lists joined or counted. */
export function summarise(value: unknown, budget = 60): string {
  if (value === null || value === undefined || value === '') return nothing
  if (typeof value === 'string') return value.replace(/\s*\n\s*/g, ' ')
  if (typeof value === 'number' || typeof value === 'boolean' || typeof value === 'bigint') return String(value)
  if (Array.isArray(value)) {
    if (!value.length) return nothing
    if (value.every((v) => v === null || typeof v !== 'object'))
      return fitList(
        value.map((v) => summarise(v)),
        budget,
      )
    if (value.every((v) => Array.isArray(v) && v.every((w) => w === null || typeof w !== 'object'))) {
      return fitList(
        value.map((v) => (v as unknown[]).map((w) => summarise(w)).join(',')),
        budget,
        ' | ',
      )
    }
    return `${value.length} item${value.length === 1 ? '' : 's'}`
  }
  if (typeof value === 'object') {
    const entries = Object.entries(value as Row).filter(([key]) => key !== 'schema')
    if (!entries.length) return nothing
    // Flat records (labels, tags) read as `k=v,k=v`, cut with … when long: a count says nothing.
    if (entries.every(([, v]) => v === null || typeof v !== 'object')) return cut(entries.map(([k, v]) => `${k}=${summarise(v)}`).join(','), budget)
    return `${entries.length} field${entries.length === 1 ? '' : 's'}`
  }
  return String(value)
}

function fitList(items: string[], budget: number, separator = ', '): string {
  let text = ''
  for (let i = 0; i < items.length; i++) {
    const next = text ? `${text}${separator}${items[i]}` : items[i]
    if (next.length > budget && i > 0) return `${text}${separator}+${items.length - i}`
    text = next
  }
  return text
}

/** `5s`, `12m`, `3h`, `4d` since an RFC 3339 time; `-` when there is none. */
export function age(value: unknown, now = Date.now()): string {
  if (typeof value !== 'string') return nothing
  const then = Date.parse(value)
  if (Number.isNaN(then)) return nothing
  const seconds = Math.max(0, Math.round((now - then) / 1000))
  if (seconds < 120) return `${seconds}s`
  if (seconds < 7200) return `${Math.round(seconds / 60)}m`
  if (seconds < 172800) return `${Math.round(seconds / 3600)}h`
  return `${Math.round(seconds / 86400)}d`
}

const field = (key: string, header = key.toUpperCase()): Column => ({ header, key, value: (r) => summarise(r[key]) })
const number = (key: string, header = key.toUpperCase()): Column => ({ ...field(key, header), right: true })
const duration = (key: string, header = 'DURATION'): Column => ({
  header,
  right: true,
  value: (r) => (typeof r[key] === 'number' ? formatDuration(r[key] as number) : nothing),
})

/** A duration for people: `65ms`, `1.2s`, `3m4s`, `2h5m`. */
export function formatDuration(ms: number): string {
  if (ms < 1000) return `${Math.max(0, Math.round(ms))}ms`
  if (ms < 60_000) return `${(ms / 1000).toFixed(1)}s`
  const minutes = Math.floor(ms / 60_000)
  if (minutes < 60) return `${minutes}m${Math.round((ms % 60_000) / 1000)}s`
  return `${Math.floor(minutes / 60)}h${minutes % 60}m`
}

/** Workflows (`prov-orch list`, the records of submit and status): id, name, status, steps done/total, age. */
function workflowColumns(now: number): Column[] {
  return [
    field('id'),
    field('name'),
    field('status'),
    {
      header: 'STEPS',
      right: true,
      value: (r) => {
        const counts = (r.counts ?? {}) as Record<string, number>
        return typeof r.steps_total === 'number' ? `${counts.succeeded ?? 0}/${r.steps_total}` : nothing
      },
    },
    { header: 'AGE', value: (r) => age(r.created_at, now) },
  ]
}

/** The columns that matter, per record schema (the `--out table` view; `wide` shows all fields). */
const schemaColumns: Record<string, (now: number) => Column[]> = {
  'prov.server/v1': () => [field('name'), field('provider'), field('status'), field('ip_address', 'IP'), field('labels')],
  'prov.server.exec/v1': () => [field('server'), number('exit_code', 'EXIT'), duration('duration_ms'), field('stdout'), field('error')],
  'prov.server.provider/v1': () => [field('name'), field('version'), field('layer'), field('description')],
  'prov.server.zone/v1': () => [field('provider'), field('name'), field('description')],
  'prov.server.price/v1': () => [field('provider'), field('plan'), field('zone'), field('hourly'), field('monthly'), field('currency')],
  'prov.taskserv/v1': () => [field('name'), field('version'), field('layer'), field('description')],
  'prov.taskserv.installed/v1': (now) => [
    field('server'),
    field('name'),
    field('version'),
    field('status'),
    { header: 'UPDATED', value: (r) => age(r.updated_at, now) },
  ],
  'prov.taskserv.result/v1': () => [
    field('server'),
    field('taskserv'),
    field('action'),
    field('status'),
    field('version'),
    duration('duration_ms'),
    field('error'),
  ],
  'prov.orch.workflow.status/v1': (now) => workflowColumns(now),
  'prov.orch.workflow/v1': (now) => workflowColumns(now),
  'prov.orch.event/v1': () => [number('seq'), field('ts', 'TIME'), field('type'), field('step')],
  'prov.orch.log/v1': () => [field('step'), number('attempt'), field('stream'), field('text')],
  'prov.extension/v1': () => [field('name'), field('kind'), field('version'), field('layer'), field('description')],
  'prov.workspace/v1': () => [field('name'), field('active'), field('path')],
  'prov.config.key/v1': () => [field('key'), field('value'), field('layer'), field('source')],
  'prov.doctor.check/v1': () => [field('check'), field('ok'), field('detail'), field('fix')],
  'prov.kms.key/v1': () => [field('backend'), field('status'), field('recipient'), field('healthy'), field('problem')],
  'prov.kms.secret/v1': (now) => [field('name'), { header: 'UPDATED', value: (r) => age(r.updated, now) }],
  'prov.kms.finding/v1': () => [field('file'), number('line'), field('kind'), field('field')],
  'prov.oci.tag/v1': () => [field('repository'), field('tag')],
  'prov.oci.repository/v1': () => [field('registry'), field('repository')],
  'prov.oci.resolved/v1': () => [field('name'), field('kind'), field('version'), number('level'), field('action'), field('reference')],
}

/** Fields worth a column when a schema has no definition: names and states first. */
const preferred = ['name', 'id', 'server', 'taskserv', 'status', 'state', 'kind', 'type', 'version', 'action', 'ok', 'error']

function discoveredColumns(records: Row[], wide: boolean): Column[] {
  const keys: string[] = []
  for (const record of records) for (const key of Object.keys(record)) if (key !== 'schema' && !keys.includes(key)) keys.push(key)
  if (wide) return keys.map((k) => field(k))
  const scalar = (key: string) => records.some((r) => r[key] !== null && r[key] !== undefined && typeof r[key] !== 'object')
  const chosen = [...preferred.filter((k) => keys.includes(k)), ...keys.filter((k) => !preferred.includes(k) && scalar(k))]
  return chosen.slice(0, 6).map((k) => field(k))
}

/** The columns of a list of records: the schema's own, or every field in wide mode. */
export function columnsOf(records: Row[], options: Pick<TableOptions, 'wide' | 'now'> = {}): Column[] {
  const schemas = [...new Set(records.map((r) => r.schema).filter((s): s is string => typeof s === 'string'))]
  const known = schemas.length === 1 ? schemaColumns[schemas[0]] : undefined
  if (!known) return discoveredColumns(records, Boolean(options.wide))
  const columns = known(options.now ?? Date.now())
  if (!options.wide) return columns
  // Wide: the schema's columns first, then every other field.
  const keys = new Set(columns.map((c) => c.key ?? c.header.toLowerCase()))
  return [...columns, ...discoveredColumns(records, true).filter((c) => !keys.has(c.key!))]
}

function cut(text: string, width: number): string {
  if (text.length <= width) return text
  return width <= 1 ? '…'.slice(0, width) : `${text.slice(0, width - 1)}…`
}

const gap = '   '

/**
 * Columns that identify a record: a cut id or name cannot be copied into the next command, so
 * they are never shortened (a line may overflow a very narrow terminal instead).
 */
const identifierKeys = new Set(['id', 'name', 'server'])

/** Aligned columns under upper-case headers, fitted to `width`. */
function layout(columns: Column[], cells: string[][], width: number): string {
  let shown = columns.map((_, i) => i)
  const natural = columns.map((c, i) => Math.max(c.header.length, ...cells.map((row) => row[i].length)))
  const widths = [...natural]
  const identifies = (i: number) => columns[i].key !== undefined && identifierKeys.has(columns[i].key!)
  const total = () => shown.reduce((sum, i) => sum + widths[i], 0) + gap.length * (shown.length - 1)
  // First shorten the widest other columns (down to 12 characters), then leave out columns from
  // the right (the schemas list the less important last), identifiers last of all.
  while (total() > width) {
    const shortenable = shown.filter((i) => !identifies(i) && widths[i] > 12)
    if (shortenable.length) {
      const widest = shortenable.reduce((a, b) => (widths[b] > widths[a] ? b : a))
      widths[widest] = Math.max(12, widths[widest] - (total() - width))
      continue
    }
    if (shown.length === 1) break
    const others = shown.filter((i) => !identifies(i))
    const drop = others.length ? others[others.length - 1] : shown[shown.length - 1]
    shown = shown.filter((i) => i !== drop)
  }
  const line = (texts: string[]) =>
    shown
      .map((i, n) => {
        const text = cut(texts[i], widths[i])
        if (n === shown.length - 1 && !columns[i].right) return text
        return columns[i].right ? text.padStart(widths[i]) : text.padEnd(widths[i])
      })
      .join(gap)
      .trimEnd()
  const out = [line(columns.map((c) => c.header)), ...cells.map(line)]
  return `${out.join('\n')}\n`
}

function quoted(text: string): string {
  return /[\s"]/.test(text) ? JSON.stringify(text) : text
}

/** A list of records as a table a person reads (or plain `key=value` lines). */
export function renderRecords(records: Row[], options: TableOptions = {}): string {
  if (!records.length) return '(none)\n'
  const columns = columnsOf(records, options)
  const cells = records.map((r) => columns.map((c) => c.value(r)))
  if (options.plain) {
    return `${cells.map((row) => row.map((text, i) => `${columns[i].header.toLowerCase()}=${quoted(text)}`).join(' ')).join('\n')}\n`
  }
  return layout(columns, cells, options.width && options.width > 0 ? options.width : Number.POSITIVE_INFINITY)
}

/** Dotted keys of a record's nested records (`debug.enabled`), lists kept whole. */
function flatten(record: Row, prefix = '', out: [string, unknown][] = []): [string, unknown][] {
  for (const [key, value] of Object.entries(record)) {
    if (key === 'schema' && !prefix) continue
    const name = prefix ? `${prefix}.${key}` : key
    if (value && typeof value === 'object' && !Array.isArray(value) && Object.keys(value).length) flatten(value as Row, name, out)
    else out.push([name, value])
  }
  return out
}

const isRecordList = (value: unknown): value is Row[] =>
  Array.isArray(value) && value.length > 0 && value.every((v) => v !== null && typeof v === 'object' && !Array.isArray(v))

/** One record as `key  value` lines (nested keys dotted); its lists of records as tables below. */
export function renderRecord(record: Row, options: TableOptions = {}): string {
  const entries = flatten(record)
  const tables = options.wide ? [] : entries.filter(([, v]) => isRecordList(v))
  const lines = entries.filter(([key]) => !tables.some(([t]) => t === key))
  const width = options.width && options.width > 0 ? options.width : Number.POSITIVE_INFINITY
  const keyWidth = Math.max(0, ...lines.map(([k]) => k.length))
  const text = lines.map(([key, value]) => {
    const shown = summarise(value, Math.max(20, width - keyWidth - 2))
    if (options.plain) return `${key}=${quoted(shown)}`
    const fitted = identifierKeys.has(key) ? shown : cut(shown, Math.max(8, width - keyWidth - 2))
    return `${key.padEnd(keyWidth)}  ${fitted}`.trimEnd()
  })
  let out = text.length ? `${text.join('\n')}\n` : ''
  for (const [key, value] of tables) out += `\n${key}:\n${renderRecords(value as Row[], options)}`
  return out
}
