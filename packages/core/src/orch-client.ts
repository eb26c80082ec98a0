/**
 * A small client other binaries use to hand work to a running prov-orch, and the routing rules
 * that decide which operations run directly and which go through the orchestrator.
 *
 * Transport: a loopback endpoint is reached through the orchestrator's unix socket when it
 * exists (`.prov/orch.sock` next to the store, mode 0600: only its owner can connect), else over
 * TCP with the owner token (`PROV_ORCH_TOKEN`, else the 0600 `orch.token` beside the socket). A
 * remote endpoint gets `PROV_ORCH_TOKEN` (a JWT). node:http only: nothing loads until a call.
 */
import { existsSync, lstatSync, readFileSync } from 'node:fs'
import type { IncomingMessage } from 'node:http'
import { dirname, isAbsolute, join, resolve } from 'node:path'
import { failedError, usageError } from './errors'
import { SseDecoder } from './util/sse'

export interface OrchClientConfig {
  orchestrator: { enabled: boolean; endpoint: string; fallback_to_direct: boolean; timeout_seconds?: number; store?: string }
  execution: { default_mode: 'direct' | 'orchestrated' | 'auto'; force_orchestrated: string[]; force_direct: string[] }
}

export interface OrchClientOptions {
  /** Bearer token (the owner token or a JWT); default $PROV_ORCH_TOKEN, then the token file of a loopback orchestrator. */
  token?: string
  timeoutMs?: number
  signal?: AbortSignal
  /** Where a relative SQLite store path starts (the workspace), for finding the socket and token. */
  baseDir?: string
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

export const ORCH_SOCKET_NAME = 'orch.sock'
export const ORCH_TOKEN_NAME = 'orch.token'

/** Hides the password of a store URL. */
export function describeStoreUrl(url: string): string {
  return url.replace(/\/\/([^:@/]+):[^@/]*@/, '//$1:***@')
}

export type StoreLocation = { kind: 'sqlite'; path: string } | { kind: 'postgres'; url: string }

/** `sqlite:PATH`, `sqlite://PATH`, a plain path (relative to `baseDir`), or `postgres://...`. */
export function parseStoreUrl(url: string, baseDir: string): StoreLocation {
  if (/^postgres(ql)?:\/\//.test(url)) return { kind: 'postgres', url }
  let path: string | undefined
  if (url.startsWith('sqlite://')) path = url.slice('sqlite://'.length)
  else if (url.startsWith('sqlite:')) path = url.slice('sqlite:'.length)
  else if (!/^[a-z]+:/.test(url)) path = url
  if (!path) throw usageError(`unsupported store '${describeStoreUrl(url)}'`, { location: '--store', hint: 'use sqlite:PATH or postgres://user@host:port/db' })
  const [file, query] = path.split('?')
  return { kind: 'sqlite', path: `${isAbsolute(file) ? file : resolve(baseDir, file)}${query ? `?${query}` : ''}` }
}

/** Where prov-orch keeps its socket and token: beside a SQLite store, else `<baseDir>/.prov`. */
export function orchStateDir(store: StoreLocation, baseDir: string): string {
  return store.kind === 'sqlite' ? dirname(store.path.split('?')[0]) : join(baseDir, '.prov')
}

/** `127.0.0.5`, `::1`, `[::1]`, `localhost`: addresses that never leave this host. */
export function isLoopbackHost(host: string): boolean {
  return /^(localhost|127\.\d+\.\d+\.\d+|::1)$/i.test(host.replace(/^\[(.*)\]$/, '$1'))
}

type Transport = { socketPath: string; token?: undefined; base: URL } | { socketPath?: undefined; token?: string; base: URL }

function transportOf(config: OrchClientConfig, options: OrchClientOptions): Transport {
  const base = new URL(config.orchestrator.endpoint.replace(/\/+$/, ''))
  const explicit = options.token ?? process.env.PROV_ORCH_TOKEN
  if (!isLoopbackHost(base.hostname)) return { base, token: explicit }
  let dir: string | undefined
  try {
    dir = orchStateDir(parseStoreUrl(config.orchestrator.store ?? 'sqlite:.prov/orch.db', options.baseDir ?? process.cwd()), options.baseDir ?? process.cwd())
  } catch {
    dir = undefined
  }
  if (dir) {
    const socketPath = join(dir, ORCH_SOCKET_NAME)
    try {
      if (lstatSync(socketPath).isSocket()) return { base, socketPath }
    } catch {
      // no socket: TCP
    }
  }
  if (explicit) return { base, token: explicit }
  const tokenFile = dir ? join(dir, ORCH_TOKEN_NAME) : undefined
  if (tokenFile && existsSync(tokenFile)) {
    try {
      return { base, token: readFileSync(tokenFile, 'utf8').trim() }
    } catch {
      // not ours to read
    }
  }
  return { base }
}

export const endpointOf = (config: OrchClientConfig) => config.orchestrator.endpoint.replace(/\/+$/, '')

interface Answer {
  status: number
  body: IncomingMessage
}

/** One HTTP request to the orchestrator, over its socket or TCP. */
async function request(
  config: OrchClientConfig,
  method: string,
  path: string,
  options: OrchClientOptions & { body?: string; timeoutMs?: number } = {},
): Promise<Answer> {
  const t = transportOf(config, options)
  const http = await import(t.base.protocol === 'https:' ? 'node:https' : 'node:http')
  const signals = [options.signal, options.timeoutMs === undefined ? undefined : AbortSignal.timeout(options.timeoutMs)].filter(
    (s): s is AbortSignal => s !== undefined,
  )
  const headers: Record<string, string> = { accept: 'application/json' }
  if (t.token) headers.authorization = `Bearer ${t.token}`
  if (options.body !== undefined) {
    headers['content-type'] = 'application/json'
    headers['content-length'] = String(Buffer.byteLength(options.body))
  }
  const prefix = t.base.pathname.replace(/\/+$/, '')
  return new Promise<Answer>((resolvePromise, reject) => {
    const req = http.request(
      {
        method,
        path: `${prefix}${path}`,
        headers: t.socketPath ? { ...headers, host: 'localhost' } : headers,
        ...(t.socketPath ? { socketPath: t.socketPath } : { hostname: t.base.hostname.replace(/^\[(.*)\]$/, '$1'), port: t.base.port || undefined }),
        signal: signals.length ? AbortSignal.any(signals) : undefined,
      },
      (res: IncomingMessage) => resolvePromise({ status: res.statusCode ?? 0, body: res }),
    )
    req.on('error', reject)
    req.end(options.body)
  })
}

async function readJson<T>(answer: Answer): Promise<{ data?: T; error?: { message?: string } }> {
  const chunks: Buffer[] = []
  for await (const chunk of answer.body) chunks.push(chunk as Buffer)
  try {
    return JSON.parse(Buffer.concat(chunks).toString('utf8'))
  } catch {
    return {}
  }
}

const refusalHint = (status: number) =>
  status === 401 || status === 403
    ? 'run in the orchestrator’s workspace (its socket .prov/orch.sock is used), or set PROV_ORCH_TOKEN'
    : 'start it with prov-orch serve, or run direct'

/** GET of an API path; the `data` of the envelope. */
export async function orchGet<T>(config: OrchClientConfig, path: string, options: OrchClientOptions = {}): Promise<T> {
  let answer: Answer
  try {
    answer = await request(config, 'GET', path, { ...options, timeoutMs: options.timeoutMs ?? (config.orchestrator.timeout_seconds ?? 60) * 1000 })
  } catch (error) {
    throw failedError(`orchestrator at ${endpointOf(config)} unreachable: ${(error as Error).message}`, { hint: refusalHint(0) })
  }
  const body = await readJson<T>(answer)
  if (answer.status >= 400 || body.data === undefined) {
    throw failedError(`orchestrator ${path}: HTTP ${answer.status} ${body.error?.message ?? ''}`.trim(), { hint: refusalHint(answer.status) })
  }
  return body.data
}

/**
 * True when an orchestrator answers (within 1 s by default) and accepts our credentials: an
 * orchestrator of another user on the same port is not one we can use.
 */
export async function orchestratorAvailable(config: OrchClientConfig, options: OrchClientOptions = {}): Promise<boolean> {
  if (!config.orchestrator.enabled) return false
  try {
    const answer = await request(config, 'GET', '/v1/workflows?limit=1', { ...options, timeoutMs: options.timeoutMs ?? 1000 })
    const body = await readJson<{ items?: unknown[] }>(answer)
    return answer.status === 200 && Array.isArray(body.data?.items)
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
  let answer: Answer
  try {
    answer = await request(config, 'POST', '/v1/workflows', {
      ...options,
      body: JSON.stringify({ schema: 'prov.orch.workflow/v1', ...workflow }),
      timeoutMs: options.timeoutMs ?? (config.orchestrator.timeout_seconds ?? 60) * 1000,
    })
  } catch (error) {
    throw failedError(`orchestrator at ${endpointOf(config)} unreachable: ${(error as Error).message}`, { hint: refusalHint(0) })
  }
  const body = await readJson<{ workflow_id: string; status: string }>(answer)
  if (answer.status >= 400 || !body.data) {
    throw failedError(`orchestrator refused the workflow (${answer.status}): ${body.error?.message ?? 'no answer'}`, { hint: refusalHint(answer.status) })
  }
  return body.data
}

/** Streams a workflow's events (Server-Sent Events) until it finishes. */
export async function* watchWorkflow(config: OrchClientConfig, id: string, options: OrchClientOptions = {}): AsyncGenerator<OrchEventRecord> {
  const answer = await request(config, 'GET', `/v1/workflows/${encodeURIComponent(id)}/events`, options)
  if (answer.status !== 200) {
    answer.body.resume()
    throw failedError(`cannot watch workflow ${id}: HTTP ${answer.status}`, { hint: refusalHint(answer.status) })
  }
  const decoder = new TextDecoder()
  const events = new SseDecoder()
  for await (const chunk of answer.body) {
    for (const data of events.push(decoder.decode(chunk as Buffer, { stream: true }))) yield JSON.parse(data) as OrchEventRecord
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

/** Why a command that wanted the orchestrator runs direct anyway. */
export type DirectFallback = 'disabled' | 'unavailable'

export interface ExecutionChoice {
  mode: ExecutionMode
  /** What the rules asked for before looking at the orchestrator (`auto` = whichever is there). */
  wanted: ExecutionMode | 'auto'
  /** Set when orchestrated was wanted but the command runs direct. */
  fallback?: DirectFallback
  reason: string
}

/**
 * force_direct, then force_orchestrated, then execution.default_mode (auto = the orchestrator
 * when one is running). An orchestrated choice with no orchestrator running falls back to direct
 * when orchestrator.fallback_to_direct is set, and is an error otherwise. `viaOrch` (the
 * `--via-orch` flag) forces orchestrated.
 */
export async function chooseExecutionMode(
  operation: string,
  config: OrchClientConfig,
  options: OrchClientOptions & { viaOrch?: boolean; available?: () => Promise<boolean> } = {},
): Promise<ExecutionChoice> {
  const available = options.available ?? (() => orchestratorAvailable(config, options))
  let wanted: ExecutionMode | 'auto'
  let reason: string
  if (options.viaOrch) {
    wanted = 'orchestrated'
    reason = '--via-orch'
  } else if (config.execution.force_direct.some((p) => operationMatches(operation, p))) {
    return { mode: 'direct', wanted: 'direct', reason: `${operation} matches execution.force_direct` }
  } else if (config.execution.force_orchestrated.some((p) => operationMatches(operation, p))) {
    wanted = 'orchestrated'
    reason = `${operation} matches execution.force_orchestrated`
  } else {
    wanted = config.execution.default_mode
    reason = `execution.default_mode ${wanted}`
  }
  if (wanted === 'direct') return { mode: 'direct', wanted, reason }
  if (!config.orchestrator.enabled) {
    if (wanted === 'auto' || config.orchestrator.fallback_to_direct)
      return { mode: 'direct', wanted, fallback: 'disabled', reason: `${reason}; orchestrator disabled` }
    throw failedError(`${operation} must run orchestrated (${reason}) but orchestrator.enabled is false`)
  }
  if (await available()) return { mode: 'orchestrated', wanted, reason }
  if (wanted === 'auto') return { mode: 'direct', wanted, fallback: 'unavailable', reason: `${reason}; no orchestrator running at ${endpointOf(config)}` }
  if (config.orchestrator.fallback_to_direct) {
    return { mode: 'direct', wanted, fallback: 'unavailable', reason: `${reason}; no orchestrator running, fallback_to_direct` }
  }
  throw failedError(`${operation} must run orchestrated (${reason}) but no orchestrator answers at ${endpointOf(config)}`, {
    hint: 'start one with prov-orch serve, or set orchestrator.fallback_to_direct: true',
  })
}
