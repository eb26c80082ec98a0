import type { CompiledStep } from '../../workflow'
import type { Db } from '../db'
import { advance, failStep } from '../lifecycle'
import type { StepRow } from '../rows'
import { inTx } from '../tx'
import type { StepProcess } from '../types'

/**
 * Steps left running by a dead engine or worker: idempotent ones (and built-in kinds) are queued
 * again, the others fail. `all`: every running step not owned by `owner` (an exclusive engine,
 * right after taking the store); otherwise only those whose lease ran out.
 */
export async function recover(db: Db, owner: string, all: boolean, killOrphan: (p: StepProcess) => void = () => {}): Promise<number> {
  const now = Date.now()
  const stale = await db.all<{ workflow_id: string; id: string }>(
    all
      ? `SELECT workflow_id, id FROM orch_steps WHERE status = 'running' AND (owner IS NULL OR owner <> ?)`
      : `SELECT workflow_id, id FROM orch_steps WHERE status = 'running' AND lease_until < ? AND (owner IS NULL OR owner <> ?)`,
    all ? [owner] : [now, owner],
  )
  if (!stale.length) return 0
  const byWorkflow = new Map<string, string[]>()
  for (const s of stale) byWorkflow.set(s.workflow_id, [...(byWorkflow.get(s.workflow_id) ?? []), s.id])
  let n = 0
  await inTx(db, async (tx) => {
    const { q } = tx
    for (const [workflowId, stepIds] of byWorkflow) {
      await q.all(`SELECT id FROM orch_workflows WHERE id = ?${db.forUpdate}`, [workflowId])
      for (const stepId of stepIds) {
        const [row] = await q.all<StepRow>(
          `SELECT status, owner, lease_until, spec, kind, pid, pid_host, pid_start FROM orch_steps WHERE workflow_id = ? AND id = ?`,
          [workflowId, stepId],
        )
        if (row?.status !== 'running' || row.owner === owner || (!all && Number(row.lease_until) >= now)) continue
        // The dead engine's step may still run (its process group is detached): stop it first.
        if (row.pid && row.pid_host && row.pid_start) killOrphan({ workflowId, stepId, pid: Number(row.pid), host: row.pid_host, start: row.pid_start })
        const spec = JSON.parse(row.spec) as CompiledStep
        n++
        if (spec.idempotent || (spec.run && 'builtin' in spec.run)) {
          await q.run(`UPDATE orch_steps SET status = 'queued', next_at = 0, owner = NULL, lease_until = NULL WHERE workflow_id = ? AND id = ?`, [
            workflowId,
            stepId,
          ])
          tx.event(workflowId, 'step.recovered', stepId, { previous_owner: row.owner, action: 'requeued' }, now)
        } else {
          tx.event(workflowId, 'step.recovered', stepId, { previous_owner: row.owner, action: 'failed' }, now)
          await failStep(
            tx,
            workflowId,
            stepId,
            'failed',
            `interrupted: its ${all ? 'engine' : 'worker'} died while it ran, and it is not idempotent`,
            null,
            now,
          )
        }
      }
      await advance(tx, workflowId, now)
    }
  })
  return n
}
