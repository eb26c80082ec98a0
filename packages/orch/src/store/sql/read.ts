import { notFoundError } from '@prov/core'
import type { Db, Sql } from '../db'
import { chunks, iso, placeholders, type StepRow, stepRecord, type WorkflowRow, workflowRecord } from '../rows'
import { ACTIVE_SQL, type LogRecord, type Metrics, type StepKind, type StepRecord, type WorkflowRecord } from '../types'

/** Main steps by status, per workflow. */
async function countsOf(db: Sql, ids: string[]): Promise<Map<string, Record<string, number>>> {
  const out = new Map<string, Record<string, number>>(ids.map((id) => [id, {}]))
  for (const chunk of chunks(ids)) {
    const rows = await db.all<{ workflow_id: string; status: string; n: number }>(
      `SELECT workflow_id, status, count(*) AS n FROM orch_steps WHERE kind = 'main' AND workflow_id IN ${placeholders(chunk.length)} GROUP BY workflow_id, status`,
      chunk,
    )
    for (const r of rows) (out.get(r.workflow_id) as Record<string, number>)[r.status] = Number(r.n)
  }
  return out
}

export async function getWorkflow(db: Sql, id: string): Promise<WorkflowRecord> {
  const [row] = await db.all<WorkflowRow>('SELECT * FROM orch_workflows WHERE id = ?', [id])
  if (!row) throw notFoundError(`no workflow '${id}'`, { hint: 'prov-orch list' })
  return workflowRecord(row, (await countsOf(db, [id])).get(id) ?? {})
}

export async function listSteps(db: Sql, id: string, kind?: StepKind): Promise<StepRecord[]> {
  const rows = await db.all<StepRow>(
    `SELECT * FROM orch_steps WHERE workflow_id = ?${kind ? ' AND kind = ?' : ''} ORDER BY kind, seq`,
    kind ? [id, kind] : [id],
  )
  return rows.map(stepRecord)
}

/** Workflows, newest first, with the counts of their steps by status. */
export async function listWorkflows(
  db: Db,
  options: { status?: string; limit?: number; offset?: number } = {},
): Promise<{ items: WorkflowRecord[]; total: number }> {
  const where = options.status ? 'WHERE status = ?' : ''
  const params = options.status ? [options.status] : []
  const rows = await db.all<WorkflowRow>(`SELECT * FROM orch_workflows ${where} ORDER BY created_at DESC, id DESC LIMIT ? OFFSET ?`, [
    ...params,
    options.limit ?? 50,
    options.offset ?? 0,
  ])
  const [{ n }] = await db.all<{ n: number }>(`SELECT count(*) AS n FROM orch_workflows ${where}`, params)
  const counts = await countsOf(
    db,
    rows.map((r) => r.id),
  )
  return { items: rows.map((r) => workflowRecord(r, counts.get(r.id) ?? {})), total: Number(n) }
}

export async function readLogs(db: Db, id: string, step?: string): Promise<LogRecord[]> {
  const rows = await db.all<{ step: string; attempt: number; stream: string; ts: number; text: string }>(
    `SELECT step, attempt, stream, ts, text FROM orch_logs WHERE workflow_id = ?${step ? ' AND step = ?' : ''} ORDER BY id`,
    step ? [id, step] : [id],
  )
  return rows.map((r) => ({
    schema: 'prov.orch.log/v1',
    workflow_id: id,
    step: r.step,
    attempt: Number(r.attempt),
    stream: r.stream,
    ts: iso(r.ts),
    text: r.text,
  }))
}

/** Workflows not finished yet. */
export async function unfinished(db: Db): Promise<number> {
  const [{ n }] = await db.all<{ n: number }>(`SELECT count(*) AS n FROM orch_workflows WHERE status IN ${ACTIVE_SQL}`)
  return Number(n)
}

/** Finished steps the latency percentiles are computed over (the most recent ones). */
export const LATENCY_WINDOW = 1000
export const LATENCY_QUANTILES = [0.5, 0.9, 0.99] as const

/** The nearest-rank percentile of ascending `sorted` values (NaN when there are none). */
export function nearestRank(sorted: number[], q: number): number {
  if (!sorted.length) return Number.NaN
  return sorted[Math.min(sorted.length - 1, Math.max(0, Math.ceil(q * sorted.length) - 1))]
}

export async function metrics(db: Db): Promise<Metrics> {
  const wf = await db.all<{ status: string; n: number }>('SELECT status, count(*) AS n FROM orch_workflows GROUP BY status')
  const st = await db.all<{ status: string; n: number }>(
    `SELECT s.status, count(*) AS n FROM orch_steps s JOIN orch_workflows w ON w.id = s.workflow_id WHERE w.status IN ${ACTIVE_SQL} GROUP BY s.status`,
  )
  const [lat] = await db.all<{ n: number; total: number }>(
    'SELECT count(*) AS n, coalesce(sum(finished_at - started_at), 0) AS total FROM orch_steps WHERE finished_at IS NOT NULL AND started_at IS NOT NULL',
  )
  // Percentiles over the most recent finished steps: bounded work whatever the history's size.
  const recent = await db.all<{ ms: number }>(
    `SELECT finished_at - started_at AS ms FROM orch_steps WHERE finished_at IS NOT NULL AND started_at IS NOT NULL ORDER BY finished_at DESC LIMIT ${LATENCY_WINDOW}`,
  )
  const sorted = recent.map((r) => Number(r.ms)).sort((a, b) => a - b)
  return {
    workflows: Object.fromEntries(wf.map((r) => [r.status, Number(r.n)])),
    steps: Object.fromEntries(st.map((r) => [r.status, Number(r.n)])),
    stepLatency: { count: Number(lat.n), sumMs: Number(lat.total), quantilesMs: Object.fromEntries(LATENCY_QUANTILES.map((q) => [q, nearestRank(sorted, q)])) },
  }
}
