import { chmodSync, mkdirSync, readFileSync, statSync, writeFileSync } from 'node:fs'
import { join } from 'node:path'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { repoRoot, runCli, tempWorkspace } from '../../../tests/helpers/cli'
import { type RunningRegistry, removeRegistry, startRegistry } from './registry-fixture'
import { bearerFront } from './servers'

type Ws = Awaited<ReturnType<typeof tempWorkspace>>
const redisDir = join(repoRoot, 'extensions', 'taskservs', 'redis')
const user = 'provuser'
const password = 's3cret-Pass'
let secured: RunningRegistry
let open: RunningRegistry
let ws: Ws

const oci = (args: string[], extra: { input?: string; env?: Record<string, string | undefined> } = {}) =>
  runCli('prov-oci', args, {
    env: { ...ws.env, HOME: ws.root, XDG_CACHE_HOME: join(ws.root, 'cache'), DOCKER_CONFIG: join(ws.root, 'docker'), ...extra.env },
    cwd: ws.path,
    input: extra.input,
  })

beforeAll(async () => {
  ;[secured, open] = await Promise.all([startRegistry({ auth: { user, password } }), startRegistry()])
  ws = await tempWorkspace('auth')
})
afterAll(async () => {
  await Promise.all([removeRegistry(secured), removeRegistry(open)])
  ws?.cleanup()
})

describe('basic auth (docker-registry with htpasswd)', () => {
  it('anonymous access is denied (exit 4)', async () => {
    const result = await oci(['push', `${secured.host}/prov/redis:7.0.0`, redisDir])
    expect(result.code).toBe(4)
    expect(result.stderr).toMatch(/requires authentication/)
  })

  it('wrong credentials are denied (exit 4) and nothing is stored', async () => {
    const result = await oci(['login', secured.host, '--username', user, '--password-stdin'], { input: 'wrong\n' })
    expect(result.code).toBe(4)
    expect(result.stderr).toMatch(/access to 127\.0\.0\.1:\d+ denied \(UNAUTHORIZED/)
    expect(result.stderr).not.toContain('wrong')
    expect(() => statSync(join(ws.env.XDG_CONFIG_HOME as string, 'prov', 'oci-credentials.json'))).toThrow()
  })

  it('login stores the credential in a 0600 file; push and pull then work; logout forgets it', async () => {
    const login = await oci(['login', secured.host, '--username', user, '--password-stdin'], { input: `${password}\n` })
    expect(login.code, login.stderr).toBe(0)
    expect(login.stdout).not.toContain(password)
    const file = login.json().stored
    expect(statSync(file).mode & 0o777).toBe(0o600)
    expect(readFileSync(file, 'utf8')).not.toContain(password)
    const push = await oci(['push', `${secured.host}/prov/redis:7.0.0`, redisDir])
    expect(push.code, push.stderr).toBe(0)
    const pull = await oci(['pull', `${secured.host}/prov/redis:7.0.0`, '--to', join(ws.root, 'pulled')])
    expect(pull.code, pull.stderr).toBe(0)
    expect((await oci(['catalog', secured.host])).json().map((r: { repository: string }) => r.repository)).toEqual(['prov/redis'])
    const logout = await oci(['logout', secured.host])
    expect(logout.json()).toMatchObject({ removed: true })
    const after = await oci(['tags', `${secured.host}/prov/redis`])
    expect(after.code).toBe(4)
    expect(after.stderr).toMatch(/requires authentication/)
  })

  it('reads ~/.docker/config.json when prov has no credential', async () => {
    mkdirSync(join(ws.root, 'docker'), { recursive: true })
    writeFileSync(
      join(ws.root, 'docker', 'config.json'),
      JSON.stringify({ auths: { [secured.host]: { auth: Buffer.from(`${user}:${password}`).toString('base64') } } }),
    )
    const tags = await oci(['tags', `${secured.host}/prov/redis`])
    expect(tags.code, tags.stderr).toBe(0)
    writeFileSync(
      join(ws.root, 'docker', 'config.json'),
      JSON.stringify({ auths: { [secured.host]: { auth: Buffer.from(`${user}:nope`).toString('base64') } } }),
    )
    const wrong = await oci(['tags', `${secured.host}/prov/redis`])
    expect(wrong.code).toBe(4)
    expect(wrong.stderr).toMatch(/access to 127\.0\.0\.1:\d+ denied/)
    writeFileSync(join(ws.root, 'docker', 'config.json'), '{}')
  })

  it('a world-readable credentials file is refused', async () => {
    const file = join(ws.env.XDG_CONFIG_HOME as string, 'prov', 'oci-credentials.json')
    writeFileSync(file, JSON.stringify({ schema: 'prov.oci.credentials/v1', auths: {} }))
    chmodSync(file, 0o644)
    const result = await oci(['tags', `${secured.host}/prov/redis`])
    expect(result.code).toBe(3)
    expect(result.stderr).toMatch(/readable by others/)
  })

  it('login without --password-stdin or with bad registry is a usage error', async () => {
    const noStdin = await oci(['login', secured.host, '--username', user])
    expect(noStdin.code).toBe(2)
    expect(noStdin.stderr).toMatch(/pass the password on stdin with --password-stdin/)
    const badHost = await oci(['login', 'not a host', '--username', user, '--password-stdin'], { input: 'x' })
    expect(badHost.code).toBe(2)
    expect(badHost.stderr).toMatch(/invalid registry 'not a host'/)
  })
})

describe('bearer tokens (WWW-Authenticate challenge flow)', () => {
  it('gets a token from the realm with the basic credential and uses it; follows blob redirects', async () => {
    const front = await bearerFront(open.port, { user, password })
    try {
      const env = { PROV_OCI_CREDENTIALS: join(ws.root, 'bearer-creds.json'), PROV_OCI_CACHE: join(ws.root, 'bearer-cache') }
      const anonymous = await oci(['push', `${front.host}/prov/redis:7.0.0`, redisDir], { env })
      expect(anonymous.code).toBe(4)
      expect(anonymous.stderr).toMatch(/authentication to 127\.0\.0\.1:\d+ failed \(token service answered 401\)/)
      const bad = await oci(['login', front.host, '--username', user, '--password-stdin'], { input: 'bad', env })
      expect(bad.code).toBe(4)
      expect(bad.stderr).toMatch(/authentication to 127\.0\.0\.1:\d+ failed \(token service answered 401\)/)
      const login = await oci(['login', front.host, '--username', user, '--password-stdin'], { input: password, env })
      expect(login.code, login.stderr).toBe(0)
      const push = await oci(['push', `${front.host}/prov/redis:7.0.0`, redisDir], { env })
      expect(push.code, push.stderr).toBe(0)
      const pull = await oci(['pull', `${front.host}/prov/redis:7.0.0`, '--to', join(ws.root, 'bearer-pulled')], { env })
      expect(pull.code, pull.stderr).toBe(0)
      expect(front.tokenRequests()).toBeGreaterThan(0)
      // blob downloads were redirected to another host and still verified
      expect(front.redirects()).toBeGreaterThan(0)
      expect(front.scopes).toEqual(expect.arrayContaining(['repository:prov/redis:pull,push', 'repository:prov/redis:pull']))
    } finally {
      await front.close()
    }
  })
})
