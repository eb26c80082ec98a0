import { generateKeyPairSync } from 'node:crypto'
import { mkdirSync, symlinkSync, writeFileSync } from 'node:fs'
import { join } from 'node:path'
import { SignJWT } from 'jose'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { type Api, createApi } from '../src/api/app'
import { OrchStore } from '../src/store/store'
import { tempDir } from './helpers'

// In process (hono's app.request, host localhost): the dashboard's files, the login exchange and
// sessions, with a clock the tests move.
describe('dashboard files, login and sessions', () => {
  const tmp = tempDir()
  const { privateKey, publicKey } = generateKeyPairSync('ec', { namedCurve: 'P-256' })
  let now = Date.now()
  let store: OrchStore
  let api: Api
  const uiDir = join(tmp.dir, 'ui')
  const own = 'http://localhost'

  beforeAll(async () => {
    mkdirSync(join(uiDir, 'assets'), { recursive: true })
    writeFileSync(join(uiDir, 'index.html'), '<!doctype html><title>t</title>')
    writeFileSync(join(uiDir, 'assets', 'app-1.js'), 'console.log(1)')
    writeFileSync(join(tmp.dir, 'secret.js'), 'the owner’s file')
    symlinkSync(join(tmp.dir, 'secret.js'), join(uiDir, 'assets', 'link.js'))
    store = await OrchStore.open(`sqlite:${join(tmp.dir, 'orch.db')}`)
    api = createApi(store, { auth: { mode: 'jwt', key: publicKey, audience: 'prov-orch' }, rateLimit: 1000, uiDir, clock: () => now })
  })
  afterAll(async () => {
    await api.close()
    await store.close()
    tmp.cleanup()
  })

  const jwt = (role: string, exp: string | number = '10m') =>
    new SignJWT({ role }).setProtectedHeader({ alg: 'ES256' }).setSubject(`${role}-user`).setAudience('prov-orch').setExpirationTime(exp).sign(privateKey)

  async function call(path: string, init: { method?: string; headers?: Record<string, string>; body?: unknown } = {}) {
    const res = await api.app.request(path, {
      method: init.method ?? 'GET',
      headers: { host: 'localhost', ...(init.body !== undefined ? { 'content-type': 'application/json' } : {}), ...init.headers },
      body: init.body === undefined ? undefined : JSON.stringify(init.body),
    })
    const text = await res.text()
    let json: any
    try {
      json = JSON.parse(text)
    } catch {
      json = undefined
    }
    return { status: res.status, headers: res.headers, text, json }
  }

  async function login(token: string) {
    const r = await call('/ui/login', { method: 'POST', headers: { origin: own }, body: { token } })
    const cookie = (r.headers.get('set-cookie') ?? '').split(';')[0]
    return { ...r, cookie, csrf: r.json?.data?.csrf as string }
  }

  it('serves the built files by exact name with a strict policy; links, other names and traversal are 404', async () => {
    const page = await call('/ui/')
    expect(page.status).toBe(200)
    expect(page.headers.get('content-security-policy')).toMatch(/default-src 'none'; script-src 'self'.*frame-ancestors 'none'/)
    expect(page.headers.get('x-content-type-options')).toBe('nosniff')
    expect(page.headers.get('cache-control')).toBe('no-store')
    const script = await call('/ui/assets/app-1.js')
    expect(script.status).toBe(200)
    expect(script.headers.get('content-type')).toMatch(/^text\/javascript/)
    expect(script.headers.get('cache-control')).toMatch(/immutable/)
    for (const path of ['/ui/assets/link.js', '/ui/assets/..%2f..%2fsecret.js', '/ui/../secret.js', '/ui/index.html', '/ui/assets/']) {
      const r = await call(path)
      // `/ui/../secret.js` is `/secret.js` once the URL is parsed: no file there, and it needs credentials.
      expect([401, 404], path).toContain(r.status)
      expect(r.text).not.toContain('the owner')
    }
    expect((await call('/ui')).headers.get('location')).toBe('/ui/')
  })

  it('a pasted JWT becomes a session of its role: HttpOnly SameSite=Strict cookie, CSRF token on every request', async () => {
    const s = await login(await jwt('viewer'))
    expect(s.status).toBe(200)
    expect(s.json.data).toMatchObject({ who: 'viewer-user', role: 'viewer', csrf: expect.stringMatching(/^[\w-]{40,}$/) })
    const setCookie = s.headers.get('set-cookie') ?? ''
    expect(setCookie).toMatch(/^prov_orch_session_80=[\w-]{40,}; Path=\/; HttpOnly; SameSite=Strict$/)
    let r = await call('/v1/session', { headers: { cookie: s.cookie, 'x-csrf-token': s.csrf } })
    expect(r.json.data).toMatchObject({ who: 'viewer-user', role: 'viewer', auth: 'jwt' })
    r = await call('/v1/workflows', { headers: { cookie: s.cookie } })
    expect(r.status).toBe(403)
    expect(r.json.error).toMatchObject({ code: 'CSRF' })
    r = await call('/metrics', { headers: { cookie: s.cookie, 'x-csrf-token': `${s.csrf.slice(0, -1)}x` } })
    expect(r.status).toBe(403)
    r = await call('/v1/workflows/wf-x', { method: 'DELETE', headers: { cookie: s.cookie, 'x-csrf-token': s.csrf, origin: own } })
    expect(r.status).toBe(403)
    expect(r.json.error.message).toMatch(/role 'viewer' may not do this/)
  })

  it('the login exchange and cookie-authenticated changes need this server as Origin, and JSON', async () => {
    const token = await jwt('operator')
    let r = await call('/ui/login', { method: 'POST', body: { token } })
    expect(r.status).toBe(403)
    expect(r.json.error).toMatchObject({ code: 'FORBIDDEN_ORIGIN' })
    r = await call('/ui/login', { method: 'POST', headers: { origin: 'http://127.0.0.1:8080' }, body: { token } })
    expect(r.status).toBe(403)
    const plain = await api.app.request('/ui/login', {
      method: 'POST',
      headers: { host: 'localhost', origin: own, 'content-type': 'text/plain' },
      body: JSON.stringify({ token }),
    })
    expect(plain.status).toBe(415)
    const s = await login(token)
    expect(s.status).toBe(200)
    // Same session and CSRF token, no Origin (not a browser of ours): refused, nothing changes.
    r = await call('/v1/workflows/wf-x', { method: 'DELETE', headers: { cookie: s.cookie, 'x-csrf-token': s.csrf } })
    expect(r.status).toBe(403)
    expect(r.json.error).toMatchObject({ code: 'FORBIDDEN_ORIGIN' })
    r = await call('/v1/workflows/wf-x', { method: 'DELETE', headers: { cookie: s.cookie, 'x-csrf-token': s.csrf, origin: own } })
    expect(r.status).toBe(404)
    // Log out: the cookie opens nothing any more.
    r = await call('/v1/session', { method: 'DELETE', headers: { cookie: s.cookie, 'x-csrf-token': s.csrf, origin: own } })
    expect(r.json.data).toEqual({ closed: true })
    r = await call('/v1/session', { headers: { cookie: s.cookie, 'x-csrf-token': s.csrf } })
    expect(r.status).toBe(401)
  })

  it('login tokens: minted by an admin only, one use, 5 minutes; a session never outlives its JWT', async () => {
    const admin = { authorization: `Bearer ${await jwt('admin')}` }
    let r = await call('/v1/login-tokens', { method: 'POST', headers: { authorization: `Bearer ${await jwt('operator')}` }, body: {} })
    expect(r.status).toBe(403)
    r = await call('/v1/login-tokens', { method: 'POST', headers: admin, body: { role: 'root' } })
    expect(r.status).toBe(400)
    r = await call('/v1/login-tokens', { method: 'POST', headers: admin, body: { role: 'operator' } })
    expect(r.status).toBe(201)
    expect(r.json.data).toMatchObject({ role: 'operator', ttl_seconds: 300, url: null, token: expect.stringMatching(/^[\w-]{40,}$/) })
    const token = r.json.data.token as string
    const first = await login(token)
    expect(first.json.data).toMatchObject({ role: 'operator', who: 'ui:operator:admin-user' })
    const again = await login(token)
    expect(again.status).toBe(401)
    expect(again.json.error.message).toMatch(/invalid, already used or expired/)

    const late = (await call('/v1/login-tokens', { method: 'POST', headers: admin, body: {} })).json.data.token as string
    now += 5 * 60_000 + 1
    expect((await login(late)).status).toBe(401)

    const short = await login(await jwt('viewer', Math.floor(now / 1000) + 120))
    expect(short.status).toBe(200)
    expect((await call('/v1/session', { headers: { cookie: short.cookie, 'x-csrf-token': short.csrf } })).status).toBe(200)
    now += 3 * 60_000
    expect((await call('/v1/session', { headers: { cookie: short.cookie, 'x-csrf-token': short.csrf } })).status).toBe(401)
  })
})
