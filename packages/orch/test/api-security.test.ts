import { execFileSync } from 'node:child_process'
import { chmodSync, readFileSync, statSync, writeFileSync } from 'node:fs'
import { request } from 'node:http'
import { join } from 'node:path'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { prerequisitesMet, root } from '../../../tests/helpers/prerequisites'
import { type Api, createApi } from '../src/api/app'
import { OrchStore } from '../src/store/store'
import { devEnv, freePort, startOrch, tempDir, waitExit, waitFor } from './helpers'

// The API trusts no browser and no other local user (a real prov-orch serve, its socket and token).
const tmp = tempDir('prov-orch-sec-')
const stateDir = join(tmp.dir, 'state')
const socketPath = join(stateDir, 'orch.sock')
const tokenFile = join(stateDir, 'orch.token')
let port = 0
let server: ReturnType<typeof startOrch>
let token = ''

interface Answer {
  status: number
  headers: Record<string, string | string[] | undefined>
  json: any
}

function call(path: string, options: { socket?: boolean; method?: string; headers?: Record<string, string>; body?: string } = {}): Promise<Answer> {
  return new Promise((resolve, reject) => {
    const req = request(
      {
        ...(options.socket ? { socketPath } : { host: '127.0.0.1', port }),
        path,
        method: options.method ?? 'GET',
        headers: {
          ...(options.body !== undefined ? { 'content-length': String(Buffer.byteLength(options.body)) } : {}),
          ...options.headers,
        },
      },
      (res) => {
        const chunks: Buffer[] = []
        res.on('data', (d: Buffer) => chunks.push(d))
        res.on('end', () => {
          const text = Buffer.concat(chunks).toString('utf8')
          let json: unknown
          try {
            json = JSON.parse(text)
          } catch {
            json = undefined
          }
          resolve({ status: res.statusCode ?? 0, headers: res.headers, json })
        })
      },
    )
    req.on('error', reject)
    req.end(options.body)
  })
}

const bearer = () => ({ authorization: `Bearer ${token}` })
const workflow = JSON.stringify({ name: 'sec', steps: [{ id: 'a', run: 'true' }] })
const total = async () => (await call('/v1/workflows?limit=1', { socket: true })).json.data.total as number

beforeAll(async () => {
  port = await freePort()
  server = startOrch(
    [
      'serve',
      '--port',
      String(port),
      '--store',
      `sqlite:${join(stateDir, 'orch.db')}`,
      '--no-engine',
      '--max-body',
      '65536',
      '--rate-limit',
      '1000',
      '--cors',
      'http://dash.example:8080',
      '--allow-host',
      'orch.internal',
    ],
    devEnv,
  )
  await waitFor(() => (statSync(tokenFile, { throwIfNoEntry: false }) ? true : undefined), 60_000, 100)
  token = readFileSync(tokenFile, 'utf8').trim()
  await waitFor(async () => (await call('/health').catch(() => undefined))?.status === 200, 60_000, 100)
}, 90_000)

afterAll(async () => {
  server?.kill('SIGTERM')
  if (server) await waitExit(server, 20_000).catch(() => server.kill('SIGKILL'))
  tmp.cleanup()
})

describe('prov-orch serve: local access', () => {
  it('socket, token, store and state folder are private to the owner', () => {
    const mode = (p: string) => (statSync(p).mode & 0o777).toString(8)
    expect(mode(stateDir)).toBe('700')
    expect(mode(socketPath)).toBe('600')
    expect(statSync(socketPath).isSocket()).toBe(true)
    expect(mode(tokenFile)).toBe('600')
    for (const f of ['orch.db', 'orch.db-wal', 'orch.db-shm']) expect(mode(join(stateDir, f)), f).toBe('600')
    expect(token).toMatch(/^[A-Za-z0-9_-]{43}$/)
  })

  it('TCP needs the owner token (401 without, or with a wrong one); the socket needs none', async () => {
    let r = await call('/v1/workflows')
    expect(r.status).toBe(401)
    expect(r.json.error).toMatchObject({ code: 'UNAUTHORIZED', message: expect.stringMatching(/missing bearer token/) })
    r = await call('/v1/workflows', { headers: { authorization: `Bearer ${'x'.repeat(43)}` } })
    expect(r.status).toBe(401)
    expect(r.json.error.message).toBe('invalid token')
    expect((await call('/v1/workflows', { headers: bearer() })).status).toBe(200)
    expect((await call('/v1/workflows', { socket: true })).status).toBe(200)
    r = await call('/v1/workflows', { method: 'POST', headers: { 'content-type': 'application/json' }, body: workflow })
    expect(r.status).toBe(401)
  })

  it.skipIf(!prerequisitesMet('another local user on the orchestrator API (switches to uid 65534)', [root]))(
    'another local user (uid 65534) is refused on the socket and on TCP, and cannot read the token',
    async () => {
      const probe = `
      const net = require('node:net'); const fs = require('node:fs')
      const out = {}
      const connect = () => new Promise((r) => { const s = net.createConnection(${JSON.stringify(socketPath)}); s.on('connect', () => { s.destroy(); r('connected') }); s.on('error', (e) => r(e.code)) })
      ;(async () => {
        out.socket = await connect()
        try { fs.readFileSync(${JSON.stringify(tokenFile)}); out.token = 'read' } catch (e) { out.token = e.code }
        const res = await fetch('http://127.0.0.1:${port}/v1/workflows', { method: 'POST', headers: { 'content-type': 'application/json' }, body: ${JSON.stringify(workflow)} })
        out.tcp = res.status
        console.log(JSON.stringify(out))
      })()`
      const asNobody = () =>
        JSON.parse(execFileSync('setpriv', ['--reuid', '65534', '--regid', '65534', '--clear-groups', process.execPath, '-e', probe], { cwd: '/' }).toString())
      const before = await total()
      expect(asNobody()).toEqual({ socket: 'EACCES', token: 'EACCES', tcp: 401 })
      // Even with the state folder opened up, the socket's own mode keeps them out.
      chmodSync(stateDir, 0o755)
      try {
        expect(asNobody()).toEqual({ socket: 'EACCES', token: 'EACCES', tcp: 401 })
      } finally {
        chmodSync(stateDir, 0o700)
      }
      expect(await total()).toBe(before)
    },
  )
})

describe('prov-orch serve: browsers', () => {
  it('mutating requests take JSON or YAML only: text/plain, forms and multipart -> 415, nothing queued', async () => {
    const before = await total()
    for (const type of ['text/plain', 'application/x-www-form-urlencoded', 'multipart/form-data; boundary=x', 'text/plain;charset=UTF-8']) {
      for (const socket of [false, true]) {
        const r = await call('/v1/workflows', { socket, method: 'POST', headers: { ...bearer(), 'content-type': type }, body: workflow })
        expect(r.status, `${type} socket=${socket}`).toBe(415)
        expect(r.json.error.code).toBe('UNSUPPORTED_MEDIA_TYPE')
      }
    }
    const noType = await call('/v1/workflows', { method: 'POST', headers: bearer(), body: workflow })
    expect(noType.status).toBe(415)
    expect(await total()).toBe(before)
    const yaml = await call('/v1/workflows', {
      method: 'POST',
      headers: { ...bearer(), 'content-type': 'application/yaml' },
      body: 'name: y\nsteps: [{id: a, run: "true"}]\n',
    })
    expect(yaml.status).toBe(202)
  })

  it('a foreign Origin is refused (403) even with the token; no CORS headers but for a configured origin', async () => {
    const before = await total()
    for (const origin of ['http://evil.example', 'null', `http://127.0.0.1:${port + 1}`]) {
      const r = await call('/v1/workflows', { method: 'POST', headers: { ...bearer(), origin, 'content-type': 'application/json' }, body: workflow })
      expect(r.status, origin).toBe(403)
      expect(r.json.error.code).toBe('FORBIDDEN_ORIGIN')
      expect(r.headers['access-control-allow-origin']).toBeUndefined()
    }
    expect(await total()).toBe(before)
    const own = await call('/v1/workflows', { headers: { ...bearer(), origin: `http://127.0.0.1:${port}` } })
    expect(own.status).toBe(200)
    expect(own.headers['access-control-allow-origin']).toBeUndefined()
    const preflight = await call('/v1/workflows', {
      method: 'OPTIONS',
      headers: { origin: 'http://dash.example:8080', 'access-control-request-method': 'POST' },
    })
    expect(preflight.status).toBe(204)
    expect(preflight.headers['access-control-allow-origin']).toBe('http://dash.example:8080')
    const foreignPreflight = await call('/v1/workflows', { method: 'OPTIONS', headers: { origin: 'http://evil.example' } })
    expect(foreignPreflight.status).toBe(403)
  })

  it('a foreign Host (DNS rebinding) is refused with 421; loopback names and configured ones pass', async () => {
    // Also the Host values the URL parser would normalise (answered before the app sees them): never an empty 400.
    for (const host of [
      'evil.example',
      `evil.example:${port}`,
      'localhost.evil.example',
      '127.0.0.1.nip.io',
      `LOCALHOST:${port}`,
      '[::ffff:127.0.0.1]',
      `[::ffff:127.0.0.1]:${port}`,
      '127.1',
      '0x7f000001',
      '2130706433',
      '0177.0.0.1',
      `127.000.000.001:${port}`,
    ]) {
      const r = await call('/v1/workflows', { headers: { ...bearer(), host } })
      expect(r.status, host).toBe(421)
      expect(r.json?.error?.code, host).toBe('MISDIRECTED')
      expect(r.json.status).toBe('error')
      expect(r.json.metadata.request_id).toMatch(/^req-/)
    }
    for (const host of [`localhost:${port}`, `127.0.0.1:${port}`, `orch.internal:${port}`, `[::1]:${port}`]) {
      expect((await call('/v1/workflows', { headers: { ...bearer(), host } })).status, host).toBe(200)
    }
  })

  it('bodies over --max-body -> 413, by Content-Length and while streaming a chunked body', async () => {
    const big = JSON.stringify({ name: 'big', description: 'x'.repeat(200_000), steps: [{ id: 'a', run: 'true' }] })
    const before = await total()
    const r = await call('/v1/workflows', { method: 'POST', headers: { ...bearer(), 'content-type': 'application/json' }, body: big })
    expect(r.status).toBe(413)
    expect(r.json.error).toMatchObject({ code: 'PAYLOAD_TOO_LARGE', details: { limit: 65536 } })
    // Streamed without a length: cut off at the limit (curl reads the answer while it sends).
    const bigFile = join(tmp.dir, 'big.json')
    writeFileSync(bigFile, big)
    const chunked = execFileSync('curl', [
      '-s',
      '-o',
      '/dev/null',
      '-w',
      '%{http_code}',
      '-H',
      `Authorization: Bearer ${token}`,
      '-H',
      'Content-Type: application/json',
      '-H',
      'Transfer-Encoding: chunked',
      '--data-binary',
      `@${bigFile}`,
      `http://127.0.0.1:${port}/v1/workflows`,
    ]).toString()
    expect(chunked).toBe('413')
    expect(await total()).toBe(before)
  })
})

describe('rate limit and audit log against floods (in process)', () => {
  const mem = tempDir()
  let store: OrchStore
  let api: Api
  let now = 1_000_000
  const hit = (address: string, headers: Record<string, string> = {}) =>
    api.fetch(
      new Request('http://127.0.0.1:9090/v1/workflows', { method: 'POST', headers: { 'content-type': 'application/json', ...headers }, body: workflow }),
      {
        incoming: { socket: { remoteAddress: address } },
      },
    )
  beforeAll(async () => {
    store = await OrchStore.open(`sqlite:${join(mem.dir, 'flood.db')}`)
    api = createApi(store, { auth: { mode: 'token', token: 't'.repeat(43) }, rateLimit: 5, auditWindowMs: 3_600_000, clock: () => now })
  })
  afterAll(async () => {
    await api.close()
    await store.close()
    mem.cleanup()
  })

  it('limits per address before authentication: a flood without credentials turns into 429s', async () => {
    const statuses = []
    for (let i = 0; i < 40; i++) statuses.push((await hit('10.0.0.1')).status)
    // A burst of twice the rate is answered (401: no credentials), the rest never reach authentication.
    expect(statuses).toEqual([...Array(10).fill(401), ...Array(30).fill(429)])
    // Another address is not starved, and a good token from it works.
    expect((await hit('10.0.0.2', { authorization: `Bearer ${'t'.repeat(43)}` })).status).toBe(202)
    now += 1000
    expect((await hit('10.0.0.1')).status).toBe(401)
  })

  it('a body nested 100,000 levels deep is a 400 naming the problem, not a crash', async () => {
    const deep = `${'['.repeat(100_000)}${']'.repeat(100_000)}`
    const res = await api.fetch(
      new Request('http://127.0.0.1:9090/v1/workflows', {
        method: 'POST',
        headers: { 'content-type': 'application/json', authorization: `Bearer ${'t'.repeat(43)}` },
        body: deep,
      }),
      { incoming: { socket: { remoteAddress: '10.9.9.9' } } },
    )
    expect(res.status).toBe(400)
    expect(((await res.json()) as { error: { message: string } }).error.message).toMatch(/body is nested too deeply/)
  })

  it('refused requests are counted, not logged one by one: 3,000 from 500 addresses add at most 101 rows', async () => {
    for (let i = 0; i < 3000; i++) await hit(`10.1.${Math.floor(i / 6) % 250}.${i % 2}`)
    await api.close()
    const rows = (await store.readAudit(1000)).filter((r) => r.who.startsWith('unauthenticated@'))
    expect(rows.length).toBeLessThanOrEqual(101)
    const counted = rows.reduce((n, r) => n + Number((r.detail as { refused: number }).refused), 0)
    expect(counted).toBe(3000 + 41)
    expect(rows.some((r) => r.who === 'unauthenticated@*')).toBe(true)
  })
})
