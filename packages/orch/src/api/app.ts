import { randomBytes } from 'node:crypto'
import { isFinishedWorkflowStatus, jsonNestingDepth, MAX_INPUT_DEPTH, PROV_VERSION, parseInput, tooDeepError, WORKFLOW_STATUSES } from '@prov/core'
import { type Context, Hono } from 'hono'
import { deleteCookie, getCookie, setCookie } from 'hono/cookie'
import { streamSSE } from 'hono/streaming'
import { isTerminalEvent, type OrchStore } from '../store/store'
import { compileWorkflow } from '../workflow'
import { AuditLog } from './audit'
import { type AuthOptions, authenticate, requireRole, verifyJwt } from './auth'
import { ApiError, envelope, isRole, type Role, type Transport, toApiError, type Vars } from './envelope'
import { bodySizeGuard, contentTypeGuard, hostGuard, originGuard, rateLimiter } from './guard'
import { defaultUiDir, LOGIN_TOKEN_TTL_MS, loadUiAssets, requireOwnOrigin, sessionCookieName, UI_HEADERS, UiSessions } from './ui'

export interface ApiOptions {
  auth: AuthOptions
  /** Requests per second per client address (checked before authentication); bursts up to twice that. */
  rateLimit: number
  /** The address the TCP listener is bound to (Host header check). */
  host?: string
  /** Extra host names the API answers to (DNS rebinding guard). */
  allowedHosts?: string[]
  /** Browser origins allowed to call the API (CORS); none by default. */
  cors?: string[]
  /** Largest request body in bytes (default 1 MiB). */
  maxBody?: number
  /** How often counts of refused requests are written to the audit log (default 60 s). */
  auditWindowMs?: number
  /** Time source of the rate limiter and of dashboard sessions (tests freeze it). */
  clock?: () => number
  /** The built dashboard (default: dist/ui of this package); a folder without index.html serves none. */
  uiDir?: string
  /** This server's URL for browsers (`http://127.0.0.1:9090`), known once it listens: login links point there. */
  publicUrl?: () => string | undefined
}

/** What the node adapter passes as `env`; `transport` is added by the listener. */
export interface ApiBindings {
  incoming?: { socket?: { remoteAddress?: string } }
  transport?: Transport
}

export interface Api {
  app: Hono<Vars>
  /** For a listener: every request goes through here with its transport. */
  fetch(request: Request, bindings: ApiBindings): Response | Promise<Response>
  close(): Promise<void>
}

export function createApi(store: OrchStore, options: ApiOptions): Api {
  const app = new Hono<Vars>()
  const audit = new AuditLog((entries) => store.audit(entries), options.auditWindowMs)
  const sessions = new UiSessions(options.clock)
  const assets = loadUiAssets(options.uiDir ?? defaultUiDir())

  app.onError((error, c) => {
    const e = toApiError(error)
    if (e.status === 429) c.header('Retry-After', String(e.details?.retry_after ?? 1))
    if (e.status === 401) c.header('WWW-Authenticate', `Bearer realm="prov-orch"${options.auth.mode === 'jwt' ? ', error="invalid_token"' : ''}`)
    return c.json(envelope(c, 'error', null, { code: e.code, message: e.message, details: e.details }), e.status)
  })
  app.notFound((c) => c.json(envelope(c, 'error', null, { code: 'NOT_FOUND', message: `no route ${c.req.method} ${c.req.path}` }), 404))

  // Cheap checks first, authentication last: nothing a stranger sends reaches the store or jose.
  app.use('*', async (c, next) => {
    const env = c.env as ApiBindings | undefined
    const transport = env?.transport ?? 'tcp'
    c.set('transport', transport)
    c.set('client', transport === 'unix' ? 'unix-socket' : (env?.incoming?.socket?.remoteAddress ?? 'local'))
    const given = c.req.header('x-request-id')
    c.set('requestId', given && /^[\w.:-]{1,64}$/.test(given) ? given : `req-${randomBytes(6).toString('hex')}`)
    c.header('X-Request-Id', c.get('requestId'))
    await next()
  })
  app.use('*', audit.middleware())
  app.use('*', rateLimiter(options.rateLimit, options.clock))
  app.use('*', hostGuard(options.host ?? '127.0.0.1', options.allowedHosts ?? []))
  app.use('*', originGuard(options.cors ?? []))
  app.use('*', contentTypeGuard())
  app.use('*', bodySizeGuard(options.maxBody ?? 1024 * 1024))
  app.use('*', authenticate(options.auth, sessions))

  app.get('/health', (c) => c.json(envelope(c, 'success', { healthy: true, store: store.dialect, version: PROV_VERSION })))

  app.get('/ui', (c) => c.redirect('/ui/', 301))
  app.get('/ui/*', (c) => {
    const asset = assets.get(c.req.path)
    if (!asset) {
      throw c.req.path === '/ui/'
        ? new ApiError(404, 'NOT_FOUND', 'the dashboard is not built into this installation', {
            hint: 'npm run build (it builds packages/orch/ui into dist/ui)',
          })
        : new ApiError(404, 'NOT_FOUND', `no dashboard file ${c.req.path}`)
    }
    // Asset names carry a hash of their content: they never change, the page that names them does.
    const cache = c.req.path === '/ui/' ? 'no-store' : 'public, max-age=31536000, immutable'
    return c.body(new Uint8Array(asset.body), 200, { ...UI_HEADERS, 'Content-Type': asset.type, 'Cache-Control': cache })
  })

  // The login exchange: a one-time token (prov-orch ui) or, with JWT auth, a pasted JWT becomes a session.
  app.post('/ui/login', async (c) => {
    requireOwnOrigin(c)
    const body = await optionalJsonBody(c)
    const token = typeof body.token === 'string' ? body.token.trim() : ''
    if (!token || token.length > 16 * 1024) throw new ApiError(400, 'BAD_REQUEST', 'send {"token": "<login token or JWT>"}')
    let identity: { who: string; role: Role; expires?: number } | undefined = sessions.redeemLogin(token)
    if (!identity && options.auth.mode === 'jwt' && token.split('.').length === 3) identity = await verifyJwt(token, options.auth)
    if (!identity) throw new ApiError(401, 'UNAUTHORIZED', 'login token invalid, already used or expired; prov-orch ui prints a new link')
    const { id, session } = sessions.open(identity.who, identity.role, identity.expires)
    setCookie(c, sessionCookieName(c), id, { httpOnly: true, sameSite: 'Strict', path: '/', secure: new URL(c.req.url).protocol === 'https:' })
    c.set('who', session.who)
    c.set('role', session.role)
    return c.json(envelope(c, 'success', { who: session.who, role: session.role, csrf: session.csrf, expires_at: new Date(session.expires).toISOString() }))
  })

  app.get('/v1/session', (c) => {
    requireRole(c, 'viewer')
    return c.json(envelope(c, 'success', { who: c.get('who'), role: c.get('role'), auth: options.auth.mode }))
  })

  app.delete('/v1/session', (c) => {
    requireRole(c, 'viewer')
    const cookie = getCookie(c, sessionCookieName(c))
    if (cookie) sessions.close(cookie)
    deleteCookie(c, sessionCookieName(c), { path: '/' })
    return c.json(envelope(c, 'success', { closed: Boolean(cookie) }))
  })

  // One-time dashboard login links, minted by an admin (the owner on the unix socket: prov-orch ui).
  app.post('/v1/login-tokens', async (c) => {
    requireRole(c, 'admin')
    const body = await optionalJsonBody(c)
    const role = body.role ?? 'admin'
    if (!isRole(role)) throw new ApiError(400, 'BAD_REQUEST', 'role must be viewer, operator or admin')
    const { token, expires } = sessions.mintLogin(`ui:${role}:${c.get('who')}`, role)
    const base = options.publicUrl?.()
    return c.json(
      envelope(c, 'success', {
        role,
        expires_at: new Date(expires).toISOString(),
        ttl_seconds: LOGIN_TOKEN_TTL_MS / 1000,
        url: base ? `${base}/ui/#login=${token}` : null,
        token,
      }),
      201,
    )
  })

  app.get('/metrics', async (c) => {
    requireRole(c, 'viewer')
    return c.text(await metricsText(store), 200, { 'Content-Type': 'text/plain; version=0.0.4' })
  })

  app.post('/v1/workflows', async (c) => {
    requireRole(c, 'operator')
    const workflow = compileWorkflow(await workflowBody(c), { source: 'body', allowFiles: false })
    const id = await store.submit(workflow, c.get('who'))
    c.header('Location', `/v1/workflows/${id}`)
    c.header('x-workflow-id', id)
    return c.json(envelope(c, 'pending', { workflow_id: id, name: workflow.name, status: 'queued', steps: workflow.steps.length }), 202)
  })

  app.get('/v1/workflows', async (c) => {
    requireRole(c, 'viewer')
    const status = c.req.query('status')
    if (status && !(WORKFLOW_STATUSES as readonly string[]).includes(status))
      throw new ApiError(400, 'BAD_REQUEST', `unknown status '${status}'`, { allowed: WORKFLOW_STATUSES })
    const limit = intQuery(c.req.query('limit'), 'limit', 50, 1, 500)
    const offset = intQuery(c.req.query('offset'), 'offset', 0, 0, Number.MAX_SAFE_INTEGER)
    const { items, total } = await store.list({ status, limit, offset })
    return c.json(envelope(c, 'success', { items, total, limit, offset, next_offset: offset + items.length < total ? offset + items.length : null }))
  })

  app.get('/v1/workflows/:id', async (c) => {
    requireRole(c, 'viewer')
    const id = c.req.param('id')
    return c.json(envelope(c, 'success', { ...(await store.get(id)), steps: await store.steps(id) }))
  })

  app.delete('/v1/workflows/:id', async (c) => {
    requireRole(c, 'operator')
    return c.json(envelope(c, 'success', await store.cancel(c.req.param('id'))))
  })

  app.post('/v1/workflows/:id/rollback', async (c) => {
    requireRole(c, 'operator')
    await optionalJsonBody(c)
    return c.json(envelope(c, 'pending', await store.rollback(c.req.param('id'))), 202)
  })

  app.post('/v1/workflows/:id/retry', async (c) => {
    requireRole(c, 'operator')
    const body = await optionalJsonBody(c)
    if (body.step !== undefined && typeof body.step !== 'string') throw new ApiError(400, 'BAD_REQUEST', 'step must be a string')
    return c.json(envelope(c, 'pending', await store.retry(c.req.param('id'), body.step as string | undefined)), 202)
  })

  app.get('/v1/workflows/:id/logs', async (c) => {
    requireRole(c, 'viewer')
    return c.json(envelope(c, 'success', await store.logs(c.req.param('id'), c.req.query('step'))))
  })

  app.get('/v1/workflows/:id/events', async (c) => {
    requireRole(c, 'viewer')
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
        if (events.some((e) => isTerminalEvent(e.type))) break
        if (!events.length) {
          const wf = await store.get(id)
          if (isFinishedWorkflowStatus(wf.status) && !(await store.events(id, after)).length) break
          if (++idle % 150 === 0) await stream.write(': keep-alive\n\n')
          await stream.sleep(100)
        }
      }
    })
  })

  app.get('/v1/audit', async (c) => {
    requireRole(c, 'admin')
    const limit = intQuery(c.req.query('limit'), 'limit', 100, 1, 1000)
    await audit.flush()
    return c.json(envelope(c, 'success', await store.readAudit(limit)))
  })

  return {
    app,
    fetch: (request, bindings) => app.fetch(request, bindings),
    close: () => audit.close(),
  }
}

async function metricsText(store: OrchStore): Promise<string> {
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
    ...WORKFLOW_STATUSES.map((s) => `prov_orch_workflows{status="${s}"} ${m.workflows[s] ?? 0}`),
    '# HELP prov_orch_workflows_completed_total Workflows that succeeded.',
    '# TYPE prov_orch_workflows_completed_total counter',
    `prov_orch_workflows_completed_total ${m.workflows.succeeded ?? 0}`,
    '# HELP prov_orch_workflows_failed_total Workflows that failed or were rolled back.',
    '# TYPE prov_orch_workflows_failed_total counter',
    `prov_orch_workflows_failed_total ${(m.workflows.failed ?? 0) + (m.workflows.rolled_back ?? 0)}`,
    '# HELP prov_orch_step_latency_seconds Time from start to finish of steps (quantiles over the most recent 1000).',
    '# TYPE prov_orch_step_latency_seconds summary',
    ...Object.entries(m.stepLatency.quantilesMs).map(
      ([q, ms]) => `prov_orch_step_latency_seconds{quantile="${q}"} ${Number.isNaN(ms) ? 'NaN' : (ms / 1000).toFixed(3)}`,
    ),
    `prov_orch_step_latency_seconds_sum ${(m.stepLatency.sumMs / 1000).toFixed(3)}`,
    `prov_orch_step_latency_seconds_count ${m.stepLatency.count}`,
  ]
  return `${lines.join('\n')}\n`
}

/** The body of a submission: one workflow object, JSON or YAML by Content-Type. */
async function workflowBody(c: Context<Vars>): Promise<Record<string, unknown>> {
  const text = await c.req.text()
  if (!text.trim()) throw new ApiError(400, 'BAD_REQUEST', 'empty body: send a prov.orch.workflow/v1 document (JSON or YAML)')
  const yaml = /yaml/.test(c.req.header('content-type') ?? '')
  let raw: unknown
  try {
    raw = yaml ? parseInput(text, 'body').records[0] : parseJson(text)
  } catch (error) {
    throw new ApiError(400, 'BAD_REQUEST', `body is not valid ${yaml ? 'YAML' : 'JSON'}: ${(error as Error).message}`)
  }
  if (!raw || typeof raw !== 'object' || Array.isArray(raw)) throw new ApiError(400, 'BAD_REQUEST', 'body must be one workflow object')
  return raw as Record<string, unknown>
}

function intQuery(value: string | undefined, name: string, fallback: number, min: number, max: number): number {
  if (value === undefined || value === '') return fallback
  const n = Number(value)
  if (!Number.isInteger(n) || n < min || n > max) throw new ApiError(400, 'BAD_REQUEST', `${name} must be a whole number from ${min} to ${max}, got '${value}'`)
  return n
}

/** JSON.parse after a nesting check: a hostile body must not exhaust the stack of the parser or of what follows. */
function parseJson(text: string): unknown {
  if (jsonNestingDepth(text) > MAX_INPUT_DEPTH) throw tooDeepError('body')
  return JSON.parse(text)
}

async function optionalJsonBody(c: Context<Vars>): Promise<Record<string, unknown>> {
  const text = await c.req.text()
  if (!text.trim()) return {}
  let body: unknown
  try {
    body = parseJson(text)
  } catch (error) {
    throw new ApiError(400, 'BAD_REQUEST', `body is not valid JSON: ${(error as Error).message}`)
  }
  if (!body || typeof body !== 'object' || Array.isArray(body)) throw new ApiError(400, 'BAD_REQUEST', 'body must be a JSON object')
  return body as Record<string, unknown>
}
