import { chmodSync, mkdirSync } from 'node:fs'
import { join } from 'node:path'
import {
  animationAllowed,
  ExitCode,
  isSecretFieldName,
  isSecretRef,
  type ProvContext,
  SshPool,
  type SshTarget,
  secretResolverFor,
  sshConnectionOptions,
  type Workspace,
} from '@prov/core'
import type { CommandConfig } from '@prov/core/config'
import { notRunResult, runTaskLevels, type TaskEvent, type TaskItem, type TaskResult } from '../engine'
import { libDir } from './catalog'
import { resultWriter } from './common'
import { recordResults } from './state'

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

interface ListrWaiter {
  task?: { output: string; title: string; skip(message?: string): void }
  resolve?: () => void
  reject?: (error: Error) => void
  ended?: TaskResult
  lastLine?: string
  settled?: boolean
}

/**
 * listr2 progress on a TTY stderr: one line per (server, taskserv), the last output line under a
 * running one, ✔/✖/↓ when it ends. The engine drives it through its events.
 */
async function listrProgress(items: TaskItem<SshTarget>[]): Promise<{ onEvent: (event: TaskEvent) => void; done: Promise<void>; abort: () => void }> {
  const { Listr, ListrLogger, ProcessOutput } = await import('listr2')
  const waiters = new Map<string, ListrWaiter>()
  const key = (host: string, name: string) => `${host}\0${name}`
  const settle = (w: ListrWaiter) => {
    const r = w.ended
    if (!r || !w.resolve || !w.task || w.settled) return
    w.settled = true
    w.task.title = `${r.taskserv} on ${r.server}: ${r.status}${r.version ? ` (${r.version})` : ''} ${seconds(r.duration_ms)}`
    if (r.status === 'failed') w.reject?.(new Error(`${r.taskserv} on ${r.server}: ${r.error ?? 'failed'}`))
    else {
      if (r.status === 'skipped') w.task.skip(`${r.taskserv} on ${r.server}: ${r.error ?? 'skipped'}`)
      w.resolve()
    }
  }
  const logger = new ListrLogger({ processOutput: new ProcessOutput(process.stderr, process.stderr) })
  const list = new Listr(
    items.map((item) => ({
      title: `${item.action} ${item.unit.name} on ${item.host.name}`,
      task: (_ctx: unknown, task: ListrWaiter['task']) =>
        new Promise<void>((resolve, reject) => {
          const w = waiters.get(key(item.host.name, item.unit.name)) ?? {}
          Object.assign(w, { task, resolve, reject })
          waiters.set(key(item.host.name, item.unit.name), w)
          if (w.lastLine && task) task.output = w.lastLine
          settle(w)
        }),
    })),
    {
      concurrent: true,
      exitOnError: false,
      registerSignalListeners: false,
      // stdout carries records only: the progress goes to the TTY on stderr even when stdout is a pipe.
      fallbackRendererCondition: false,
      rendererOptions: { logger, collapseErrors: false },
      fallbackRendererOptions: { logger },
    },
  )
  const done = list.run().then(
    () => undefined,
    () => undefined,
  )
  return {
    done,
    // Ends every line still waiting (the engine stopped early).
    abort() {
      for (const item of items) {
        const w = waiters.get(key(item.host.name, item.unit.name)) ?? {}
        w.ended ??= notRunResult(item, 'aborted', 'not run')
        waiters.set(key(item.host.name, item.unit.name), w)
        settle(w)
      }
    },
    onEvent(event) {
      if (event.type === 'output') {
        const w = waiters.get(key(event.host, event.taskserv)) ?? {}
        w.lastLine = event.line
        if (w.task) w.task.output = event.line
        waiters.set(key(event.host, event.taskserv), w)
      } else if (event.type === 'end') {
        const w = waiters.get(key(event.result.server, event.result.taskserv)) ?? {}
        w.ended = event.result
        waiters.set(key(event.result.server, event.result.taskserv), w)
        settle(w)
      }
    },
  }
}

/** The SSH connection pool of a command, as the `ssh` config section says. */
export function sshPoolFor(config: CommandConfig): SshPool {
  return new SshPool(config.workspace?.path ?? process.cwd(), sshConnectionOptions(config.config.ssh))
}

/** Runs the levels over SSH; returns the results (already written and recorded). */
export async function executeLevels(options: ExecuteOptions): Promise<TaskResult[]> {
  const { ctx, config, workspace } = options
  const hosts = new Set(options.levels.flat().map((i) => i.host.name))
  const pool = options.pool ?? sshPoolFor(config)
  const stamp = new Date().toISOString().replace(/[:.]/g, '-')
  const logDir = workspace ? join(workspace.paths.logs, 'taskserv', `${stamp}-${options.label}`) : undefined
  if (workspace && logDir) {
    mkdirSync(logDir, { recursive: true, mode: 0o700 })
    // A logs folder made before folders were created 0700.
    for (const dir of [workspace.paths.logs, join(workspace.paths.logs, 'taskserv')]) chmodSync(dir, 0o700)
  }
  const fancy = animationAllowed() && !ctx.common.quiet && ctx.common.logFormat === 'text' && options.levels.flat().length > 0
  const listr = fancy ? await listrProgress(options.levels.flat()) : undefined
  const report = listr?.onEvent ?? progressReporter(ctx, hosts.size > 1)
  const all: TaskResult[] = []
  try {
    const results = await runTaskLevels(options.levels, {
      runner: pool,
      parallel: ctx.common.parallel ?? config.config.taskservs.parallel,
      timeoutSec: options.timeoutSec ?? config.config.taskservs.timeout,
      libDir: libDir(),
      env: config.config.taskservs.env,
      resolver: secretResolverFor(config.config.secrets.provider, workspace?.path),
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
    listr?.abort()
    await listr?.done
    if (!options.pool) await pool.closeAll()
    // Recorded for later actions; a plain value of a password-like setting is not kept (references are).
    const keep = (settings: Record<string, unknown> = {}) =>
      Object.fromEntries(Object.entries(settings).filter(([k, v]) => !isSecretFieldName(k) || isSecretRef(v)))
    const settings = new Map(options.levels.flat().map((i) => [`${i.host.name}\0${i.unit.name}`, keep(i.unit.settings)]))
    await recordResults(workspace?.paths, all, options.cluster, (server, name) => settings.get(`${server}\0${name}`))
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

/** Runs the levels, streaming each result record as it arrives; the exit code of the whole run. */
export async function executeAndReport(options: Omit<ExecuteOptions, 'write'>): Promise<number> {
  const out = resultWriter(options.ctx)
  const results = await executeLevels({ ...options, write: out.write })
  out.end()
  return exitCodeOf(results)
}
