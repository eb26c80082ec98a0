import { randomBytes } from 'node:crypto'
import type { CompiledWorkflow } from '../../workflow'
import type { Tx } from '../tx'

export function newWorkflowId(): string {
  return `wf-${Date.now().toString(36)}-${randomBytes(4).toString('hex')}`
}

/** A compiled workflow and its steps, queued; each step knows its dependents and how many dependencies it waits for. */
export async function submit(tx: Tx, workflow: CompiledWorkflow, submittedBy: string | undefined, id: string): Promise<void> {
  const dependents = new Map<string, string[]>(workflow.steps.map((s) => [s.id, []]))
  for (const s of workflow.steps) for (const d of s.deps) dependents.get(d)?.push(s.id)
  const now = Date.now()
  await tx.q.run(
    `INSERT INTO orch_workflows (id, name, status, phase, parallel_limit, rollback_enabled, definition, steps_total, submitted_by, created_at, updated_at)
     VALUES (?, ?, 'queued', 'main', ?, ?, ?, ?, ?, ?, ?)`,
    [
      id,
      workflow.name,
      workflow.parallelLimit,
      workflow.rollbackEnabled ? 1 : 0,
      JSON.stringify({ name: workflow.name }),
      workflow.steps.length,
      submittedBy ?? null,
      now,
      now,
    ],
  )
  for (const [seq, s] of workflow.steps.entries()) {
    await tx.q.run(
      `INSERT INTO orch_steps (workflow_id, id, seq, kind, status, spec, deps, dependents, pending) VALUES (?, ?, ?, 'main', 'queued', ?, ?, ?, ?)`,
      [id, s.id, seq, JSON.stringify(s), JSON.stringify(s.deps), JSON.stringify(dependents.get(s.id)), s.deps.length],
    )
  }
  tx.event(id, 'workflow.submitted', undefined, { name: workflow.name, steps: workflow.steps.length }, now)
}
