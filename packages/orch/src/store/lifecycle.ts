/**
 * The workflow state machine and rollback planning. A workflow moves
 * `queued -> running -> succeeded | failed | cancelled`, or `running -> rolling_back ->
 * rolled_back` (failed, if a compensation fails). These functions run inside the transaction
 * that changed a step, after the change.
 */
import { isFinishedWorkflowStatus } from '@prov/core'
import type { CompiledStep, RunSpec } from '../workflow'
import { chunks, parse, placeholders, type WorkflowRow } from './rows'
import type { Tx } from './tx'
import type { WorkflowStatus } from './types'

/** A compensation step: what it undoes, and whether it runs a command or only marks the step undone. */
export type RollbackSpec = CompiledStep & { compensates: string; real: boolean }

export interface RollbackRow {
  spec: RollbackSpec
  seq: number
  deps: string[]
  dependents: string[]
}

/**
 * The compensations of the completed steps, in reverse dependency order: a step's rollback waits
 * for the rollbacks of the steps that depended on it. A compensation reads the outputs its step
 * read, and the step's own output (also on stdin).
 */
export function planRollback(done: { id: string; spec: string; output: string | null; seq: number }[]): RollbackRow[] {
  const ids = new Set(done.map((d) => d.id))
  const specs = new Map(done.map((d) => [d.id, JSON.parse(d.spec) as CompiledStep]))
  const dependentsOf = new Map<string, string[]>(done.map((d) => [d.id, []]))
  for (const [id, s] of specs) for (const dep of s.deps) if (ids.has(dep)) dependentsOf.get(dep)?.push(id)
  return done.map((d) => {
    const s = specs.get(d.id) as CompiledStep
    const deps = (dependentsOf.get(d.id) ?? []).map((x) => `rollback:${x}`)
    const run: RunSpec = s.rollback ?? { builtin: 'noop' }
    return {
      spec: {
        id: `rollback:${d.id}`,
        run,
        input: parse(d.output),
        env: s.env,
        cwd: s.cwd,
        deps,
        retries: { max: 0, backoffMs: 0 },
        timeoutMs: s.timeoutMs,
        idempotent: s.idempotent,
        expectJson: false,
        target: s.target,
        refs: [...s.deps, d.id],
        maxOutput: s.maxOutput,
        outputOverflow: s.outputOverflow,
        compensates: d.id,
        real: Boolean(s.rollback),
      },
      seq: 1_000_000 - d.seq,
      deps,
      dependents: s.deps.filter((x) => ids.has(x)).map((x) => `rollback:${x}`),
    }
  })
}

/** Replaces any earlier rollback phase with the compensations of the completed main steps, and enters it. */
export async function startRollback(tx: Tx, workflowId: string, now: number): Promise<void> {
  const { q } = tx
  await q.run(`DELETE FROM orch_steps WHERE workflow_id = ? AND kind = 'rollback'`, [workflowId])
  const done = await q.all<{ id: string; spec: string; output: string | null; seq: number }>(
    `SELECT id, spec, output, seq FROM orch_steps WHERE workflow_id = ? AND kind = 'main' AND status = 'succeeded' ORDER BY seq`,
    [workflowId],
  )
  for (const row of planRollback(done)) {
    await q.run(
      `INSERT INTO orch_steps (workflow_id, id, seq, kind, status, spec, deps, dependents, pending) VALUES (?, ?, ?, 'rollback', 'queued', ?, ?, ?, ?)`,
      [workflowId, row.spec.id, row.seq, JSON.stringify(row.spec), JSON.stringify(row.deps), JSON.stringify(row.dependents), row.deps.length],
    )
  }
  await q.run(`UPDATE orch_workflows SET status = 'rolling_back', phase = 'rollback' WHERE id = ?`, [workflowId])
  tx.event(workflowId, 'workflow.rolling_back', undefined, { steps: done.length }, now)
}

/** One dependency of each of `dependents` is met. */
export async function releaseDependents(tx: Tx, workflowId: string, dependents: string[]): Promise<void> {
  for (const chunk of chunks(dependents)) {
    await tx.q.run(`UPDATE orch_steps SET pending = pending - 1 WHERE workflow_id = ? AND id IN ${placeholders(chunk.length)}`, [workflowId, ...chunk])
  }
}

/** A step fails (or is cancelled) for good: nothing new starts in its phase; running steps finish. */
export async function failStep(
  tx: Tx,
  workflowId: string,
  stepId: string,
  status: 'failed' | 'cancelled',
  error: string,
  exitCode: number | null,
  now: number,
): Promise<void> {
  const { q } = tx
  await q.run(
    `UPDATE orch_steps SET status = ?, error = ?, exit_code = ?, finished_at = ?, owner = NULL, lease_until = NULL WHERE workflow_id = ? AND id = ?`,
    [status, error, exitCode, now, workflowId, stepId],
  )
  tx.event(workflowId, `step.${status}`, stepId, { error, exit_code: exitCode }, now)
  if (status !== 'failed') return
  const [wf] = await q.all<WorkflowRow>('SELECT phase, error FROM orch_workflows WHERE id = ?', [workflowId])
  await q.run(`UPDATE orch_steps SET status = 'cancelled', error = ?, finished_at = ? WHERE workflow_id = ? AND kind = ? AND status = 'queued'`, [
    `not started: step '${stepId}' failed`,
    now,
    workflowId,
    wf.phase,
  ])
  if (!wf.error) await q.run('UPDATE orch_workflows SET error = ? WHERE id = ?', [`step '${stepId}' failed: ${error}`, workflowId])
}

/** Finishes a workflow (or its main phase, into rollback) when nothing of the current phase is queued or running. */
export async function advance(tx: Tx, workflowId: string, now: number): Promise<void> {
  const { q } = tx
  const [wf] = await q.all<WorkflowRow>('SELECT id, status, phase, rollback_enabled, cancel_requested, error FROM orch_workflows WHERE id = ?', [workflowId])
  if (!wf || isFinishedWorkflowStatus(wf.status)) return
  const active = await q.all(`SELECT 1 FROM orch_steps WHERE workflow_id = ? AND kind = ? AND status IN ('queued','running') LIMIT 1`, [workflowId, wf.phase])
  if (active.length) return
  const counts = await q.all<{ status: string; n: number }>('SELECT status, count(*) AS n FROM orch_steps WHERE workflow_id = ? AND kind = ? GROUP BY status', [
    workflowId,
    wf.phase,
  ])
  const count = (s: string) => Number(counts.find((c) => c.status === s)?.n ?? 0)
  const finish = async (status: WorkflowStatus, error?: string | null) => {
    await q.run('UPDATE orch_workflows SET status = ?, finished_at = ?, error = ? WHERE id = ?', [status, now, error ?? null, workflowId])
    tx.event(workflowId, `workflow.${status}`, undefined, error ? { error } : undefined, now)
  }
  if (wf.phase === 'rollback') {
    if (count('failed') || count('cancelled')) return finish('failed', `rollback incomplete: ${wf.error ?? 'a compensation failed'}`)
    const done = await q.all<{ id: string; spec: string }>(
      `SELECT id, spec FROM orch_steps WHERE workflow_id = ? AND kind = 'rollback' AND status = 'succeeded'`,
      [workflowId],
    )
    for (const d of done) {
      const spec = JSON.parse(d.spec) as Partial<RollbackSpec>
      if (spec.compensates && spec.real) {
        await q.run(`UPDATE orch_steps SET status = 'rolled_back' WHERE workflow_id = ? AND id = ? AND kind = 'main'`, [workflowId, spec.compensates])
      }
    }
    return finish('rolled_back', wf.error)
  }
  if (Number(wf.cancel_requested)) return finish('cancelled', wf.error ?? 'cancelled')
  if (!count('failed') && !count('cancelled')) return finish('succeeded')
  if (Number(wf.rollback_enabled) && count('succeeded')) return startRollback(tx, workflowId, now)
  return finish('failed', wf.error)
}
