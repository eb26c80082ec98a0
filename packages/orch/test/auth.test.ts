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
    const res = await api.app.request(path, { method, body, headers: token ? { authorization: `Bearer ${token}` } : {} })
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

  it('a viewer cannot cancel; an operator can (404 for an unknown id)', async () => {
    expect((await get('/v1/workflows/wf-x', await sign({ role: 'viewer' }), 'DELETE')).status).toBe(403)
    expect((await get('/v1/workflows/wf-x', await sign({ role: 'operator' }), 'DELETE')).status).toBe(404)
  })
})
