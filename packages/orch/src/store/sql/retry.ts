import { notFoundError } from '@prov/core'
import type { StepRow } from '../rows'
import { lockWorkflow, type Tx } from '../tx'
import { conflictError } from './rollback'

/** Queues the failed and cancelled main steps of a workflow again (after a rollback: all of them); completed steps are kept. */
export async function retry(tx: Tx, id: string, stepId?: string): Promise<void> {
  const { q } = tx
  const wf = await lockWorkflow(tx, id)
  if (!['failed', 'cancelled', 'rolled_back'].includes(wf.status))
    throw conflictError(`workflow ${id} is ${wf.status}; only a failed or cancelled one can be retried`)
  const now = Date.now()
  if (stepId) {
    const [row] = await q.all<StepRow>(`SELECT status FROM orch_steps WHERE workflow_id = ? AND id = ? AND kind = 'main'`, [id, stepId])
    if (!row) throw notFoundError(`workflow ${id} has no step '${stepId}'`)
  }
  const reset = wf.status === 'rolled_back' ? ['failed', 'cancelled', 'rolled_back', 'succeeded'] : ['failed', 'cancelled']
  await q.run(`DELETE FROM orch_steps WHERE workflow_id = ? AND kind = 'rollback'`, [id])
  await q.run(
    `UPDATE orch_steps SET status = 'queued', attempts = 0, next_at = 0, error = NULL, exit_code = NULL, output = NULL, finished_at = NULL
     WHERE workflow_id = ? AND kind = 'main' AND status IN (${reset.map(() => '?').join(',')})`,
    [id, ...reset],
  )
  // Recount unmet dependencies of every queued step.
  const rows = await q.all<{ id: string; status: string; deps: string }>(`SELECT id, status, deps FROM orch_steps WHERE workflow_id = ? AND kind = 'main'`, [
    id,
  ])
  const done = new Set(rows.filter((r) => r.status === 'succeeded' || r.status === 'skipped').map((r) => r.id))
  for (const r of rows) {
    if (r.status !== 'queued') continue
    const pending = (JSON.parse(r.deps) as string[]).filter((d) => !done.has(d)).length
    await q.run('UPDATE orch_steps SET pending = ? WHERE workflow_id = ? AND id = ?', [pending, id, r.id])
  }
  await q.run(`UPDATE orch_workflows SET status = 'running', phase = 'main', cancel_requested = 0, error = NULL, finished_at = NULL WHERE id = ?`, [id])
  tx.event(id, 'workflow.retried', stepId, undefined, now)
}
