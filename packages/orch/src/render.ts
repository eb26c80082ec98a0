/**
 * What a person sees on a terminal (`--out table`, the default there): a workflow as one line per
 * step with its state and duration, and events as lines as they happen. Pipes keep the records.
 * Names, ids, errors and outputs come from workflow files and from what steps print: every cell is
 * made printable (control characters escaped) so none can move the cursor, retitle or clear the terminal.
 */
import { formatDuration, printable, summarise, terminalLayout } from '@prov/core'
import type { OrchEvent, StepRecord, WorkflowRecord } from './store/types'

/** A state's mark: the word alone on a plain (dumb or zero-width) terminal. */
const marks: Record<string, string> = {
  succeeded: '✓',
  failed: '✗',
  running: '▶',
  queued: '·',
  cancelled: '⊘',
  cancelling: '⊘',
  rolled_back: '↺',
  rolling_back: '↺',
  skipped: '-',
}

/** From `start` to `end` (or to now while it runs); '' when it has not started. */
function elapsed(start: string | null, end: string | null, now: number): string {
  if (!start) return ''
  const from = Date.parse(start)
  const to = end ? Date.parse(end) : now
  return Number.isFinite(from) && Number.isFinite(to) ? formatDuration(to - from) : ''
}

const cell = (text: string) => printable(text, { oneLine: true })

const cut = (text: string, width: number) => (text.length <= width ? text : width <= 1 ? '' : `${text.slice(0, width - 1)}…`)

/** Columns padded to the widest cell, the last one cut at the terminal's width. */
function aligned(rows: string[][], width: number): string[] {
  const widths = rows[0]?.map((_, i) => Math.max(...rows.map((r) => r[i].length))) ?? []
  return rows.map((row) => {
    const line = row.map((cell, i) => (i === row.length - 1 ? cell : cell.padEnd(widths[i]))).join('  ')
    return cut(line.trimEnd(), width)
  })
}

/** `prov-orch status` / `run` on a terminal: a header, then one line per step. */
export function renderWorkflow(workflow: WorkflowRecord, steps: StepRecord[], now = Date.now()): string {
  const layout = terminalLayout()
  const width = layout.width ?? Number.POSITIVE_INFINITY
  const mark = (status: string) => (layout.plain ? '' : `${marks[status] ?? '?'} `)
  const took = elapsed(workflow.started_at, workflow.finished_at, now)
  const done = steps.filter((s) => s.kind === 'main' && s.status === 'succeeded').length
  const header = [
    `${mark(workflow.status)}${cell(workflow.name)}  ${cell(workflow.id)}  ${workflow.status}`,
    `${done}/${workflow.steps_total} steps`,
    took,
  ].filter(Boolean)
  const lines = [cut(header.join('  '), width)]
  if (workflow.error) lines.push(cut(`  error: ${cell(workflow.error)}`, width))
  const rows = steps.map((step) => [
    `  ${mark(step.status)}${cell(step.kind === 'rollback' ? `${step.id} (rollback)` : step.id)}`,
    step.status,
    elapsed(step.started_at, step.finished_at, now),
    step.attempts > 1 ? `${step.attempts} attempts` : '',
    cell(step.error ?? (step.output === null || step.output === undefined ? '' : summarise(step.output))),
  ])
  lines.push(...aligned(rows, width))
  return `${lines.join('\n')}\n`
}

/**
 * Events as lines a person follows (`10:01:08  ✓ build  succeeded  1.2s`): durations from the
 * step's own start event, so one follower is needed per stream.
 */
export function eventLines(): (event: OrchEvent) => string {
  const layout = terminalLayout()
  const width = layout.width ?? Number.POSITIVE_INFINITY
  const startedAt = new Map<string, number>()
  return (event) => {
    const time = event.ts.slice(11, 19)
    const [scope, state] = event.type.split('.', 2) as [string, string]
    const mark = layout.plain ? '' : `${marks[state] ?? '•'} `
    const at = Date.parse(event.ts)
    let took = ''
    if (event.step && state === 'started') startedAt.set(event.step, at)
    else if (event.step && startedAt.has(event.step)) took = formatDuration(at - (startedAt.get(event.step) as number))
    const subject = scope === 'step' ? cell(event.step ?? '') : 'workflow'
    const error = event.data?.error ? cell(String(event.data.error)) : ''
    return `${cut([time, `${mark}${subject}`, state, took, error].filter(Boolean).join('  '), width)}\n`
  }
}
