import { FINISHED_WORKFLOW_STATUSES, type OrchEventRecord, type WorkflowStatus } from '@prov/core'
import type { CompiledStep } from '../workflow'

export type { WorkflowStatus }
export const EVENT_SCHEMA: OrchEventRecord['schema'] = 'prov.orch.event/v1'
export type StepStatus = 'queued' | 'running' | 'succeeded' | 'failed' | 'cancelled' | 'rolled_back' | 'skipped'
export type StepKind = 'main' | 'rollback'
/** The event that ends a workflow (`workflow.succeeded`, ...). */
export const isTerminalEvent = (type: string) => FINISHED_WORKFLOW_STATUSES.some((status) => type === `workflow.${status}`)
/** The workflow states in which steps may still be claimed (SQL list). */
export const ACTIVE_SQL = "('queued','running','rolling_back')"

/** One event of a workflow's history, as the API and `watch` give it (the client reads the same type). */
export type OrchEvent = OrchEventRecord

export interface WorkflowRecord {
  schema: 'prov.orch.workflow.status/v1'
  id: string
  name: string
  status: WorkflowStatus
  phase: StepKind
  error: string | null
  parallel_limit: number
  rollback_enabled: boolean
  cancel_requested: boolean
  created_at: string
  updated_at: string
  started_at: string | null
  finished_at: string | null
  submitted_by: string | null
  steps_total: number
  /** Main steps by status. */
  counts: Record<string, number>
}

export interface StepRecord {
  id: string
  kind: StepKind
  status: StepStatus
  attempts: number
  output: unknown
  error: string | null
  exit_code: number | null
  owner: string | null
  started_at: string | null
  finished_at: string | null
  depends_on: string[]
  /** The output is only the first max_output bytes of what the step printed (output_overflow: truncate). */
  output_truncated: boolean
}

export interface LogRecord {
  schema: 'prov.orch.log/v1'
  workflow_id: string
  step: string
  attempt: number
  stream: string
  ts: string | null
  text: string
}

export interface ClaimedStep {
  workflowId: string
  workflowName: string
  kind: StepKind
  spec: CompiledStep
  attempt: number
  scope: Record<string, { status: string; output: unknown }>
}

export interface StepResult {
  workflowId: string
  stepId: string
  status: 'succeeded' | 'failed' | 'skipped' | 'cancelled'
  output?: unknown
  error?: string
  exitCode?: number | null
  /** false: do not retry (command not found, bad reference, invalid JSON). */
  retryable?: boolean
  /** stdout went past max_output and was cut (output_overflow: truncate). */
  truncated?: boolean
  logs?: { stream: 'stdout' | 'stderr' | 'engine'; text: string }[]
}

/** Where a running step's process group lives, so a later engine can kill it after a crash. */
export interface StepProcess {
  workflowId: string
  stepId: string
  pid: number
  host: string
  /** Start time of the process (/proc/PID/stat field 22): guards against a reused pid. */
  start: string
}

export interface AuditEntry {
  who: string
  method: string
  path: string
  status: number
  workflowId?: string
  /** JSON text, e.g. the count of refused requests a row stands for. */
  detail?: string
}

export interface AuditRecord {
  ts: string | null
  who: string
  method: string
  path: string
  status: number
  workflow_id: string | null
  detail: unknown
}

export interface Metrics {
  workflows: Record<string, number>
  steps: Record<string, number>
  /** Count and sum over all finished steps; quantiles (0.5, 0.9, 0.99) over the most recent 1000, NaN when none finished. */
  stepLatency: { count: number; sumMs: number; quantilesMs: Record<string, number> }
}
