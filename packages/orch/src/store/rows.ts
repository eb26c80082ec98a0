import type { StepKind, StepRecord, StepStatus, WorkflowRecord, WorkflowStatus } from './types'

/** A row of orch_steps as SQL returns it (numbers may come back as strings or bigints). */
export interface StepRow {
  workflow_id: string
  id: string
  seq: number
  kind: StepKind
  status: StepStatus
  spec: string
  deps: string
  dependents: string
  pending: number
  attempts: number
  next_at: number
  output: string | null
  error: string | null
  exit_code: number | null
  owner: string | null
  lease_until: number | null
  started_at: number | null
  finished_at: number | null
  pid: number | null
  pid_host: string | null
  pid_start: string | null
  output_truncated: number | null
}

export interface WorkflowRow {
  id: string
  name: string
  status: WorkflowStatus
  phase: StepKind
  error: string | null
  parallel_limit: number
  rollback_enabled: number | boolean
  cancel_requested: number | boolean
  created_at: number
  updated_at: number
  started_at: number | null
  finished_at: number | null
  submitted_by: string | null
  steps_total: number
}

export const iso = (ms: number | null) => (ms === null || ms === undefined ? null : new Date(Number(ms)).toISOString())
export const json = (v: unknown) => (v === undefined ? null : JSON.stringify(v))
export const parse = (v: string | null) => (v === null || v === undefined ? null : JSON.parse(v))
export const flag = (v: number | boolean | null | undefined) => Boolean(Number(v))

/** `(?, ?, ?)` for a list of values. */
export const placeholders = (n: number) => `(${Array.from({ length: n }, () => '?').join(',')})`

/** Splits a list into chunks that fit the parameter limits of both databases. */
export function* chunks<T>(list: T[], size = 500): Generator<T[]> {
  for (let i = 0; i < list.length; i += size) yield list.slice(i, i + size)
}

export function workflowRecord(row: WorkflowRow, counts: Record<string, number>): WorkflowRecord {
  return {
    schema: 'prov.orch.workflow.status/v1',
    id: row.id,
    name: row.name,
    status: row.status,
    phase: row.phase,
    error: row.error,
    parallel_limit: Number(row.parallel_limit),
    rollback_enabled: flag(row.rollback_enabled),
    cancel_requested: flag(row.cancel_requested),
    created_at: iso(row.created_at) as string,
    updated_at: iso(row.updated_at) as string,
    started_at: iso(row.started_at),
    finished_at: iso(row.finished_at),
    submitted_by: row.submitted_by,
    steps_total: Number(row.steps_total),
    counts,
  }
}

export function stepRecord(r: StepRow): StepRecord {
  return {
    id: r.id,
    kind: r.kind,
    status: r.status,
    attempts: Number(r.attempts),
    output: parse(r.output),
    error: r.error,
    exit_code: r.exit_code,
    owner: r.owner,
    started_at: iso(r.started_at),
    finished_at: iso(r.finished_at),
    depends_on: JSON.parse(r.deps),
    output_truncated: flag(r.output_truncated),
  }
}
