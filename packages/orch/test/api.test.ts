import { spawn } from 'node:child_process'
import { chmodSync, mkdirSync, writeFileSync } from 'node:fs'
import { join } from 'node:path'
import { SignJWT } from 'jose'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { devEnv, freePort, startOrch, tempDir, waitExit, waitFor } from './helpers'

const SECRET = 'a-test-secret-that-is-long-enough-0123456789'
const tmp = tempDir()
let base = ''
let server: ReturnType<typeof startOrch>

async function token(sub: string, role: string, options: { audience?: string; exp?: string | number; secret?: string } = {}) {
  return new SignJWT({ role })
    .setProtectedHeader({ alg: 'HS256' })
    .setSubject(sub)
    .setAudience(options.audience ?? 'prov-orch')
    .setIssuedAt()
    .setExpirationTime(options.exp ?? '10m')
    .sign(new TextEncoder().encode(options.secret ?? SECRET))
}

async function call(path: string, init: { method?: string; body?: string; token?: string; type?: string; at?: string } = {}) {
  const res = await fetch(`${init.at ?? base}${path}`, {
    method: init.method ?? 'GET',
    body: init.body,
    headers: { ...(init.token ? { authorization: `Bearer ${init.token}` } : {}), 'content-type': init.type ?? 'application/json' },
  })
  const text = await res.text()
  let json: any
  try {
    json = JSON.parse(text)
  } catch {
    json = undefined
  }
  return { status: res.status, json, text, headers: res.headers }
}

const jwtKey = join(tmp.dir, 'jwt.secret')

/** A JWT-authenticated server on a free loopback port; its store, socket and token live in `dir`. */
async function serveJwt(dir: string, rateLimit: number) {
  const port = await freePort()
  mkdirSync(join(tmp.dir, dir), { recursive: true })
  const child = startOrch(
    [
      'serve',
      '--host',
      '127.0.0.1',
      '--port',
      String(port),
      '--store',
      `sqlite:${join(tmp.dir, dir, 'orch.db')}`,
      '--auth',
      'jwt',
      '--jwt-key',
      jwtKey,
      '--rate-limit',
      String(rateLimit),
    ],
    devEnv,
  )
  const at = `http://127.0.0.1:${port}`
  await waitFor(async () => (await fetch(`${at}/health`).catch(() => undefined))?.ok, 60_000, 100)
  return { child, at }
}

async function stop(child: ReturnType<typeof startOrch>) {
  child.kill('SIGTERM')
  await waitExit(child, 20_000).catch(() => child.kill('SIGKILL'))
}

beforeAll(async () => {
  writeFileSync(jwtKey, SECRET)
  chmodSync(jwtKey, 0o600)
  // Every request of these tests comes from 127.0.0.1, one client address: the limit is set far
  // above what they send, so no answer here is a 429 (the burst test has a server of its own).
  const started = await serveJwt('api', 1000)
  server = started.child
  base = started.at
}, 90_000)

afterAll(async () => {
  if (server) await stop(server)
  tmp.cleanup()
})

const workflow = (name: string, steps = [{ id: 'a', run: 'echo hi' }]) => JSON.stringify({ schema: 'prov.orch.workflow/v1', name, steps })

describe('REST API', () => {
  it('health is open; responses use the envelope', async () => {
    const r = await call('/health')
    expect(r.status).toBe(200)
    expect(r.json).toMatchObject({ status: 'success', data: { healthy: true }, error: null })
    expect(r.json.metadata).toMatchObject({ version: expect.any(String), request_id: expect.stringMatching(/^req-/), timestamp: expect.any(String) })
  })

  it('no token, bad signature, expired, wrong audience -> 401; wrong role -> 403', async () => {
    let r = await call('/v1/workflows')
    expect(r.status).toBe(401)
    expect(r.json.error).toMatchObject({ code: 'UNAUTHORIZED', message: expect.stringMatching(/missing bearer token/) })
    expect(r.headers.get('www-authenticate')).toMatch(/Bearer/)
    r = await call('/v1/workflows', { method: 'POST', body: workflow('anon') })
    expect(r.status).toBe(401)
    r = await call('/v1/workflows', { token: await token('mallory', 'admin', { secret: 'x'.repeat(40) }) })
    expect(r.status).toBe(401)
    expect(r.json.error.message).toMatch(/invalid token/)
    r = await call('/v1/workflows', { token: await token('old', 'admin', { exp: Math.floor(Date.now() / 1000) - 60 }) })
    expect(r.status).toBe(401)
    expect(r.json.error.message).toMatch(/token expired/)
    r = await call('/v1/workflows', { token: await token('other', 'admin', { audience: 'someone-else' }) })
    expect(r.status).toBe(401)
    expect(r.json.error.message).toMatch(/aud/)
    const viewer = await token('vera', 'viewer')
    r = await call('/v1/workflows', { token: viewer })
    expect(r.status).toBe(200)
    r = await call('/v1/workflows', { method: 'POST', token: viewer, body: workflow('nope') })
    expect(r.status).toBe(403)
    expect(r.json.error).toMatchObject({ code: 'FORBIDDEN', message: expect.stringMatching(/needs operator/) })
    r = await call('/v1/audit', { token: await token('otto', 'operator') })
    expect(r.status).toBe(403)
  })

  it('malformed bodies -> 400 with a message', async () => {
    const op = await token('bodies', 'operator')
    let r = await call('/v1/workflows', { method: 'POST', token: op, body: '{"name": ' })
    expect(r.status).toBe(400)
    expect(r.json.error.message).toMatch(/body is not valid JSON/)
    r = await call('/v1/workflows', { method: 'POST', token: op, body: '' })
    expect(r.status).toBe(400)
    r = await call('/v1/workflows', { method: 'POST', token: op, body: '[1,2]' })
    expect(r.status).toBe(400)
    r = await call('/v1/workflows', { method: 'POST', token: op, body: JSON.stringify({ name: 'x', steps: [{ id: 'a', run: 'true', depends_on: ['b'] }] }) })
    expect(r.status).toBe(400)
    expect(r.json.error.message).toMatch(/'b' is not a step/)
    r = await call('/v1/workflows?limit=zero', { token: op })
    expect(r.status).toBe(400)
    r = await call('/v1/workflows/wf-none/retry', { method: 'POST', token: op, body: '{oops' })
    expect(r.status).toBe(400)
    r = await call('/v1/workflows/wf-none', { token: op })
    expect(r.status).toBe(404)
  })

  it('submit, get, list with pagination, logs, retry, rollback, cancel; every mutation audited', async () => {
    const op = await token('olga', 'operator')
    const ids: string[] = []
    for (const n of [1, 2, 3]) {
      const r = await call('/v1/workflows', { method: 'POST', token: op, body: workflow(`wf-${n}`, [{ id: 'a', run: 'echo note >&2; echo \'{"ok":true}\'' }]) })
      expect(r.status).toBe(202)
      expect(r.json).toMatchObject({ status: 'pending', data: { status: 'queued', workflow_id: expect.stringMatching(/^wf-/) } })
      ids.push(r.json.data.workflow_id)
    }
    const watcher = await token('watcher', 'viewer')
    for (const id of ids) await waitFor(async () => (await call(`/v1/workflows/${id}`, { token: watcher })).json?.data?.status === 'succeeded', 30_000, 250)
    const page = await call('/v1/workflows?limit=2&status=succeeded', { token: op })
    expect(page.status, page.text).toBe(200)
    expect(page.json.data.items).toHaveLength(2)
    expect(page.json.data.next_offset).toBe(2)
    const logs = await call(`/v1/workflows/${ids[0]}/logs?step=a`, { token: op })
    expect(logs.status, logs.text).toBe(200)
    expect(logs.json.data[0]).toMatchObject({ step: 'a', text: 'note\n' })
    const conflict = await call(`/v1/workflows/${ids[0]}/retry`, { method: 'POST', token: op })
    expect(conflict.status).toBe(409)
    const rb = await call(`/v1/workflows/${ids[0]}/rollback`, { method: 'POST', token: op })
    expect(rb.status).toBe(202)
    const long = await call('/v1/workflows', { method: 'POST', token: op, body: workflow('long', [{ id: 's', run: 'sleep 60' }]) })
    const del = await call(`/v1/workflows/${long.json.data.workflow_id}`, { method: 'DELETE', token: op })
    expect(del.status).toBe(200)
    await waitFor(async () => (await call(`/v1/workflows/${long.json.data.workflow_id}`, { token: watcher })).json?.data?.status === 'cancelled', 30_000, 250)
    const metrics = await call('/metrics', { token: op })
    expect(metrics.text).toMatch(/^prov_orch_queue_depth \d+$/m)
    expect(metrics.text).toMatch(/^prov_orch_workflows_completed_total \d+$/m)
    expect(metrics.text).toMatch(/^prov_orch_step_latency_seconds_count \d+$/m)
    const audit = await call('/v1/audit?limit=200', { token: await token('ada', 'admin') })
    expect(audit.status).toBe(200)
    const entries = audit.json.data as { who: string; method: string; path: string; status: number }[]
    expect(entries.filter((e) => e.who === 'olga' && e.method === 'POST' && e.path === '/v1/workflows' && e.status === 202)).toHaveLength(4)
    expect(entries.some((e) => e.who === 'olga' && e.method === 'DELETE' && e.status === 200)).toBe(true)
    expect(entries.some((e) => e.who === 'vera' && e.status === 403)).toBe(true)
    expect(entries.some((e) => e.who.startsWith('unauthenticated@') && e.status === 401)).toBe(true)
  }, 90_000)

  it('curl -N streams the events of a running workflow (SSE)', async () => {
    const op = await token('sse', 'operator')
    const r = await call('/v1/workflows', {
      method: 'POST',
      token: op,
      body: workflow('sse', [{ id: 'one', run: 'sleep 0.4' }, { id: 'two', run: 'sleep 0.4', depends_on: ['one'] } as never]),
    })
    expect(r.status, r.text).toBe(202)
    const id = r.json.data.workflow_id
    const curl = spawn('curl', ['-sN', '-H', `Authorization: Bearer ${op}`, `${base}/v1/workflows/${id}/events`])
    const chunks: { at: number; text: string }[] = []
    curl.stdout.on('data', (d: Buffer) => chunks.push({ at: Date.now(), text: d.toString() }))
    const code = await waitExit(curl, 30_000)
    expect(code).toBe(0)
    const events = chunks
      .map((c) => c.text)
      .join('')
      .split('\n')
      .filter((l) => l.startsWith('data: '))
      .map((l) => JSON.parse(l.slice(6)))
    expect(events.every((e) => e.schema === 'prov.orch.event/v1' && e.workflow_id === id)).toBe(true)
    expect(events.map((e) => e.type)).toEqual(expect.arrayContaining(['workflow.submitted', 'step.started', 'step.succeeded', 'workflow.succeeded']))
    expect(events.at(-1).type).toBe('workflow.succeeded')
    // Streamed live: the first events arrived well before the last.
    expect(chunks.at(-1)!.at - chunks[0].at).toBeGreaterThan(300)
  }, 60_000)

  it('a burst past --rate-limit from one address -> 429 with Retry-After', async () => {
    // 1 request/s, bursts of 2: 30 requests at once cannot all pass, however slow this machine is.
    const limited = await serveJwt('burst', 1)
    try {
      const t = await token('burst', 'viewer')
      const results = await Promise.all(Array.from({ length: 30 }, () => call('/v1/workflows?limit=1', { token: t, at: limited.at })))
      const refused = results.filter((r) => r.status === 429)
      expect(refused.length).toBeGreaterThan(0)
      expect(Number(refused[0].headers.get('retry-after'))).toBeGreaterThanOrEqual(1)
      expect(refused[0].json.error).toMatchObject({ code: 'RATE_LIMITED', message: expect.stringMatching(/rate limit of 1 requests\/s exceeded/) })
      expect(results.filter((r) => r.status === 200).length).toBeGreaterThan(0)
    } finally {
      await stop(limited.child)
    }
  }, 90_000)
})
