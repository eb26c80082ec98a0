import { generateKeyPairSync } from 'node:crypto'
import { join } from 'node:path'
import { SignJWT } from 'jose'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { type Api, createApi } from '../src/api/app'
import { OrchStore } from '../src/store/store'
import { tempDir } from './helpers'

// In process (hono's app.request): public-key tokens, role lists, issuer checks.
describe('REST auth with an ES256 public key', () => {
  const tmp = tempDir()
  const { privateKey, publicKey } = generateKeyPairSync('ec', { namedCurve: 'P-256' })
  let store: OrchStore
  let api: Api
  beforeAll(async () => {
    store = await OrchStore.open(`sqlite:${join(tmp.dir, 'auth.db')}`)
    api = createApi(store, { auth: { mode: 'jwt', key: publicKey, audience: 'prov-orch', issuer: 'https://id.example' }, rateLimit: 100 })
  })
  afterAll(async () => {
    await api.close()
    await store.close()
    tmp.cleanup()
  })
  const sign = (claims: Record<string, unknown>, issuer = 'https://id.example', key = privateKey) =>
    new SignJWT(claims).setProtectedHeader({ alg: 'ES256' }).setSubject('carol').setAudience('prov-orch').setIssuer(issuer).setExpirationTime('5m').sign(key)
  const get = async (path: string, token?: string, method = 'GET', body?: string) => {
    const res = await api.app.request(path, {
      method,
      body,
      headers: { ...(token ? { authorization: `Bearer ${token}` } : {}), ...(body ? { 'content-type': 'application/json' } : {}) },
    })
    return { status: res.status, body: (await res.json()) as { error: { message: string } | null } }
  }

  it('accepts a valid token; the highest of `roles` wins', async () => {
    expect((await get('/v1/workflows', await sign({ roles: ['viewer'] }))).status).toBe(200)
    const admin = await sign({ roles: ['viewer', 'admin'] })
    expect((await get('/v1/audit', admin)).status).toBe(200)
  })

  it('rejects another issuer, another key, a token without role, and HS256 with the public key as secret', async () => {
    let r = await get('/v1/workflows', await sign({ role: 'admin' }, 'https://evil.example'))
    expect(r.status).toBe(401)
    expect(r.body.error?.message).toMatch(/iss/)
    const other = generateKeyPairSync('ec', { namedCurve: 'P-256' }).privateKey
    r = await get('/v1/workflows', await sign({ role: 'admin' }, undefined, other))
    expect(r.status).toBe(401)
    r = await get('/v1/workflows', await sign({}))
    expect(r.status).toBe(403)
    const confused = await new SignJWT({ role: 'admin' })
      .setProtectedHeader({ alg: 'HS256' })
      .setSubject('x')
      .setAudience('prov-orch')
      .setIssuer('https://id.example')
      .setExpirationTime('5m')
      .sign(new TextEncoder().encode(publicKey.export({ type: 'spki', format: 'pem' }).toString()))
    expect((await get('/v1/workflows', confused)).status).toBe(401)
  })

  // A role claim is looked up only among our own role names: what every object inherits is no role.
  const inherited = ['constructor', 'toString', 'valueOf', 'hasOwnProperty', '__proto__', 'isPrototypeOf', '__defineGetter__', 'propertyIsEnumerable']
  it('a role that is an inherited object property is no role: 403 everywhere, never admin', async () => {
    for (const name of inherited) {
      for (const claims of [{ role: name }, { roles: [name] }, { role: name, roles: [name, 'constructor'] }]) {
        const token = await sign(claims)
        const audit = await get('/v1/audit', token)
        expect(audit.status, `${JSON.stringify(claims)} on /v1/audit`).toBe(403)
        expect(audit.body.error?.message).toMatch(/carries no role/)
        expect((await get('/v1/workflows', token)).status).toBe(403)
        const submit = await get('/v1/workflows', token, 'POST', JSON.stringify({ name: 'x', steps: [{ id: 'a', run: ['true'] }] }))
        expect(submit.status, `${JSON.stringify(claims)} submit`).toBe(403)
      }
    }
  })

  it('inherited names among real roles are ignored: the highest known role wins', async () => {
    const viewer = await sign({ roles: ['viewer', '__proto__', 'constructor'] })
    expect((await get('/v1/workflows', viewer)).status).toBe(200)
    expect((await get('/v1/audit', viewer)).status).toBe(403)
    for (const roles of [
      ['viewer', '__proto__', 'admin'],
      ['constructor', 'admin', 'toString'],
      ['admin', 'valueOf', 'viewer'],
    ]) {
      const who = await get('/v1/session', await sign({ roles }))
      expect((who.body as unknown as { data: { role: string } }).data.role, roles.join()).toBe('admin')
    }
    const op = await get('/v1/session', await sign({ role: 'hasOwnProperty', roles: ['operator', 'toString'] }))
    expect((op.body as unknown as { data: { role: string } }).data.role).toBe('operator')
    // Non-string role entries are ignored too.
    expect((await get('/v1/workflows', await sign({ role: { admin: true }, roles: [1, null, ['admin']] }))).status).toBe(403)
  })

  it('a dashboard login token for an inherited role name is refused (400)', async () => {
    const admin = await sign({ role: 'admin' })
    for (const role of inherited) {
      const res = await api.app.request('/v1/login-tokens', {
        method: 'POST',
        body: JSON.stringify({ role }),
        headers: { authorization: `Bearer ${admin}`, 'content-type': 'application/json' },
      })
      expect(res.status, role).toBe(400)
      expect(((await res.json()) as { error: { message: string } }).error.message).toMatch(/role must be/)
    }
  })

  it('a viewer cannot cancel; an operator can (404 for an unknown id)', async () => {
    expect((await get('/v1/workflows/wf-x', await sign({ role: 'viewer' }), 'DELETE')).status).toBe(403)
    expect((await get('/v1/workflows/wf-x', await sign({ role: 'operator' }), 'DELETE')).status).toBe(404)
  })
})
