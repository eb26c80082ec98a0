/**
 * A small client other binaries use to hand work to a running prov-orch (REST on
 * `orchestrator.endpoint`), and the routing rules of the seed's example E18: which operations
 * run directly and which go through the orchestrator. Uses the global fetch: no dependency is
 * loaded until a function is called.
 */
import { failedError } from './errors'

export interface OrchClientConfig {
  orchestrator: { enabled: boolean; endpoint: string; fallback_to_direct: boolean; timeout_seconds?: number }
  execution: { default_mode: 'direct' | 'orchestrated' | 'auto'; force_orchestrated: string[]; force_direct: string[] }
}

export interface OrchClientOptions {
  /** Bearer token (JWT) when the orchestrator requires auth; default $PROV_ORCH_TOKEN. */
  token?: string
  timeoutMs?: number
  signal?: AbortSignal
}

export interface OrchEventRecord {
  schema: 'prov.orch.event/v1'
  workflow_id: string
  seq: number
  ts: string
  type: string
  step?: string
  data?: Record<string, unknown>
}

export type ExecutionMode = 'direct' | 'orchestrated'

const base = (config: OrchClientConfig) => config.orchestrator.endpoint.replace(/\/+$/, '')

function headers(options: OrchClientOptions, json = false): Record<string, string> {
  const token = options.token ?? process.env.PROV_ORCH_TOKEN
  return { ...(token ? { authorization: `Bearer ${token}` } : {}), ...(json ? { 'content-type': 'application/json' } : {}) }
}

/** True when an orchestrator answers /health at the configured endpoint (within 1 s by default). */
export async function orchestratorAvailable(config: OrchClientConfig, options: OrchClientOptions = {}): Promise<boolean> {
  if (!config.orchestrator.enabled) return false
  try {
    const res = await fetch(`${base(config)}/health`, { signal: AbortSignal.timeout(options.timeoutMs ?? 1000) })
    if (!res.ok) return false
    const body = (await res.json()) as { data?: { healthy?: boolean } }
    return body.data?.healthy === true
  } catch {
    return false
  }
}

/** Submits a prov.orch.workflow/v1 document; returns its id. Errors carry the orchestrator's message. */
export async function submitWorkflow(
  config: OrchClientConfig,
  workflow: Record<string, unknown>,
  options: OrchClientOptions = {},
): Promise<{ workflow_id: string; status: string }> {
  let res: Response
  try {
    res = await fetch(`${base(config)}/v1/workflows`, {
      method: 'POST',
      headers: headers(options, true),
      body: JSON.stringify({ schema: 'prov.orch.workflow/v1', ...workflow }),
      signal: AbortSignal.timeout(options.timeoutMs ?? (config.orchestrator.timeout_seconds ?? 60) * 1000),
    })
  } catch (error) {
    throw failedError(`orchestrator at ${base(config)} unreachable: ${(error as Error).message}`, { hint: 'start it with prov-orch serve, or run direct' })
  }
  const body = (await res.json().catch(() => ({}))) as { data?: { workflow_id: string; status: string }; error?: { message?: string } }
  if (!res.ok || !body.data) throw failedError(`orchestrator refused the workflow (${res.status}): ${body.error?.message ?? res.statusText}`)
  return body.data
}

/** Streams a workflow's events (Server-Sent Events) until it finishes. */
export async function* watchWorkflow(config: OrchClientConfig, id: string, options: OrchClientOptions = {}): AsyncGenerator<OrchEventRecord> {
  const res = await fetch(`${base(config)}/v1/workflows/${encodeURIComponent(id)}/events`, { headers: headers(options), signal: options.signal })
  if (!res.ok || !res.body) throw failedError(`cannot watch workflow ${id}: HTTP ${res.status}`)
  const decoder = new TextDecoder()
  let buffer = ''
  for await (const chunk of res.body as unknown as AsyncIterable<Uint8Array>) {
    buffer += decoder.decode(chunk, { stream: true })
    let end = buffer.indexOf('\n\n')
    while (end >= 0) {
      const block = buffer.slice(0, end)
      buffer = buffer.slice(end + 2)
      const data = block
        .split('\n')
        .filter((l) => l.startsWith('data:'))
        .map((l) => l.slice(5).trimStart())
        .join('\n')
      if (data) yield JSON.parse(data) as OrchEventRecord
      end = buffer.indexOf('\n\n')
    }
  }
}

/** `*` matches any run of characters (dots included): `*.list`, `batch.*`. */
export function operationMatches(operation: string, pattern: string): boolean {
  const re = new RegExp(
    `^${pattern
      .split('*')
      .map((p) => p.replace(/[.+?^${}()|[\]\\]/g, '\\$&'))
      .join('.*')}$`,
  )
  return re.test(operation)
}

/**
 * E18: force_direct, then force_orchestrated, then execution.default_mode (auto = the orchestrator
 * when one is running). An orchestrated choice with no orchestrator running falls back to direct
 * when orchestrator.fallback_to_direct is set, and is an error otherwise. `viaOrch` (the
 * `--via-orch` flag) forces orchestrated.
 */
export async function chooseExecutionMode(
  operation: string,
  config: OrchClientConfig,
  options: OrchClientOptions & { viaOrch?: boolean; available?: () => Promise<boolean> } = {},
): Promise<{ mode: ExecutionMode; reason: string }> {
  const available = options.available ?? (() => orchestratorAvailable(config, options))
  let wanted: ExecutionMode | 'auto'
  let reason: string
  if (options.viaOrch) {
    wanted = 'orchestrated'
    reason = '--via-orch'
  } else if (config.execution.force_direct.some((p) => operationMatches(operation, p))) {
    return { mode: 'direct', reason: `${operation} matches execution.force_direct` }
  } else if (config.execution.force_orchestrated.some((p) => operationMatches(operation, p))) {
    wanted = 'orchestrated'
    reason = `${operation} matches execution.force_orchestrated`
  } else {
    wanted = config.execution.default_mode
    reason = `execution.default_mode ${wanted}`
  }
  if (wanted === 'direct') return { mode: 'direct', reason }
  if (!config.orchestrator.enabled) {
    if (wanted === 'auto' || config.orchestrator.fallback_to_direct) return { mode: 'direct', reason: `${reason}; orchestrator disabled` }
    throw failedError(`${operation} must run orchestrated (${reason}) but orchestrator.enabled is false`)
  }
  if (await available()) return { mode: 'orchestrated', reason }
  if (wanted === 'auto') return { mode: 'direct', reason: `${reason}; no orchestrator running at ${base(config)}` }
  if (config.orchestrator.fallback_to_direct) return { mode: 'direct', reason: `${reason}; no orchestrator running, fallback_to_direct` }
  throw failedError(`${operation} must run orchestrated (${reason}) but no orchestrator answers at ${base(config)}`, {
    hint: 'start one with prov-orch serve, or set orchestrator.fallback_to_direct: true',
  })
}
