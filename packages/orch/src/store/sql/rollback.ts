import { usageError } from '@prov/core'
import { startRollback } from '../lifecycle'
import { lockWorkflow, type Tx } from '../tx'

/** A request that contradicts the workflow's state (API: 409). */
export const conflictError = (message: string, options: { hint?: string } = {}) => usageError(message, { ...options, details: { kind: 'conflict' } })

/** Runs the compensations of a finished workflow's completed steps. */
export async function rollback(tx: Tx, id: string): Promise<void> {
  const wf = await lockWorkflow(tx, id)
  if (!['succeeded', 'failed', 'cancelled'].includes(wf.status)) {
    throw conflictError(`workflow ${id} is ${wf.status}; only a finished workflow can be rolled back`, {
      hint: wf.status === 'running' ? `prov-orch cancel ${id} first` : undefined,
    })
  }
  await tx.q.run(`UPDATE orch_workflows SET cancel_requested = 0, finished_at = NULL WHERE id = ?`, [id])
  await startRollback(tx, id, Date.now())
}
