import { notFoundError } from '@prov/core'
import type { Db, Sql } from './db'
import type { WorkflowRow } from './rows'
import { json } from './rows'
import { type PendingEvent, writeEvents } from './sql/events'

/**
 * One transaction of the store: its SQL, what the database can lock, and the events it emits.
 * Events are kept until the end and written in order just before the commit (one sequence
 * update and one multi-row insert per workflow), so readers see them exactly when the state
 * change they describe is visible.
 */
export interface Tx {
  q: Sql
  db: Db
  event(workflowId: string, type: string, step?: string, data?: Record<string, unknown>, now?: number): void
}

export function inTx<T>(db: Db, fn: (tx: Tx) => Promise<T>): Promise<T> {
  return db.tx(async (q) => {
    const pending: PendingEvent[] = []
    const tx: Tx = {
      q,
      db,
      event: (workflowId, type, step, data, now = Date.now()) => pending.push({ workflowId, type, step: step ?? null, data: json(data), ts: now }),
    }
    const result = await fn(tx)
    await writeEvents(q, pending)
    return result
  })
}

/** The workflow's row, locked for the rest of the transaction (rows: PostgreSQL; the file: SQLite). */
export async function lockWorkflow(tx: Tx, id: string): Promise<WorkflowRow> {
  const [wf] = await tx.q.all<WorkflowRow>(`SELECT * FROM orch_workflows WHERE id = ?${tx.db.forUpdate}`, [id])
  if (!wf) throw notFoundError(`no workflow '${id}'`, { hint: 'prov-orch list' })
  return wf
}
