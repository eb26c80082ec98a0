import type { Db, Sql } from '../db'
import { iso } from '../rows'
import { EVENT_SCHEMA, type OrchEvent } from '../types'

export interface PendingEvent {
  workflowId: string
  type: string
  step: string | null
  data: string | null
  ts: number
}

/** The outbox: one seq update and one multi-row insert per workflow (its row is locked by the transaction). */
export async function writeEvents(q: Sql, list: PendingEvent[]): Promise<void> {
  if (!list.length) return
  const byWorkflow = new Map<string, PendingEvent[]>()
  for (const e of list) byWorkflow.set(e.workflowId, [...(byWorkflow.get(e.workflowId) ?? []), e])
  for (const [workflowId, events] of byWorkflow) {
    const last = events[events.length - 1].ts
    const [row] = await q.all<{ ev_seq: number }>('UPDATE orch_workflows SET ev_seq = ev_seq + ?, updated_at = ? WHERE id = ? RETURNING ev_seq', [
      events.length,
      last,
      workflowId,
    ])
    let seq = Number(row.ev_seq) - events.length
    for (let i = 0; i < events.length; i += 200) {
      const chunk = events.slice(i, i + 200)
      await q.run(
        `INSERT INTO orch_events (workflow_id, seq, ts, type, step, data) VALUES ${chunk.map(() => '(?, ?, ?, ?, ?, ?)').join(', ')}`,
        chunk.flatMap((e) => [workflowId, ++seq, e.ts, e.type, e.step, e.data]),
      )
    }
  }
}

/** Events of a workflow after `afterSeq`, in order. */
export async function readEvents(db: Db, id: string, afterSeq = 0, limit = 1000): Promise<OrchEvent[]> {
  const rows = await db.all<{ seq: number; ts: number; type: string; step: string | null; data: string | null }>(
    'SELECT seq, ts, type, step, data FROM orch_events WHERE workflow_id = ? AND seq > ? ORDER BY seq LIMIT ?',
    [id, afterSeq, limit],
  )
  return rows.map((r) => ({
    schema: EVENT_SCHEMA,
    workflow_id: id,
    seq: Number(r.seq),
    ts: iso(r.ts) as string,
    type: r.type,
    ...(r.step ? { step: r.step } : {}),
    ...(r.data ? { data: JSON.parse(r.data) } : {}),
  }))
}
