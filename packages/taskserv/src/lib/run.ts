import { join } from 'node:path'
import * as core from '@prov/core'
import {
  ExitCode,
  isProvError,
  notFoundError,
  type ProvContext,
  runTaskLevels,
  type SecretResolver,
  SshPool,
  type SshTarget,
  type TaskEvent,
  type TaskItem,
  type TaskResult,
  type Workspace,
} from '@prov/core'
import type { CommandConfig } from '@prov/core/config'
import { libDir } from './catalog'
import { recordResults } from './state'

/** `{"secret": "db/password"}` -> $PROV_SECRET_DB_PASSWORD. */
export function envResolver(env: NodeJS.ProcessEnv = process.env): SecretResolver {
  return {
    async get(name: string) {
      const key = `PROV_SECRET_${name.replace(/[^A-Za-z0-9]/g, '_').toUpperCase()}`
      const value = env[key]
      if (value === undefined) throw notFoundError(`secret '${name}' is not set`, { hint: `store it with prov-kms secret set ${name}, or export ${key}` })
      core.registerSecretValue(value)
      return value
    },
  }
}

/** Secret references resolve from the workspace store (prov-kms), then from PROV_SECRET_<NAME> (or only env). */
export function secretResolver(config: CommandConfig): SecretResolver {
  const env = envResolver()
  // The workspace store lives in core's secret-store module (prov-kms); looked up by name so this
  // package works with or without it.
  const factory = (core as unknown as Record<string, unknown>).workspaceSecretResolver as ((ws: string) => SecretResolver) | undefined
  if (config.config.secrets.provider === 'env' || !config.workspace || !factory) return env
  const store = factory(config.workspace.path)
  return {
    async get(name: string) {
      try {
        return await store.get(name)
      } catch (error) {
        if (isProvError(error) && error.code === ExitCode.NOT_FOUND) return env.get(name)
        throw error
      }
    },
  }
}

export interface ExecuteOptions {
  ctx: ProvContext<any>
  config: CommandConfig
  workspace: Workspace | undefined
  levels: TaskItem<SshTarget>[][]
  dependencyScope?: 'host' | 'global'
  /** Results are written here as they arrive (and recorded in the workspace state). */
  write?: (result: TaskResult) => void
  cluster?: string
  /** Run label for the log folder. */
  label: string
  timeoutSec?: number
  pool?: SshPool
  tailLines?: number
  /** Skip a host's later items after a failure (default true). */
  stopOnFailure?: boolean
}

const seconds = (ms: number) => `${(ms / 1000).toFixed(1)} s`

/** Human progress on stderr: a line when an item starts and ends, script output as it streams. */
export function progressReporter(ctx: ProvContext<any>, multiHost: boolean): (event: TaskEvent) => void {
  const log = ctx.log
  return (event) => {
    switch (event.type) {
      case 'level':
        log.debug(`level ${event.level + 1}: ${event.items} item(s)`)
        break
      case 'start':
        log.start(`${event.action} ${event.taskserv} on ${event.host}`)
        break
      case 'output':
        if (!ctx.common.quiet) log.log(`${multiHost ? `[${event.host}] ` : ''}${event.taskserv}: ${event.line}`)
        break
      case 'end': {
        const r = event.result
        const text = `${r.taskserv} on ${r.server}: ${r.status}${r.version ? ` (${r.version})` : ''} in ${seconds(r.duration_ms)}${r.error ? ` — ${r.error}` : ''}`
        if (r.status === 'failed') log.error(text)
        else if (r.status === 'skipped') log.warn(text)
        else log.success(text)
        break
      }
    }
  }
}

/** Runs the levels over SSH; returns the results (already written and recorded). */
export async function executeLevels(options: ExecuteOptions): Promise<TaskResult[]> {
  const { ctx, config, workspace } = options
  const hosts = new Set(options.levels.flat().map((i) => i.host.name))
  const pool =
    options.pool ??
    new SshPool(workspace?.path ?? process.cwd(), {
      connectTimeoutMs: config.config.ssh.connect_timeout * 1000,
      retries: config.config.ssh.retries,
      idleTimeoutMs: config.config.ssh.idle_timeout * 1000,
      privateKeyPath: config.config.ssh.key_path,
    })
  const stamp = new Date().toISOString().replace(/[:.]/g, '-')
  const logDir = workspace ? join(workspace.paths.logs, 'taskserv', `${stamp}-${options.label}`) : undefined
  const report = progressReporter(ctx, hosts.size > 1)
  const all: TaskResult[] = []
  try {
    const results = await runTaskLevels(options.levels, {
      runner: pool,
      parallel: ctx.common.parallel ?? config.config.taskservs.parallel,
      timeoutSec: options.timeoutSec ?? config.config.taskservs.timeout,
      libDir: libDir(),
      env: config.config.taskservs.env,
      resolver: secretResolver(config),
      logDir,
      dependencyScope: options.dependencyScope ?? 'host',
      tailLines: options.tailLines,
      stopOnFailure: options.stopOnFailure,
      onEvent: (event) => {
        report(event)
        if (event.type === 'end') {
          all.push(event.result)
          options.write?.(event.result)
        }
      },
    })
    return results
  } finally {
    if (!options.pool) await pool.closeAll()
    await recordResults(workspace?.paths, all, options.cluster)
    if (logDir && all.length) ctx.log.info(`logs: ${logDir}`)
  }
}

/** 0 when nothing failed; 6 when some targets failed (the records say which); 1 when all did. */
export function exitCodeOf(results: TaskResult[]): number {
  const failed = results.filter((r) => r.status === 'failed').length
  if (!failed) return ExitCode.OK
  const fine = results.filter((r) => r.status === 'ok' || r.status === 'changed').length
  return fine || results.length > failed ? ExitCode.PARTIAL : ExitCode.FAILED
}
