// The dashboard's only door to the server: same-origin requests with the session cookie (sent by
// the browser, HttpOnly) and the CSRF token (kept in this origin's storage, sent as a header). The
// event stream is read with the decoder the CLI's watch uses (plain TypeScript, no Node API).
import { SseDecoder } from '../../../core/src/util/sse'

const CSRF_KEY = 'prov-orch-csrf'

export type Role = 'viewer' | 'operator' | 'admin'
export const RANK: Record<Role, number> = { viewer: 1, operator: 2, admin: 3 }
export const WORKFLOW_STATUSES = ['queued', 'running', 'succeeded', 'failed', 'cancelled', 'rolling_back', 'rolled_back'] as const

export interface Session {
  who: string
  role: Role
  auth?: 'token' | 'jwt'
}

export interface Workflow {
  id: string
  name: string
  status: string
  phase: string
  error: string | null
  rollback_enabled: boolean
  cancel_requested: boolean
  created_at: string
  started_at: string | null
  finished_at: string | null
  submitted_by: string | null
  steps_total: number
  counts: Record<string, number>
}

export interface Step {
  id: string
  kind: 'main' | 'rollback'
  status: string
  attempts: number
  error: string | null
  exit_code: number | null
  started_at: string | null
  finished_at: string | null
  depends_on: string[]
  output_truncated: boolean
}

export interface LogLine {
  step: string
  attempt: number
  stream: string
  ts: string | null
  text: string
}

export interface OrchEvent {
  seq: number
  type: string
  step?: string
  ts: string
}

export class ApiFailure extends Error {
  constructor(
    readonly status: number,
    readonly code: string,
    message: string,
  ) {
    super(message)
  }
}

/** Called when the server no longer knows the session (restart, expiry): the app shows the login. */
let onSessionLost: () => void = () => {}
export const whenSessionLost = (handler: () => void) => {
  onSessionLost = handler
}

function headers(body: boolean): Record<string, string> {
  const out: Record<string, string> = { accept: 'application/json' }
  const csrf = localStorage.getItem(CSRF_KEY)
  if (csrf) out['x-csrf-token'] = csrf
  if (body) out['content-type'] = 'application/json'
  return out
}

async function failure(res: Response): Promise<ApiFailure> {
  const json = await res.json().catch(() => undefined)
  if (res.status === 401) onSessionLost()
  return new ApiFailure(res.status, json?.error?.code ?? 'HTTP', json?.error?.message ?? `HTTP ${res.status}`)
}

export async function api<T>(path: string, init: { method?: string; body?: unknown; signal?: AbortSignal } = {}): Promise<T> {
  const res = await fetch(path, {
    method: init.method ?? 'GET',
    headers: headers(init.body !== undefined),
    body: init.body === undefined ? undefined : JSON.stringify(init.body),
    credentials: 'same-origin',
    signal: init.signal,
  })
  if (!res.ok) throw await failure(res)
  return ((await res.json()) as { data: T }).data
}

export async function login(token: string): Promise<Session> {
  const data = await api<Session & { csrf: string }>('/ui/login', { method: 'POST', body: { token } })
  localStorage.setItem(CSRF_KEY, data.csrf)
  return { who: data.who, role: data.role }
}

export async function currentSession(): Promise<Session | undefined> {
  if (!localStorage.getItem(CSRF_KEY)) return undefined
  try {
    return await api<Session>('/v1/session')
  } catch (error) {
    if (error instanceof ApiFailure && (error.status === 401 || error.status === 403)) return undefined
    throw error
  }
}

export async function logout(): Promise<void> {
  try {
    await api('/v1/session', { method: 'DELETE' })
  } finally {
    localStorage.removeItem(CSRF_KEY)
  }
}

export async function metricsText(signal?: AbortSignal): Promise<string> {
  const res = await fetch('/metrics', { headers: headers(false), credentials: 'same-origin', signal })
  if (!res.ok) throw await failure(res)
  return res.text()
}

/**
 * Follows a workflow's event stream (server-sent events read with fetch, which, unlike
 * EventSource, can send the CSRF header). Resolves when the server ends the stream (the workflow
 * finished) or `signal` aborts; reconnects after a broken connection from the last seen event.
 */
export async function followEvents(id: string, onEvent: (event: OrchEvent) => void, signal: AbortSignal): Promise<void> {
  let after = 0
  while (!signal.aborted) {
    try {
      const res = await fetch(`/v1/workflows/${encodeURIComponent(id)}/events?after=${after}`, {
        headers: { ...headers(false), accept: 'text/event-stream' },
        credentials: 'same-origin',
        signal,
      })
      if (!res.ok || !res.body) throw await failure(res)
      const reader = res.body.pipeThrough(new TextDecoderStream()).getReader()
      const events = new SseDecoder()
      for (;;) {
        const { value, done } = await reader.read()
        if (done) return
        for (const data of events.push(value)) {
          const event = JSON.parse(data) as OrchEvent
          after = Math.max(after, event.seq)
          onEvent(event)
        }
      }
    } catch (error) {
      if (signal.aborted) return
      if (error instanceof ApiFailure && error.status < 500) throw error
      await new Promise((r) => setTimeout(r, 2000))
    }
  }
}
