import type { CompiledStep } from '../../workflow'
import { chunks, parse, placeholders, type StepRow, type WorkflowRow } from '../rows'
import type { Tx } from '../tx'
import { ACTIVE_SQL, type ClaimedStep } from '../types'

/** Main steps whose outputs a step's templates, input or condition read. */
const refIds = (spec: CompiledStep) => spec.refs ?? spec.deps

/**
 * Claims up to `limit` ready steps (no unmet dependency, backoff over), honouring each workflow's
 * parallel_limit across all engines; marks them running with a lease, and hands each its scope:
 * the status and output of the steps it reads.
 */
export async function claim(tx: Tx, owner: string, limit: number, leaseMs: number, onlyWorkflow?: string): Promise<ClaimedStep[]> {
  const { q, db } = tx
  const now = Date.now()
  const candidates = await q.all<{ id: string }>(
    `SELECT id FROM orch_workflows WHERE status IN ${ACTIVE_SQL} AND cancel_requested = 0${onlyWorkflow ? ' AND id = ?' : ''} ORDER BY id LIMIT 50`,
    onlyWorkflow ? [onlyWorkflow] : [],
  )
  const claimed: ClaimedStep[] = []
  if (db.lockTimeout && candidates.length) await q.run(db.lockTimeout)
  for (const { id } of candidates) {
    if (claimed.length >= limit) break
    const [wf] = await q.all<WorkflowRow>(
      // Wait for the row (short transactions) rather than skip it: with one hot workflow, skipping
      // starves every worker but the one that holds it most of the time.
      `SELECT id, name, status, phase, parallel_limit, cancel_requested FROM orch_workflows WHERE id = ?${db.forUpdate}`,
      [id],
    )
    if (!wf || !['queued', 'running', 'rolling_back'].includes(wf.status) || Number(wf.cancel_requested)) continue
    const kind = wf.phase
    const [{ n: running }] = await q.all<{ n: number }>(`SELECT count(*) AS n FROM orch_steps WHERE workflow_id = ? AND kind = ? AND status = 'running'`, [
      id,
      kind,
    ])
    const free = Math.min(Number(wf.parallel_limit) - Number(running), limit - claimed.length)
    if (free <= 0) continue
    const rows = await q.all<StepRow>(
      `SELECT id, spec, attempts, next_at FROM orch_steps WHERE workflow_id = ? AND kind = ? AND status = 'queued' AND pending = 0 AND next_at <= ?
       ORDER BY seq LIMIT ?${db.forUpdateSkipLocked}`,
      [id, kind, now, free],
    )
    if (!rows.length) continue
    if (wf.status === 'queued') {
      await q.run(`UPDATE orch_workflows SET status = 'running', started_at = ? WHERE id = ?`, [now, id])
      tx.event(id, 'workflow.started', undefined, undefined, now)
    }
    const specs = rows.map((r) => JSON.parse(r.spec) as CompiledStep)
    const needed = [...new Set(specs.flatMap(refIds))]
    const scope: ClaimedStep['scope'] = {}
    for (const chunk of chunks(needed)) {
      const outs = await q.all<{ id: string; status: string; output: string | null }>(
        `SELECT id, status, output FROM orch_steps WHERE workflow_id = ? AND kind = 'main' AND id IN ${placeholders(chunk.length)}`,
        [id, ...chunk],
      )
      for (const o of outs) scope[o.id] = { status: o.status, output: parse(o.output) }
    }
    // One statement for the whole claim (attempts + 1 in SQL), not one per step.
    await q.run(
      `UPDATE orch_steps SET status = 'running', attempts = attempts + 1, owner = ?, lease_until = ?, started_at = ?, error = NULL, pid = NULL
       WHERE workflow_id = ? AND id IN ${placeholders(rows.length)}`,
      [owner, now + leaseMs, now, id, ...rows.map((r) => r.id)],
    )
    for (const [i, row] of rows.entries()) {
      const attempt = Number(row.attempts) + 1
      tx.event(id, 'step.started', row.id, { attempt, kind, owner }, now)
      claimed.push({ workflowId: id, workflowName: wf.name, kind, spec: specs[i], attempt, scope })
    }
  }
  return claimed
}
