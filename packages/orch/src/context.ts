import { type CommonOptions, readStdinBuffer, resolveWorkspace, usageError, writeStdout } from '@prov/core'
import type { OrchEvent, OrchStore } from './store/store'

export const storeArg = {
  type: 'string',
  description: 'Store: sqlite:PATH (default <workspace>/.prov/orch.db) or postgres://user@host:port/db',
  valueHint: 'URL',
} as const

/** The store URL: --store, else config `orchestrator.store`, relative SQLite paths against the workspace. */
export async function storeUrlFor(common: CommonOptions, flag?: string): Promise<{ url: string; baseDir: string }> {
  const envUrl = process.env.PROV_ORCH_STORE
  if (flag || envUrl) {
    const workspace = resolveWorkspace(common.workspace)
    return { url: (flag ?? envUrl) as string, baseDir: workspace?.path ?? process.cwd() }
  }
  const { loadCommandConfig } = await import('@prov/core/config')
  const loaded = await loadCommandConfig(common)
  return { url: loaded.config.orchestrator.store, baseDir: loaded.workspace?.path ?? process.cwd() }
}

export async function openStore(common: CommonOptions, flag?: string): Promise<OrchStore> {
  const { url, baseDir } = await storeUrlFor(common, flag)
  const { OrchStore } = await import('./store/store')
  return OrchStore.open(url, baseDir)
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

export function positiveInt(value: string | undefined, flag: string, fallback: number): number {
  if (value === undefined) return fallback
  const n = Number(value)
  if (!Number.isInteger(n) || n < 1) throw usageError(`${flag} must be a whole number of at least 1, got '${value}'`, { location: flag })
  return n
}

export const workflowExitCode = (status: string) => (status === 'succeeded' ? 0 : 1)

/** Follows a workflow's events (polling the store) until it is finished; returns its final status. */
export async function followEvents(
  store: OrchStore,
  id: string,
  onEvent: (event: OrchEvent) => void,
  options: { pollMs?: number; signal?: AbortSignal } = {},
): Promise<string> {
  let after = 0
  for (;;) {
    const events = await store.events(id, after)
    for (const e of events) {
      after = e.seq
      onEvent(e)
    }
    const last = events[events.length - 1]
    if (last && /^workflow\.(succeeded|failed|cancelled|rolled_back)$/.test(last.type)) return last.type.slice('workflow.'.length)
    if (!events.length) {
      const wf = await store.get(id)
      if (['succeeded', 'failed', 'cancelled', 'rolled_back'].includes(wf.status)) {
        const rest = await store.events(id, after)
        for (const e of rest) onEvent(e)
        return wf.status
      }
      if (options.signal?.aborted) return wf.status
      await new Promise((r) => setTimeout(r, options.pollMs ?? 100))
    }
  }
}

export function printEventLine(event: OrchEvent) {
  writeStdout(`${JSON.stringify(event)}\n`)
}
