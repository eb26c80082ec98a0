/**
 * Types of the task engine: what it runs (items: a taskserv action on a host), what it needs from
 * a transport (a runner that executes one command with stdin), and what it reports (results and
 * events).
 */
import type { SecretResolver } from '@prov/core'
import type { SettingType } from './setting-types'

export const TASKSERV_RESULT_SCHEMA = 'prov.taskserv.result/v1'
/** Where taskserv folders and their state files live on a target. */
export const REMOTE_TASKSERV_ROOT = '/var/lib/prov/taskservs'

export type TaskAction = 'install' | 'remove' | 'update' | 'health' | 'status' | 'restart' | 'logs' | 'check'
export type TaskStatus = 'ok' | 'changed' | 'failed' | 'skipped'
export const TASK_STATUSES: readonly TaskStatus[] = ['ok', 'changed', 'failed', 'skipped']

/**
 * Why a result is `skipped`. `host_failed`, `requirement_failed` and `batch_failed` mean the item
 * never ran (so its dependents are not run either); the others come from the target.
 */
export type SkipReason = 'host_failed' | 'requirement_failed' | 'batch_failed' | 'aborted' | 'unsupported' | 'not_installed' | 'no_script'
/** The reasons that mean "never ran": dependents of such an item are not run either. */
export const NOT_RUN_REASONS: ReadonlySet<SkipReason> = new Set(['host_failed', 'requirement_failed', 'batch_failed', 'aborted'])

/** What the engine needs from an SSH connection pool (core's SshPool satisfies it). */
export interface RemoteExecOptions {
  env?: Record<string, string>
  stdin?: string
  timeoutMs?: number
  onStdout?: (chunk: Buffer) => void
  onStderr?: (chunk: Buffer) => void
}
export interface RemoteExecResult {
  code: number | null
  stdout: string
  stderr: string
  durationMs?: number
}
export interface RemoteRunner<T> {
  exec(target: T, command: string, options?: RemoteExecOptions): Promise<RemoteExecResult>
}

export interface TaskHost<T> {
  /** Server name (used in results and logs). */
  name: string
  target: T
  /** Extra environment for this host (PROV_SERVER_IP, labels...). */
  env?: Record<string, string>
}

export interface TaskUnit {
  name: string
  /** Desired version (PROV_VERSION). */
  version: string
  /** Local folder with manifest.yaml and the scripts. */
  dir: string
  /** Settings: exported as PROV_SETTING_<NAME>; values may be {secret: name} references. */
  settings?: Record<string, unknown>
  /** Daemons the taskserv runs (for restart/logs without own scripts). */
  services?: string[]
  /** Types of settings (the manifest's `setting_types`): values are checked once resolved. */
  settingTypes?: Record<string, SettingType>
}

export interface TaskItem<T> {
  host: TaskHost<T>
  unit: TaskUnit
  action: TaskAction
  /** Names this item waits for: a failure of one of them skips this item. */
  dependsOn?: string[]
  /** Extra environment for this item only (PROV_KEEP_DATA, PROV_TAIL, ...). */
  env?: Record<string, string>
}

export interface TaskResult {
  schema: typeof TASKSERV_RESULT_SCHEMA
  server: string
  taskserv: string
  action: TaskAction
  status: TaskStatus
  /** With status skipped: why. */
  reason?: SkipReason
  version?: string
  previous_version?: string
  phase?: string
  exit_code?: number
  duration_ms: number
  /** Last lines of the scripts' output (redacted). */
  output: string
  error?: string
  rolled_back?: boolean
  /** With rolled_back: the version that failed. */
  attempted_version?: string
  installed?: boolean
  healthy?: boolean
  log?: string
  level?: number
}

export type TaskEvent =
  | { type: 'start'; host: string; taskserv: string; action: TaskAction; level: number }
  | { type: 'output'; host: string; taskserv: string; stream: 'stdout' | 'stderr'; line: string }
  | { type: 'end'; result: TaskResult }
  | { type: 'level'; level: number; items: number }

export interface TaskRunOptions<T> {
  runner: RemoteRunner<T>
  /** Hosts worked on at once (default 20). */
  parallel?: number
  /** Seconds one script may run before it is killed on the target (default 600). */
  timeoutSec?: number
  /** Folder with the shared script library (uploaded as _lib/ with every taskserv). */
  libDir?: string
  /** Environment for every script (config `taskservs.env`); values may be secret references. */
  env?: Record<string, unknown>
  resolver?: SecretResolver
  /** Folder for per-run log files (one per host and taskserv). */
  logDir?: string
  /** Failures of a name skip dependents on every host ('global', clusters) or only on the same host. */
  dependencyScope?: 'host' | 'global'
  /** Skip a host's later items once one failed there (default true). */
  stopOnFailure?: boolean
  /** Lines of output kept in results (default 20). */
  tailLines?: number
  onEvent?: (event: TaskEvent) => void
  /** Remote root (default /var/lib/prov/taskservs). */
  remoteRoot?: string
}

/** A result for an item that was not run (the reason says why). */
export function notRunResult<T>(item: TaskItem<T>, reason: SkipReason, error: string, level?: number): TaskResult {
  return {
    schema: TASKSERV_RESULT_SCHEMA,
    server: item.host.name,
    taskserv: item.unit.name,
    action: item.action,
    status: 'skipped',
    reason,
    version: item.unit.version,
    duration_ms: 0,
    output: '',
    error,
    ...(level === undefined ? {} : { level }),
  }
}
