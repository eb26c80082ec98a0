import type { CompiledStep } from '../../workflow'
import { advance, failStep, releaseDependents } from '../lifecycle'
import { chunks, json, placeholders, type StepRow, type WorkflowRow } from '../rows'
import type { Tx } from '../tx'
import type { StepProcess, StepResult } from '../types'

/** Records where the claimed steps' process groups run (for recovery after a crash). */
export async function recordProcesses(tx: Tx, owner: string, processes: StepProcess[]): Promise<void> {
  for (const p of processes) {
    await tx.q.run(`UPDATE orch_steps SET pid = ?, pid_host = ?, pid_start = ? WHERE workflow_id = ? AND id = ? AND owner = ? AND status = 'running'`, [
      p.pid,
      p.host,
      p.start,
      p.workflowId,
      p.stepId,
      owner,
    ])
  }
}

/**
 * Records finished steps (a batch: one durable commit): logs, outputs, retries with exponential
 * backoff and jitter, failures; then advances each workflow. A result of a step that is no longer
 * ours (the lease ran out and another worker re-claimed it) is dropped: the other one counts.
 */
export async function complete(tx: Tx, owner: string, results: StepResult[]): Promise<void> {
  const { q } = tx
  const byWorkflow = new Map<string, StepResult[]>()
  for (const r of [...results].sort((a, b) => (a.workflowId < b.workflowId ? -1 : a.workflowId > b.workflowId ? 1 : 0))) {
    byWorkflow.set(r.workflowId, [...(byWorkflow.get(r.workflowId) ?? []), r])
  }
  const now = Date.now()
  for (const [workflowId, list] of byWorkflow) {
    const [wf] = await q.all<WorkflowRow>(`SELECT id, status, phase, cancel_requested FROM orch_workflows WHERE id = ?${tx.db.forUpdate}`, [workflowId])
    if (!wf) continue
    // The rows of all results in one query.
    const rows = new Map<string, StepRow>()
    for (const chunk of chunks(list.map((r) => r.stepId))) {
      const found = await q.all<StepRow>(
        `SELECT id, status, owner, attempts, spec, dependents, kind FROM orch_steps WHERE workflow_id = ? AND id IN ${placeholders(chunk.length)}`,
        [workflowId, ...chunk],
      )
      for (const f of found) rows.set(f.id, f)
    }
    for (const r of list) {
      const row = rows.get(r.stepId)
      if (row?.status !== 'running' || row.owner !== owner) continue
      for (const log of r.logs ?? []) {
        await q.run('INSERT INTO orch_logs (workflow_id, step, attempt, stream, ts, text) VALUES (?, ?, ?, ?, ?, ?)', [
          workflowId,
          r.stepId,
          row.attempts,
          log.stream,
          now,
          log.text,
        ])
      }
      const spec = JSON.parse(row.spec) as CompiledStep
      if (r.status === 'succeeded' || r.status === 'skipped') {
        await q.run(
          `UPDATE orch_steps SET status = ?, output = ?, exit_code = ?, output_truncated = ?, finished_at = ?, owner = NULL, lease_until = NULL
           WHERE workflow_id = ? AND id = ?`,
          [r.status, json(r.output ?? null), r.exitCode ?? null, r.truncated ? 1 : 0, now, workflowId, r.stepId],
        )
        await releaseDependents(tx, workflowId, JSON.parse(row.dependents) as string[])
        tx.event(
          workflowId,
          `step.${r.status}`,
          r.stepId,
          r.status === 'succeeded' ? { attempt: row.attempts, ...(r.truncated ? { output_truncated: true } : {}) } : { reason: r.error },
          now,
        )
      } else if (
        r.status === 'failed' &&
        r.retryable !== false &&
        !Number(wf.cancel_requested) &&
        row.kind === 'main' &&
        Number(row.attempts) <= spec.retries.max
      ) {
        const base = spec.retries.backoffMs * 2 ** (Number(row.attempts) - 1)
        const delay = Math.round(base / 2 + Math.random() * (base / 2))
        await q.run(
          `UPDATE orch_steps SET status = 'queued', next_at = ?, error = ?, exit_code = ?, owner = NULL, lease_until = NULL WHERE workflow_id = ? AND id = ?`,
          [now + delay, r.error ?? null, r.exitCode ?? null, workflowId, r.stepId],
        )
        tx.event(workflowId, 'step.retrying', r.stepId, { attempt: row.attempts, error: r.error, exit_code: r.exitCode ?? null, delay_ms: delay }, now)
      } else {
        await failStep(tx, workflowId, r.stepId, r.status === 'cancelled' ? 'cancelled' : 'failed', r.error ?? 'failed', r.exitCode ?? null, now)
      }
    }
    await advance(tx, workflowId, now)
  }
}
