import { createPublicKey, type KeyObject, randomBytes } from 'node:crypto'
import { readFileSync, statSync } from 'node:fs'
import { isProvError, PROV_VERSION, parseInput } from '@prov/core'
import { type Context, Hono } from 'hono'
import { streamSSE } from 'hono/streaming'
import { FINISHED, type OrchStore, WORKFLOW_STATUS } from './store/store'
import { compileWorkflow } from './workflow'

export type Role = 'viewer' | 'operator' | 'admin'
const RANK: Record<Role, number> = { viewer: 1, operator: 2, admin: 3 }

export interface AuthOptions {
  mode: 'none' | 'jwt'
  /** HS* shared secret (bytes) or a PEM public key (RS*, ES*, EdDSA). */
  key?: Uint8Array | KeyObject
  audience?: string
  issuer?: string
}

export interface ApiOptions {
  auth: AuthOptions
  /** Requests per second per client (token subject, else address); bursts up to twice that. */
  rateLimit: number
}

type Vars = { Variables: { requestId: string; who: string; role: Role } }

/** Reads the JWT verification key: a PEM public key, or a shared secret (file must not be world-readable). */
export function loadJwtKey(file: string): Uint8Array | KeyObject {
  const text = readFileSync(file, 'utf8')
  if (text.includes('-----BEGIN')) return createPublicKey(text)
  if (statSync(file).mode & 0o004) throw new Error(`JWT secret ${file} is world-readable; chmod 600 it`)
  const secret = text.trim()
  if (secret.length < 32) throw new Error(`JWT secret in ${file} is shorter than 32 characters`)
  return new TextEncoder().encode(secret)
}

class ApiError extends Error {
  constructor(
    readonly status: 400 | 401 | 403 | 404 | 409 | 429 | 500,
    readonly code: string,
    message: string,
    readonly details?: Record<string, unknown>,
  ) {
    super(message)
  }
}

/** The E15 envelope: status, data, metadata {timestamp, request_id, version}, error. */
function envelope(
  c: Context<Vars>,
  status: 'success' | 'error' | 'pending',
  data: unknown,
  error: { code: string; message: string; details?: unknown } | null = null,
) {
  return {
    status,
    data,
    metadata: { timestamp: new Date().toISOString(), request_id: c.get('requestId'), version: PROV_VERSION },
    error: error ? { code: error.code, message: error.message, details: error.details ?? {} } : null,
  }
}

const ERROR_CODES: Record<number, string> = { 2: 'BAD_REQUEST', 3: 'BAD_REQUEST', 4: 'FORBIDDEN', 5: 'NOT_FOUND', 1: 'FAILED' }

function toApiError(error: unknown): ApiError {
  if (error instanceof ApiError) return error
  if (isProvError(error)) {
    const status = error.code === 5 ? 404 : error.code === 2 || error.code === 3 ? (/only a (finished|failed)/.test(error.message) ? 409 : 400) : 500
    return new ApiError(
      status,
      status === 409 ? 'CONFLICT' : (ERROR_CODES[error.code] ?? 'FAILED'),
      error.message,
      error.location ? { location: error.location } : undefined,
    )
  }
  return new ApiError(500, 'INTERNAL', (error as Error).message ?? 'internal error')
}

export function createApi(store: OrchStore, options: ApiOptions) {
  const app = new Hono<Vars>()
  const buckets = new Map<string, { tokens: number; at: number }>()
  const burst = options.rateLimit * 2

  app.onError((error, c) => {
    const e = toApiError(error)
    if (e.status === 429) c.header('Retry-After', String(e.details?.retry_after ?? 1))
    if (e.status === 401) c.header('WWW-Authenticate', `Bearer realm="prov-orch"${options.auth.mode === 'jwt' ? ', error="invalid_token"' : ''}`)
    return c.json(envelope(c, 'error', null, { code: e.code, message: e.message, details: e.details }), e.status)
  })
  app.notFound((c) => c.json(envelope(c, 'error', null, { code: 'NOT_FOUND', message: `no route ${c.req.method} ${c.req.path}` }), 404))

  app.use('*', async (c, next) => {
    c.set('requestId', c.req.header('x-request-id') ?? `req-${randomBytes(6).toString('hex')}`)
    c.header('X-Request-Id', c.get('requestId'))
    await next()
  })

  // Audit every mutating request: who, what, when, result.
  app.use('*', async (c, next) => {
    if (c.req.method === 'GET' || c.req.method === 'HEAD') return next()
    let status = 500
    try {
      await next()
      status = c.res.status
    } finally {
      const id = /^\/v1\/workflows\/([^/]+)/.exec(c.req.path)?.[1] ?? (c.res.headers.get('x-workflow-id') || undefined)
      await store
        .audit({ who: c.get('who') ?? `unauthenticated@${clientAddress(c)}`, method: c.req.method, path: c.req.path, status, workflowId: id })
        .catch(() => {})
    }
  })

  // Authentication (JWT) and the role a request carries.
  app.use('*', async (c, next) => {
    if (c.req.path === '/health') return next()
    if (options.auth.mode === 'none') {
      c.set('who', `anonymous@${clientAddress(c)}`)
      c.set('role', 'admin')
      return next()
    }
    const header = c.req.header('authorization') ?? ''
    const match = /^Bearer\s+(\S+)$/i.exec(header)
    if (!match) throw new ApiError(401, 'UNAUTHORIZED', 'missing bearer token (Authorization: Bearer <JWT>)')
    const { jwtVerify, errors } = await import('jose')
    try {
      const { payload } = await jwtVerify(match[1], options.auth.key as Uint8Array, {
        audience: options.auth.audience,
        issuer: options.auth.issuer,
        requiredClaims: ['exp', 'sub'],
      })
      const roles = [payload.role, ...(Array.isArray(payload.roles) ? payload.roles : [])].filter((r): r is Role => typeof r === 'string' && r in RANK)
      if (!roles.length) throw new ApiError(403, 'FORBIDDEN', 'token carries no role (viewer, operator or admin)')
      c.set('role', roles.sort((a, b) => RANK[b] - RANK[a])[0])
      c.set('who', String(payload.sub))
    } catch (error) {
      if (error instanceof ApiError) throw error
      const message =
        error instanceof errors.JWTExpired
          ? 'token expired'
          : error instanceof errors.JWTClaimValidationFailed
            ? `token rejected: ${error.message}`
            : 'invalid token (signature or format)'
      throw new ApiError(401, 'UNAUTHORIZED', message)
    }
    return next()
  })

  // Per-client token bucket.
  app.use('*', async (c, next) => {
    if (c.req.path === '/health') return next()
    const key = c.get('who') ?? clientAddress(c)
    const now = Date.now()
    const bucket = buckets.get(key) ?? { tokens: burst, at: now }
    bucket.tokens = Math.min(burst, bucket.tokens + ((now - bucket.at) / 1000) * options.rateLimit)
    bucket.at = now
    buckets.set(key, bucket)
    if (bucket.tokens < 1) {
      const retryAfter = Math.max(1, Math.ceil((1 - bucket.tokens) / options.rateLimit))
      throw new ApiError(429, 'RATE_LIMITED', `rate limit of ${options.rateLimit} requests/s exceeded`, { retry_after: retryAfter })
    }
    bucket.tokens -= 1
    return next()
  })

  const need = (c: Context<Vars>, role: Role) => {
    if (RANK[c.get('role')] < RANK[role]) throw new ApiError(403, 'FORBIDDEN', `role '${c.get('role')}' may not do this (needs ${role})`)
  }

  app.get('/health', (c) => c.json(envelope(c, 'success', { healthy: true, store: store.dialect, version: PROV_VERSION })))

  app.get('/metrics', async (c) => {
    need(c, 'viewer')
    const m = await store.metrics()
    const lines = [
      '# HELP prov_orch_queue_depth Steps queued in unfinished workflows.',
      '# TYPE prov_orch_queue_depth gauge',
      `prov_orch_queue_depth ${m.steps.queued ?? 0}`,
      '# HELP prov_orch_steps_running Steps running now.',
      '# TYPE prov_orch_steps_running gauge',
      `prov_orch_steps_running ${m.steps.running ?? 0}`,
      '# HELP prov_orch_workflows Workflows by status.',
      '# TYPE prov_orch_workflows gauge',
      ...WORKFLOW_STATUS.map((s) => `prov_orch_workflows{status="${s}"} ${m.workflows[s] ?? 0}`),
      '# HELP prov_orch_workflows_completed_total Workflows that succeeded.',
      '# TYPE prov_orch_workflows_completed_total counter',
      `prov_orch_workflows_completed_total ${m.workflows.succeeded ?? 0}`,
      '# HELP prov_orch_workflows_failed_total Workflows that failed or were rolled back.',
      '# TYPE prov_orch_workflows_failed_total counter',
      `prov_orch_workflows_failed_total ${(m.workflows.failed ?? 0) + (m.workflows.rolled_back ?? 0)}`,
      '# HELP prov_orch_step_latency_seconds Time from start to finish of steps.',
      '# TYPE prov_orch_step_latency_seconds summary',
      `prov_orch_step_latency_seconds_sum ${(m.stepLatency.sumMs / 1000).toFixed(3)}`,
      `prov_orch_step_latency_seconds_count ${m.stepLatency.count}`,
    ]
    return c.text(`${lines.join('\n')}\n`, 200, { 'Content-Type': 'text/plain; version=0.0.4' })
  })

  app.post('/v1/workflows', async (c) => {
    need(c, 'operator')
    const text = await c.req.text()
    if (!text.trim()) throw new ApiError(400, 'BAD_REQUEST', 'empty body: send a prov.orch.workflow/v1 document (JSON or YAML)')
    let raw: unknown
    try {
      const type = c.req.header('content-type') ?? ''
      if (/yaml/.test(type)) {
        const parsed = parseInput(text, 'body')
        raw = parsed.records[0]
      } else raw = JSON.parse(text)
    } catch (error) {
      throw new ApiError(
        400,
        'BAD_REQUEST',
        `body is not valid ${/yaml/.test(c.req.header('content-type') ?? '') ? 'YAML' : 'JSON'}: ${(error as Error).message}`,
      )
    }
    if (!raw || typeof raw !== 'object' || Array.isArray(raw)) throw new ApiError(400, 'BAD_REQUEST', 'body must be one workflow object')
    const workflow = compileWorkflow(raw, { source: 'body' })
    const id = await store.submit(workflow, c.get('who'))
    c.header('Location', `/v1/workflows/${id}`)
    c.header('x-workflow-id', id)
    return c.json(envelope(c, 'pending', { workflow_id: id, name: workflow.name, status: 'queued', steps: workflow.steps.length }), 202)
  })

  app.get('/v1/workflows', async (c) => {
    need(c, 'viewer')
    const status = c.req.query('status')
    if (status && !(WORKFLOW_STATUS as readonly string[]).includes(status))
      throw new ApiError(400, 'BAD_REQUEST', `unknown status '${status}'`, { allowed: WORKFLOW_STATUS })
    const limit = intQuery(c.req.query('limit'), 'limit', 50, 1, 500)
    const offset = intQuery(c.req.query('offset'), 'offset', 0, 0, Number.MAX_SAFE_INTEGER)
    const { items, total } = await store.list({ status, limit, offset })
    return c.json(envelope(c, 'success', { items, total, limit, offset, next_offset: offset + items.length < total ? offset + items.length : null }))
  })

  app.get('/v1/workflows/:id', async (c) => {
    need(c, 'viewer')
    const id = c.req.param('id')
    return c.json(envelope(c, 'success', { ...(await store.get(id)), steps: await store.steps(id) }))
  })

  app.delete('/v1/workflows/:id', async (c) => {
    need(c, 'operator')
    return c.json(envelope(c, 'success', await store.cancel(c.req.param('id'))))
  })

  app.post('/v1/workflows/:id/rollback', async (c) => {
    need(c, 'operator')
    await optionalJsonBody(c)
    return c.json(envelope(c, 'pending', await store.rollback(c.req.param('id'))), 202)
  })

  app.post('/v1/workflows/:id/retry', async (c) => {
    need(c, 'operator')
    const body = await optionalJsonBody(c)
    if (body.step !== undefined && typeof body.step !== 'string') throw new ApiError(400, 'BAD_REQUEST', 'step must be a string')
    return c.json(envelope(c, 'pending', await store.retry(c.req.param('id'), body.step as string | undefined)), 202)
  })

  app.get('/v1/workflows/:id/logs', async (c) => {
    need(c, 'viewer')
    return c.json(envelope(c, 'success', await store.logs(c.req.param('id'), c.req.query('step'))))
  })

  app.get('/v1/workflows/:id/events', async (c) => {
    need(c, 'viewer')
    const id = c.req.param('id')
    await store.get(id)
    let after = intQuery(c.req.header('last-event-id') ?? c.req.query('after'), 'after', 0, 0, Number.MAX_SAFE_INTEGER)
    return streamSSE(c, async (stream) => {
      let aborted = false
      stream.onAbort(() => {
        aborted = true
      })
      let idle = 0
      while (!aborted) {
        const events = await store.events(id, after)
        for (const e of events) {
          after = e.seq
          await stream.writeSSE({ id: String(e.seq), event: 'prov.orch.event', data: JSON.stringify(e) })
        }
        if (events.some((e) => /^workflow\.(succeeded|failed|cancelled|rolled_back)$/.test(e.type))) break
        if (!events.length) {
          const wf = await store.get(id)
          if (FINISHED.includes(wf.status) && !(await store.events(id, after)).length) break
          if (++idle % 150 === 0) await stream.write(': keep-alive\n\n')
          await stream.sleep(100)
        }
      }
    })
  })

  app.get('/v1/audit', async (c) => {
    need(c, 'admin')
    const limit = intQuery(c.req.query('limit'), 'limit', 100, 1, 1000)
    const rows = await store.db.all('SELECT ts, who, method, path, status, workflow_id FROM orch_audit ORDER BY id DESC LIMIT ?', [limit])
    return c.json(
      envelope(
        c,
        'success',
        rows.map((r) => ({ ...r, ts: new Date(Number(r.ts)).toISOString() })),
      ),
    )
  })

  return app
}

function clientAddress(c: Context<Vars>): string {
  const env = c.env as { incoming?: { socket?: { remoteAddress?: string } } } | undefined
  return env?.incoming?.socket?.remoteAddress ?? 'local'
}

function intQuery(value: string | undefined, name: string, fallback: number, min: number, max: number): number {
  if (value === undefined || value === '') return fallback
  const n = Number(value)
  if (!Number.isInteger(n) || n < min || n > max) throw new ApiError(400, 'BAD_REQUEST', `${name} must be a whole number from ${min} to ${max}, got '${value}'`)
  return n
}

async function optionalJsonBody(c: Context<Vars>): Promise<Record<string, unknown>> {
  const text = await c.req.text()
  if (!text.trim()) return {}
  let body: unknown
  try {
    body = JSON.parse(text)
  } catch (error) {
    throw new ApiError(400, 'BAD_REQUEST', `body is not valid JSON: ${(error as Error).message}`)
  }
  if (!body || typeof body !== 'object' || Array.isArray(body)) throw new ApiError(400, 'BAD_REQUEST', 'body must be a JSON object')
  return body as Record<string, unknown>
}
