import { isFinishedWorkflowStatus } from '@prov/core'
import { advance } from '../lifecycle'
import { lockWorkflow, type Tx } from '../tx'

/** Queued steps never start; running ones are killed by their engine (it polls cancel_requested). A finished workflow is left alone. */
export async function cancel(tx: Tx, id: string): Promise<void> {
  const wf = await lockWorkflow(tx, id)
  if (isFinishedWorkflowStatus(wf.status)) return
  const now = Date.now()
  await tx.q.run('UPDATE orch_workflows SET cancel_requested = 1 WHERE id = ?', [id])
  await tx.q.run(`UPDATE orch_steps SET status = 'cancelled', error = 'cancelled', finished_at = ? WHERE workflow_id = ? AND status = 'queued'`, [now, id])
  tx.event(id, 'workflow.cancelling', undefined, undefined, now)
  await advance(tx, id, now)
}

/** Workflows among `ids` whose cancellation was requested. */
export async function cancelRequested(tx: Pick<Tx, 'q'>, ids: string[]): Promise<Set<string>> {
  if (!ids.length) return new Set()
  const rows = await tx.q.all<{ id: string }>(`SELECT id FROM orch_workflows WHERE cancel_requested = 1 AND id IN (${ids.map(() => '?').join(',')})`, ids)
  return new Set(rows.map((r) => r.id))
}
