import { existsSync, statSync } from 'node:fs'
import {
  animationAllowed,
  type CommonOptions,
  deniedError,
  ExitCode,
  getServer,
  listServers,
  log,
  loggerOptions,
  newServerRecord,
  notFoundError,
  type ProvContext,
  ProvError,
  type RecordWriter,
  readServerState,
  removeServer,
  reportError,
  requireWorkspace,
  type ServerRecord,
  type ServerState,
  secretResolverFor,
  serversFromRecords,
  toProvError,
  updateServerState,
  usageError,
  type Workspace,
} from '@prov/core'
import type { ProvConfig } from '@prov/core/config'
import type { ArgsDef } from 'citty'
import { loadProvider } from './providers/registry'
import type { Provider, ProviderConfig, ProviderContext, ServerSpec } from './providers/types'

export interface ServerEnv {
  workspace: Workspace
  /** The resolved configuration, validated by its schema (defaults applied). */
  config: ProvConfig
  common: CommonOptions
  provider(name: string): Promise<Provider>
  providerContext(name: string): ProviderContext
}

/** Workspace + resolved configuration (`list` on an empty workspace answers before needing it). */
export async function serverEnv(common: CommonOptions): Promise<ServerEnv> {
  const workspace = requireWorkspace(common.workspace)
  const { loadCommandConfig } = await import('@prov/core/config')
  const { config } = await loadCommandConfig(common)
  const lookup = { workspacePath: workspace.path, infra: common.infra }
  const env: ServerEnv = {
    workspace,
    config,
    common,
    provider: (name) => loadProvider(name, lookup),
    providerContext: (name) => providerContext(workspace, config, name),
  }
  return env
}

/**
 * The section `providers.<name>`: for bundled providers the schema has validated it (the local
 * provider types it as `LocalProviderConfig`), a workspace provider's own section is free-form.
 */
export function providerConfig(config: ProvConfig, name: string): ProviderConfig {
  return ((config.providers as Record<string, unknown>)[name] ?? {}) as ProviderConfig
}

export function providerContext(workspace: Workspace, config: ProvConfig, name: string): ProviderContext {
  return {
    workspace,
    config: providerConfig(config, name),
    rootConfig: config,
    log: log(),
    getData: (server) => currentState(workspace).provider_data[server],
    save: (record, data) =>
      saveTogether(workspace, (state) => {
        state.servers[record.name] = record
        if (data !== undefined) state.provider_data[record.name] = data
      }),
    allServers: () => listServers(workspace),
    allocate: async (fn) => {
      let chosen: ServerRecord | undefined
      await updateServerState(workspace, (state) => {
        chosen = fn(Object.values(state.servers))
        state.servers[chosen.name] = chosen
      })
      return chosen as ServerRecord
    },
  }
}

/** The last state read per workspace, with the identity of the file it came from. */
const stateReads = new Map<string, { key: string; state: ServerState }>()

/**
 * The workspace's server state, read again only when the file changed: every write replaces it
 * by an atomic rename (a new inode), so inode, size and mtime say whether the copy is current.
 * A `list` asks for each record's provider data: a thousand servers are one read, not a thousand.
 */
function currentState(workspace: Workspace): ServerState {
  let key = 'missing'
  try {
    const stat = statSync(workspace.paths.servers, { bigint: true })
    key = `${stat.ino}:${stat.size}:${stat.mtimeNs}`
  } catch {
    // No state file yet: readServerState answers the empty state.
  }
  const cached = stateReads.get(workspace.path)
  if (cached?.key === key) return cached.state
  const state = readServerState(workspace)
  stateReads.set(workspace.path, { key, state })
  return state
}

type StateChange = (state: ServerState) => void
interface PendingSaves {
  changes: { change: StateChange; done: () => void; failed: (error: unknown) => void }[]
  writing: boolean
}
const pendingSaves = new Map<string, PendingSaves>()

/**
 * Saves of concurrent jobs, written together: each save still resolves only once its change is
 * on disk, but the saves that arrive while a write is in progress share the next write (one read,
 * one write, one fsync) instead of one synchronous fsync each, which stalls every job of an apply.
 */
function saveTogether(workspace: Workspace, change: StateChange): Promise<void> {
  let queue = pendingSaves.get(workspace.path)
  if (!queue) {
    queue = { changes: [], writing: false }
    pendingSaves.set(workspace.path, queue)
  }
  const own = queue
  return new Promise<void>((done, failed) => {
    own.changes.push({ change, done, failed })
    if (own.writing) return
    own.writing = true
    void (async () => {
      while (own.changes.length) {
        // A write blocks the event loop (fsync): answers that arrived meanwhile run first, so the
        // saves they lead to join this batch.
        await new Promise((resolve) => setImmediate(resolve))
        const batch = own.changes.splice(0)
        try {
          await updateServerState(workspace, (state) => {
            for (const { change } of batch) change(state)
          })
          for (const { done } of batch) done()
        } catch (error) {
          for (const { failed } of batch) failed(error)
        }
      }
      own.writing = false
    })()
  })
}

/** A provider `liveServers` could not ask: its servers are listed with status `unknown`. */
export interface UnreadProvider {
  provider: string
  error: ProvError
}

/**
 * Servers with their live status (providers check pids, namespaces, cloud APIs...). A provider
 * that cannot be asked (credentials, network, an unusable answer) leaves its servers `unknown`
 * with one warning line on stderr naming it, and is reported to `unread` for the exit code.
 */
export async function liveServers(
  env: ServerEnv,
  records: ServerRecord[] = listServers(env.workspace),
  unread?: (failure: UnreadProvider) => void,
): Promise<ServerRecord[]> {
  const byProvider = new Map<string, ServerRecord[]>()
  for (const record of records) byProvider.set(record.provider, [...(byProvider.get(record.provider) ?? []), record])
  const out: ServerRecord[] = []
  for (const [name, group] of byProvider) {
    try {
      const provider = await env.provider(name)
      out.push(...(await provider.list(env.providerContext(name), group)))
    } catch (error) {
      const failure = toProvError(error)
      log().warn(
        `provider ${name} could not be asked, its ${group.length} server(s) show status unknown: ${failure.message}${failure.hint ? ` (hint: ${failure.hint})` : ''}`,
      )
      unread?.({ provider: name, error: failure })
      out.push(...group.map((record) => ({ ...record, status: 'unknown' as const })))
    }
  }
  return out.sort((a, b) => a.name.localeCompare(b.name))
}

/**
 * Target servers of a command: names, or the word `all` (every server of the workspace; with
 * --infra, of that infra), from the arguments, else piped `prov.server/v1` records. Unknown names
 * exit 5 with the nearest.
 */
export async function targetServers<T extends ArgsDef>(ctx: ProvContext<T>, env: ServerEnv, options: { allFlag?: boolean } = {}): Promise<ServerRecord[]> {
  let names = ctx.positionals
  if (names.includes('all') || options.allFlag) {
    if (names.length > (options.allFlag ? 0 : 1)) throw usageError('give server names or all, not both', { hint: 'all already means every server' })
    const every = listServers(env.workspace)
    return ctx.common.infra ? every.filter((s) => s.infra === ctx.common.infra) : every
  }
  if (!names.length) {
    const input = await ctx.stdin()
    if (input?.records.length) names = serversFromRecords(input.records).map((r) => r.name)
  }
  if (!names.length) throw usageError('no servers named', { hint: 'give server names, `all`, or pipe prov.server/v1 records' })
  const unique = [...new Set(names)]
  return unique.map((name) => getServer(env.workspace, name))
}

/** A record for `create` from a spec, keeping the original created_at when the server existed. */
export function recordFromSpec(spec: ServerSpec, previous?: ServerRecord): ServerRecord {
  return newServerRecord({
    name: spec.name,
    provider: spec.provider,
    status: 'creating',
    hostname: spec.name,
    ip_address: previous?.provider === spec.provider ? previous.ip_address : (spec.address ?? ''),
    ssh: { ...spec.ssh },
    labels: { ...spec.labels },
    infra: spec.infra,
    cores: spec.cores,
    memory_mb: spec.memory_mb,
    disk_gb: spec.disk_gb,
    zone: spec.zone,
    plan: spec.plan,
    image: spec.image,
  })
}

export interface ActionOutcome {
  record: ServerRecord & { action?: string; error?: string; deleted?: boolean }
  ok: boolean
  /** Why it failed, with its exit code, location and hint (printed as the contract's error line). */
  error?: ProvError
}

/**
 * Failures whose code says what to fix rather than that an action failed: credentials (4),
 * configuration (3), a value the API refused as invalid (2), a server the provider does not have (5).
 */
const invocationCodes: ReadonlySet<number> = new Set([ExitCode.DENIED, ExitCode.CONFIG, ExitCode.USAGE, ExitCode.NOT_FOUND])

/**
 * Exit code for a set of outcomes: 0 all fine, 1 all failed, 6 some failed. When every job failed
 * with the same one of those codes (a provider refused the credentials: 4; its configuration is
 * missing a credential: 3; the API refused a value: 2; the server is gone: 5), that code, as a
 * single call would give.
 */
export function outcomeCode(outcomes: ActionOutcome[]): number {
  const failed = outcomes.filter((o) => !o.ok)
  if (!failed.length) return ExitCode.OK
  if (failed.length !== outcomes.length) return ExitCode.PARTIAL
  const codes = new Set(failed.map((o) => o.error?.code ?? ExitCode.FAILED))
  const [only] = codes
  return codes.size === 1 && invocationCodes.has(only) ? only : ExitCode.FAILED
}

export type Job = { title: string; run: () => Promise<ActionOutcome> }

/**
 * Runs jobs with a parallel limit; each outcome is written as it arrives (ndjson streams).
 * Progress is listr2 on a TTY stderr, plain log lines otherwise, nothing with --quiet.
 */
export async function runJobs(jobs: Job[], options: { parallel: number; writer?: RecordWriter; quiet: boolean }): Promise<ActionOutcome[]> {
  const outcomes: ActionOutcome[] = []
  // NDJSON streams records as they finish; whole documents list them in job order.
  const streaming = options.writer?.format === 'ndjson'
  const ordered = new Map<Job, ActionOutcome>()
  const runOne = async (job: Job) => {
    let outcome: ActionOutcome
    try {
      outcome = await job.run()
    } catch (error) {
      outcome = failure({ name: job.title, provider: 'unknown' }, 'unknown', error)
    }
    outcomes.push(outcome)
    ordered.set(job, outcome)
    if (streaming) options.writer?.write(outcome.record)
    return outcome
  }
  const flush = () => {
    if (!streaming) for (const job of jobs) if (ordered.has(job)) options.writer?.write(ordered.get(job)?.record)
  }
  if (jobs.length > 1 && !options.quiet && animationAllowed()) {
    const { DefaultRenderer, Listr, ListrLogger, ProcessOutput } = await import('listr2')
    // Progress belongs on stderr: the renderer writes to a logger whose "stdout" is stderr, and
    // is allowed to animate even when stdout (our JSON) is redirected.
    class StderrRenderer extends DefaultRenderer {
      static override nonTTY = true
    }
    const logger = new ListrLogger({ processOutput: new ProcessOutput(process.stderr, process.stderr) })
    const list = new Listr(
      jobs.map((job) => ({
        title: job.title,
        task: async () => {
          const outcome = await runOne(job)
          if (!outcome.ok) throw new Error(`${job.title}: ${outcome.record.error ?? 'failed'}`)
        },
      })),
      {
        concurrent: options.parallel,
        exitOnError: false,
        registerSignalListeners: false,
        renderer: StderrRenderer,
        rendererOptions: { logger },
        fallbackRenderer: 'simple',
        fallbackRendererOptions: { logger },
      },
    )
    await list.run().catch(() => undefined)
    flush()
    for (const job of jobs) {
      const outcome = ordered.get(job)
      if (outcome && !outcome.ok) reportJobError(job, outcome)
    }
    return outcomes
  }
  const queue = [...jobs]
  const workers = Array.from({ length: Math.min(options.parallel, queue.length) }, async () => {
    for (let job = queue.shift(); job; job = queue.shift()) {
      const outcome = await runOne(job)
      if (!outcome.ok) reportJobError(job, outcome)
      else if (!options.quiet) log().info(`${job.title}: ${outcome.record.status}`)
    }
  })
  await Promise.all(workers)
  flush()
  return outcomes
}

/**
 * A failed job's error as the contract's one line (`prov-server: error: <job>: <what> (at ...);
 * hint: ...`, or NDJSON with code and kind under --log-format json). Errors print even with --quiet.
 */
function reportJobError(job: Job, outcome: ActionOutcome): void {
  const error = outcome.error ?? toProvError(new Error(outcome.record.error ?? 'failed'))
  const { code, location, hint, details } = error
  reportError(new ProvError(code, `${job.title}: ${error.message}`, { location, hint, details, cause: error }), Boolean(loggerOptions().debug))
}

/** The outcome of a job that failed: the record marked `error`, and the error kept for reporting. */
export function failure(record: ServerRecord | { name: string; provider: string }, action: string, error: unknown): ActionOutcome {
  const provError = toProvError(error)
  const base = 'schema' in record ? record : newServerRecord(record)
  return { ok: false, record: { ...base, status: 'error', action, error: provError.message }, error: provError }
}

export async function createJob(env: ServerEnv, spec: ServerSpec): Promise<ActionOutcome> {
  const provider = await env.provider(spec.provider)
  const ctx = env.providerContext(spec.provider)
  const previous = readServerState(env.workspace).servers[spec.name]
  const { renderDayZero, summarizeDayZero } = await import('./dayzero/document')
  const at = `server '${spec.name}'`
  // The record keeps the fingerprint of the first-boot document (a later plan reports a change).
  const masked = await renderDayZero(spec, { workspacePath: env.workspace.path, at })
  const dayZero = summarizeDayZero(masked)
  const record: ServerRecord = { ...recordFromSpec(spec, previous), ...(dayZero ? { day_zero: dayZero } : {}) }
  // The machine gets the document with its secrets; it goes to the provider only, never to state or logs.
  const secrets = masked ? secretResolverFor(env.config.secrets.provider, env.workspace.path) : undefined
  const document = masked && secrets ? await renderDayZero(spec, { workspacePath: env.workspace.path, at, secrets }) : undefined
  // Recorded before any work: a killed apply leaves `creating`, which the next plan re-creates.
  await ctx.save(record)
  try {
    const created = await provider.create(ctx, spec, record, document ? { userData: document.text, userDataFormat: document.format } : {})
    return { ok: true, record: { ...created, action: 'create' } }
  } catch (error) {
    const current = readServerState(env.workspace).servers[spec.name] ?? record
    // A failed create leaves nothing behind: what exists is what state says.
    await provider.delete(ctx, current, { keepStorage: false }).catch(() => undefined)
    await removeServer(env.workspace, spec.name)
    return failure(current, 'create', error)
  }
}

/** Refuses early (exit 4) when a provider that needs root runs without it. */
export async function preflight(env: ServerEnv, providerNames: Iterable<string>): Promise<void> {
  for (const name of new Set(providerNames)) {
    const provider = await env.provider(name)
    if (provider.capabilities.root && typeof process.getuid === 'function' && process.getuid() !== 0) {
      throw deniedError(`the ${name} provider needs root (namespaces, bridges, overlay mounts)`, {
        hint: 'run as root (sudo -E prov-server ...), or use the ssh provider for existing hosts',
      })
    }
  }
}

export async function deleteJob(env: ServerEnv, record: ServerRecord, keepStorage: boolean): Promise<ActionOutcome> {
  try {
    const provider = await env.provider(record.provider)
    const ctx = env.providerContext(record.provider)
    await provider.delete(ctx, record, { keepStorage })
    await removeServer(env.workspace, record.name)
    return { ok: true, record: { ...record, status: 'stopped', action: 'delete', deleted: true } }
  } catch (error) {
    return failure(record, 'delete', error)
  }
}

export async function powerJob(env: ServerEnv, record: ServerRecord, action: 'start' | 'stop' | 'restart'): Promise<ActionOutcome> {
  try {
    const provider = await env.provider(record.provider)
    const ctx = env.providerContext(record.provider)
    let current = record
    if (action === 'stop' || action === 'restart') current = await provider.stop(ctx, current)
    if (action === 'start' || action === 'restart') current = await provider.start(ctx, current)
    return { ok: true, record: { ...current, action } }
  } catch (error) {
    return failure(record, action, error)
  }
}

/** Runs the jobs of a command (`--parallel` at a time), writes each record, and returns the exit code. */
export async function runToCode<T extends ArgsDef>(ctx: ProvContext<T>, jobs: Job[]): Promise<number> {
  const writer = ctx.writer()
  const outcomes = await runJobs(jobs, { parallel: parallelOf(ctx.common), writer, quiet: ctx.common.quiet })
  writer.end()
  return outcomeCode(outcomes)
}

export function parallelOf(common: CommonOptions, fallback = 10): number {
  return common.parallel ?? fallback
}

export function ensureExists(path: string, what: string): void {
  if (!existsSync(path)) throw notFoundError(`${what} not found`, { location: path })
}
