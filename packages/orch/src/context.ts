import { existsSync, statSync } from 'node:fs'
import {
  type CommonOptions,
  deniedError,
  ExitCode,
  isFinishedWorkflowStatus,
  log,
  notFoundError,
  parseStoreUrl,
  readStdinBuffer,
  resolveWorkspace,
  secretResolverFor,
  usageError,
  writeStdout,
} from '@prov/core'
import type { CommandConfig } from '@prov/core/config'
import type { EngineOptions } from './engine'
import type { OrchEvent, OrchStore } from './store/store'
import type { CompiledWorkflow } from './workflow'

export const storeArg = {
  type: 'string',
  description: 'Store: sqlite:PATH (default <workspace>/.prov/orch.db) or postgres://user@host:port/db',
  valueHint: 'URL',
} as const

/** The workflow a command acts on. */
export const idArg = { type: 'positional', description: 'Workflow id (wf-...)', required: true, valueHint: 'ID' } as const

/** A workflow file, or - for stdin. */
export const workflowFileArg = { type: 'positional', description: 'Workflow file (YAML or JSON), or - for stdin', required: true, valueHint: 'FILE' } as const

const loadConfig = async (common: CommonOptions) => (await import('@prov/core/config')).loadCommandConfig(common)

/** A PostgreSQL password in a config file that others can read is a leak waiting to happen. */
function warnIfPasswordShared(url: string, loaded: CommandConfig) {
  if (!/^postgres(ql)?:\/\/[^:@/]+:[^@/]+@/.test(url)) return
  const source = loaded.origin('orchestrator.store')?.source
  if (!source || source.startsWith('env:') || source.startsWith('--')) return
  try {
    const mode = statSync(source).mode & 0o777
    if (mode & 0o044) {
      log().warn(
        `${source} holds the PostgreSQL password of orchestrator.store and is readable by others (mode ${mode.toString(8)}); chmod 600 it, or use PGPASSFILE`,
      )
    }
  } catch {
    // not a file we can stat
  }
}

/** The store URL: --store, else $PROV_ORCH_STORE, else config `orchestrator.store`; relative SQLite paths against the workspace. */
export async function storeUrlFor(common: CommonOptions, flag?: string, loaded?: CommandConfig): Promise<{ url: string; baseDir: string }> {
  const envUrl = process.env.PROV_ORCH_STORE
  if (flag || envUrl) {
    const workspace = loaded ? loaded.workspace : resolveWorkspace(common.workspace)
    return { url: (flag ?? envUrl) as string, baseDir: workspace?.path ?? process.cwd() }
  }
  const config = loaded ?? (await loadConfig(common))
  warnIfPasswordShared(config.config.orchestrator.store, config)
  return { url: config.config.orchestrator.store, baseDir: config.workspace?.path ?? process.cwd() }
}

export async function openStore(common: CommonOptions, flag?: string, options: { loaded?: CommandConfig } = {}): Promise<OrchStore> {
  const { url, baseDir } = await storeUrlFor(common, flag, options.loaded)
  const { OrchStore } = await import('./store/store')
  return OrchStore.open(url, baseDir)
}

/**
 * The store of commands that only look at or act on existing workflows: a SQLite store that does
 * not exist yet stays absent (no file, no .prov/ folder made in the current directory).
 */
/**
 * Whether the SQLite store file exists. Only "no such file" means no store: a store we may not
 * read (another user's 0700 .prov) is refused like submit refuses it, not shown as empty.
 */
function storeFileExists(path: string): boolean {
  try {
    statSync(path)
    return true
  } catch (error) {
    const code = (error as NodeJS.ErrnoException).code
    if (code === 'ENOENT' || code === 'ENOTDIR') return false
    if (code === 'EACCES' || code === 'EPERM')
      throw deniedError(`cannot read the orchestrator store ${path} (${code}: permission denied)`, {
        location: path,
        hint: 'run as the user who owns the workspace, or name a store you may read with --store',
      })
    throw error
  }
}

export async function openExistingStore(common: CommonOptions, flag?: string): Promise<OrchStore | undefined> {
  const { url, baseDir } = await storeUrlFor(common, flag)
  const location = parseStoreUrl(url, baseDir)
  if (location.kind === 'sqlite' && !storeFileExists(location.path.split('?')[0])) return undefined
  const { OrchStore } = await import('./store/store')
  return OrchStore.open(url, baseDir)
}

/** Runs `fn` on the existing store that holds workflow `id` (exit 5 when there is no store at all). */
export async function withWorkflowStore<T>(common: CommonOptions, flag: string | undefined, id: string, fn: (store: OrchStore) => Promise<T>): Promise<T> {
  const store = await openExistingStore(common, flag)
  if (!store) {
    throw notFoundError(`no workflow '${id}' (there is no orchestrator store here yet)`, {
      hint: 'prov-orch submit FILE or prov-orch run FILE creates it; name another store with --store or -w WORKSPACE',
    })
  }
  try {
    return await fn(store)
  } finally {
    await store.close()
  }
}

/** What an engine takes from the configuration: the secret resolver and the default output cap. */
export async function engineSettings(common: CommonOptions, loaded?: CommandConfig): Promise<Pick<EngineOptions, 'secrets' | 'maxOutput'>> {
  const config = loaded ?? (await loadConfig(common))
  return {
    secrets: secretResolverFor(config.config.secrets.provider, config.workspace?.path),
    maxOutput: config.config.orchestrator.max_step_output,
  }
}

export function requireId(positionals: string[], command: string): string {
  const id = positionals[0]
  if (!id) throw usageError(`name a workflow id`, { hint: `prov-orch ${command} wf-...` })
  if (positionals.length > 1) throw usageError(`unexpected argument '${positionals[1]}'`, { hint: `prov-orch ${command} ID` })
  return id
}

export async function readWorkflowArg(positionals: string[], command: string) {
  const file = positionals[0]
  if (!file) throw usageError('name a workflow file (or - for stdin)', { hint: `prov-orch ${command} workflow.yaml` })
  const stdinText = file === '-' ? (await readStdinBuffer())?.toString('utf8') : undefined
  const { loadWorkflowFile } = await import('./workflow')
  return loadWorkflowFile(file, stdinText)
}

/** The compiled form of a workflow, as `validate` and the `--check` previews of `run`/`submit` print it. */
export function compiledRecord(workflow: CompiledWorkflow) {
  return { ...workflow, schema: 'prov.orch.workflow.compiled/v1' as const }
}

export function positiveInt(value: string | undefined, flag: string, fallback: number): number {
  if (value === undefined) return fallback
  const n = Number(value)
  if (!Number.isInteger(n) || n < 1) throw usageError(`${flag} must be a whole number of at least 1, got '${value}'`, { location: flag })
  return n
}

export const workflowExitCode = (status: string) => (status === 'succeeded' ? ExitCode.OK : ExitCode.FAILED)

const UNSERVED_GRACE_MS = 2000

/** The warning for work queued on a store that no engine or worker serves. */
export function unservedMessage(store: OrchStore, id: string): string {
  return `no prov-orch engine or worker serves ${store.location}: workflow ${id} waits until one does; start 'prov-orch serve' or 'prov-orch worker --until-idle' on this store`
}

/** Warns (once, now) when no engine or worker serves the store that `id` was queued on. */
export async function warnIfUnserved(store: OrchStore, id: string): Promise<void> {
  if (!(await store.engineServing())) log().warn(unservedMessage(store, id))
}

/** Follows a workflow's events (polling the store) until it is finished; returns its final status. */
export async function followEvents(
  store: OrchStore,
  id: string,
  onEvent: (event: OrchEvent) => void,
  options: { pollMs?: number; signal?: AbortSignal; onUnserved?: (message: string) => void } = {},
): Promise<string> {
  const { isTerminalEvent } = await import('./store/store')
  let after = 0
  // Waiting on a store nobody serves would wait forever in silence: say so once, after a grace
  // period in which an engine that is just starting takes its lock.
  let unservedSince: number | undefined
  let lastServingCheck = 0
  let told = false
  for (;;) {
    const events = await store.events(id, after)
    for (const e of events) {
      after = e.seq
      onEvent(e)
    }
    const last = events[events.length - 1]
    if (last && isTerminalEvent(last.type)) return last.type.slice('workflow.'.length)
    if (!events.length) {
      const wf = await store.get(id)
      if (isFinishedWorkflowStatus(wf.status)) {
        const rest = await store.events(id, after)
        for (const e of rest) onEvent(e)
        return wf.status
      }
      if (options.signal?.aborted) return wf.status
      const now = Date.now()
      if (options.onUnserved && !told && now - lastServingCheck >= 1000) {
        lastServingCheck = now
        if (await store.engineServing()) unservedSince = undefined
        else if (unservedSince === undefined) unservedSince = now
        else if (now - unservedSince >= UNSERVED_GRACE_MS) {
          told = true
          options.onUnserved(unservedMessage(store, id))
        }
      }
      await new Promise((r) => setTimeout(r, options.pollMs ?? 100))
    }
  }
}

export function printEventLine(event: OrchEvent) {
  writeStdout(`${JSON.stringify(event)}\n`)
}
