/** Every state of a workflow, in lifecycle order. */
export const WORKFLOW_STATUSES = ['queued', 'running', 'rolling_back', 'succeeded', 'failed', 'cancelled', 'rolled_back'] as const
export type WorkflowStatus = (typeof WORKFLOW_STATUSES)[number]

/** States a workflow never leaves by itself (it has finished; only retry or rollback start it again). */
export const FINISHED_WORKFLOW_STATUSES: readonly WorkflowStatus[] = ['succeeded', 'failed', 'cancelled', 'rolled_back']

export function isFinishedWorkflowStatus(status: string): status is WorkflowStatus {
  return (FINISHED_WORKFLOW_STATUSES as readonly string[]).includes(status)
}
