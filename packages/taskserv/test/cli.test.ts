// prov-taskserv without servers: catalog, plans, --check (no SSH) and every kind of bad input.
import { existsSync, mkdirSync, mkdtempSync, readdirSync, rmSync, symlinkSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { runCli, tempWorkspace } from '../../../tests/helpers/cli'
import { serverRecord } from './records'

type Ws = Awaited<ReturnType<typeof tempWorkspace>>
let ws: Ws
const env = () => ({ ...ws.env, PROV_DEV: process.env.PROV_TEST_BUILT ? undefined : '1' })
const ts = (args: string[], input?: string) => runCli('prov-taskserv', args, { env: env(), input, cwd: ws.path })

const server = (name: string, labels: Record<string, string> = {}, ip = '192.0.2.10') => serverRecord(name, { labels, ip_address: ip })

function extension(name: string, manifest: string, scripts: Record<string, string> = {}) {
  const dir = join(ws.path, 'extensions', 'taskservs', name)
  mkdirSync(dir, { recursive: true })
  writeFileSync(join(dir, 'manifest.yaml'), manifest)
  for (const [file, text] of Object.entries(scripts)) writeFileSync(join(dir, file), text, { mode: 0o755 })
}

beforeAll(async () => {
  ws = await tempWorkspace('tsws', 'full')
})
afterAll(() => ws?.cleanup())

describe('catalog', () => {
  it('lists at least eight real services with scripts, plus hello and webapp', async () => {
    const r = await ts(['list', '-o', 'json'])
    expect(r.code, r.stderr).toBe(0)
    const names = r.json<{ name: string }[]>().map((e) => e.name)
    for (const n of ['redis', 'postgres', 'nginx', 'haproxy', 'etcd', 'containerd', 'node-exporter', 'webapp', 'hello', 'kubernetes'])
      expect(names).toContain(n)
  })

  it('list --installed is empty on a fresh workspace', async () => {
    const r = await ts(['list', '--installed', '-o', 'json'])
    expect(r.code).toBe(0)
    expect(r.json()).toEqual([])
  })
})

describe('plan and --check', () => {
  it('expands requirements into levels: containerd and etcd, then kubernetes, then cilium', async () => {
    const r = await ts(['plan', 'cilium', '-o', 'json'], JSON.stringify([server('k-01')]))
    expect(r.code, r.stderr).toBe(0)
    const plan = r.json()
    expect(plan.schema).toBe('prov.taskserv.plan/v1')
    expect(plan.levels).toEqual([['containerd', 'etcd'], ['kubernetes'], ['cilium']])
    expect(plan.added).toEqual(['containerd', 'etcd', 'kubernetes'])
    expect(plan.servers[0].taskservs.map((t: { name: string }) => t.name)).toEqual(['containerd', 'etcd', 'kubernetes', 'cilium'])
  })

  it('install --check prints the plan (nothing recorded)', async () => {
    const input = JSON.stringify([server('far-01', {}, '192.0.2.1'), server('far-02', {}, '192.0.2.2')])
    const r = await ts(['install', 'webapp', '--check', '-o', 'json'], input)
    expect(r.code, r.stderr).toBe(0)
    const plan = r.json()
    expect(plan.check).toBe(true)
    expect(plan.levels).toEqual([['postgres'], ['webapp']])
    expect(plan.servers.map((s: { server: string }) => s.server)).toEqual(['far-01', 'far-02'])
    // Nothing recorded, no log folder.
    expect((await ts(['list', '--installed', '-o', 'json'])).json()).toEqual([])
  })

  it('plans the infra taskservs.yaml of the full template with placements by label', async () => {
    writeFileSync(
      join(ws.path, '.prov', 'servers.json'),
      JSON.stringify({
        version: 1,
        servers: { 'web-01': server('web-01', { role: 'web' }), 'web-02': server('web-02', { role: 'web' }), 'db-01': server('db-01', { role: 'db' }) },
        provider_data: {},
      }),
    )
    const r = await ts(['plan', '--infra', 'demo', '-o', 'json'])
    expect(r.code, r.stderr).toBe(0)
    const plan = r.json()
    const byServer = Object.fromEntries(plan.servers.map((s: { server: string; taskservs: { name: string }[] }) => [s.server, s.taskservs.map((t) => t.name)]))
    expect(byServer['db-01']).toEqual(['postgres'])
    expect(byServer['web-01']).toEqual(['webapp', 'haproxy'])
    expect(byServer['web-02']).toEqual(['webapp'])
    expect(plan.levels).toEqual([['postgres'], ['webapp'], ['haproxy']])
  })

  it('cluster deploy --check places the web cluster and interpolates addresses', async () => {
    const r = await ts(['cluster', 'deploy', 'web', '--check', '-o', 'json'])
    expect(r.code, r.stderr).toBe(0)
    const plan = r.json()
    expect(plan.cluster).toBe('web')
    expect(plan.levels).toEqual([['postgres'], ['webapp'], ['haproxy']])
  })

  it('--where selects servers by label', async () => {
    const r = await ts(['plan', 'redis', '--where', 'role=web', '-o', 'json'])
    expect(r.code, r.stderr).toBe(0)
    expect(r.json().servers.map((s: { server: string }) => s.server)).toEqual(['web-01', 'web-02'])
  })
})

describe('bad input', () => {
  it('unknown taskserv: exit 5 with the nearest names', async () => {
    const r = await ts(['install', 'rediss', '--check'], JSON.stringify([server('a-01')]))
    expect(r.code).toBe(5)
    expect(r.stderr).toMatch(/unknown taskserv 'rediss'.*redis/)
    expect(r.stdout).toBe('')
  })

  it('stdin records that are not servers: exit 2', async () => {
    const r = await ts(['install', 'redis', '--check'], JSON.stringify([{ schema: 'prov.kms.secret/v1', name: 'x' }]))
    expect(r.code).toBe(2)
    expect(r.stderr).toMatch(/schema 'prov.kms.secret\/v1', expected prov.server\/v1/)
  })

  it('malformed stdin: exit 2', async () => {
    const r = await ts(['install', 'redis', '--check'], '{"schema": "prov.server/v1", ')
    expect(r.code).toBe(2)
    expect(r.stderr.trim().split('\n')).toHaveLength(1)
  })

  it('a server record with a wrong type: exit 2 naming the field', async () => {
    const r = await ts(['install', 'redis', '--check'], JSON.stringify([{ ...server('a-01'), ssh: { user: 'root', port: 'x' } }]))
    expect(r.code).toBe(2)
    expect(r.stderr).toMatch(/ssh\.port/)
  })

  it('unknown server name: exit 5', async () => {
    const r = await ts(['install', 'redis', '--check', '--servers', 'web-1'])
    expect(r.code).toBe(5)
    expect(r.stderr).toMatch(/unknown server 'web-1'.*web-01/)
  })

  it('no target at all: exit 2', async () => {
    const r = await ts(['install', 'redis', '--check'])
    expect(r.code).toBe(2)
    expect(r.stderr).toMatch(/no target servers/)
  })

  it('unsatisfiable version range: exit 3', async () => {
    const r = await ts(['install', 'redis@^9', '--check'], JSON.stringify([server('a-01')]))
    expect(r.code).toBe(3)
    expect(r.stderr).toMatch(/unsatisfiable version/)
  })

  it('dependency cycle in manifests (workspace layer): exit 3 with the cycle path', async () => {
    extension('cyc-a', 'name: cyc-a\nkind: taskserv\nversion: 1.0.0\nrequires: { cyc-b: "*" }\n')
    extension('cyc-b', 'name: cyc-b\nkind: taskserv\nversion: 1.0.0\nrequires: { cyc-a: "*" }\n')
    const r = await ts(['plan', 'cyc-a'], JSON.stringify([server('a-01')]))
    expect(r.code).toBe(3)
    expect(r.stderr).toMatch(/dependency cycle: cyc-a -> cyc-b -> cyc-a/)
  })

  it('conflict with a taskserv recorded as installed on the server: exit 3', async () => {
    extension('docker', 'name: docker\nkind: taskserv\nversion: 24.0.0\nprovides: [container-runtime]\n')
    writeFileSync(
      join(ws.path, '.prov', 'taskservs.json'),
      JSON.stringify({ schema: 'prov.taskserv.state/v1', servers: { 'web-01': { docker: { version: '24.0.0', updated_at: '2026-01-01T00:00:00Z' } } } }),
    )
    const r = await ts(['install', 'containerd', '--check', '--servers', 'web-01'])
    expect(r.code).toBe(3)
    expect(r.stderr).toMatch(/conflict: 'containerd' conflicts with 'docker' \(installed\) on server web-01/)
    // Another server without docker is fine.
    expect((await ts(['install', 'containerd', '--check', '--servers', 'web-02'])).code).toBe(0)
  })

  it('malformed taskservs.yaml: exit 3 with file:line', async () => {
    const infra = join(ws.path, 'infra', 'broken')
    mkdirSync(infra, { recursive: true })
    writeFileSync(join(infra, 'taskservs.yaml'), 'taskservs:\n  - name: redis\n    servers: [web-01]\n  - name: postgres\n    setings: {}\n')
    let r = await ts(['plan', '--infra', 'broken'])
    expect(r.code).toBe(3)
    expect(r.stderr).toMatch(/taskservs\.yaml:5/)
    expect(r.stderr).toMatch(/setings/)
    writeFileSync(join(infra, 'taskservs.yaml'), 'taskservs:\n  - name: redis\n    servers: [web-01\n')
    r = await ts(['plan', '--infra', 'broken'])
    expect(r.code).toBe(3)
    expect(r.stderr).toMatch(/malformed taskservs\.yaml.*taskservs\.yaml:\d+/)
    writeFileSync(join(infra, 'taskservs.yaml'), 'taskservs:\n  - name: redis\n    servers: { count: many }\n')
    r = await ts(['plan', '--infra', 'broken'])
    expect(r.code).toBe(3)
    expect(r.stderr).toMatch(/taskservs\.yaml:3/)
  })

  it('unknown options and bad numbers: exit 2', async () => {
    expect((await ts(['install', 'redis', '--bogus'])).code).toBe(2)
    expect((await ts(['install', 'redis', '--timeout', 'soon', '--servers', 'web-01'])).code).toBe(2)
    expect((await ts(['update', 'redis', '--batch', '2', '--servers', 'web-01'])).code).toBe(2)
    expect((await ts(['logs', 'redis', '--tail', '-3', '--servers', 'web-01'])).code).toBe(2)
  })

  it('plan --action outside its fixed set: exit 2 naming the choices', async () => {
    const r = await ts(['plan', 'redis', '--action', 'destroy', '--servers', 'web-01'])
    expect(r.code).toBe(2)
    expect(r.stderr).toMatch(/^prov-taskserv: error: invalid value\b.*'destroy'/)
    expect(r.stderr).toMatch(/--action.*one of install, remove, update/)
    expect(r.stdout).toBe('')
  })

  it('unknown cluster: exit 5', async () => {
    const r = await ts(['cluster', 'deploy', 'wbe', '--check'])
    expect(r.code).toBe(5)
    expect(r.stderr).toMatch(/web/)
  })
})

describe('settings are data, checked before anything connects', () => {
  const one = () => JSON.stringify([server('a-01')])
  const expectRefused = (r: { code: number; stdout: string; stderr: string }, code: number, message: RegExp) => {
    expect(r.code, r.stderr).toBe(code)
    expect(r.stderr).toMatch(message)
    expect(r.stderr.trim().split('\n')).toHaveLength(1)
    expect(r.stdout).toBe('')
  }

  it('a value that does not fit its declared type: exit 2 for --set, naming the setting and the type, never echoing the value', async () => {
    for (const value of ['6379; touch /tmp/p', '$(id)', '`id`', '6379\nbind 0.0.0.0', '70000']) {
      const r = await ts(['install', 'redis', '--check', '--set', `port=${value}`], one())
      expectRefused(r, 2, /--set: setting 'port' of redis must be a port \(1-65535\)/)
      if (value.length > 4) expect(r.stderr).not.toContain(value)
    }
    expectRefused(await ts(['install', 'hello', '--check', '--set', 'path=/'], one()), 2, /setting 'path' of hello must be an absolute path/)
    expectRefused(await ts(['install', 'hello', '--check', '--set', 'path=/etc/../root'], one()), 2, /setting 'path' of hello/)
    expectRefused(
      await ts(['install', 'postgres', '--check', '--set', "db_name=app'; DROP DATABASE x; --"], one()),
      2,
      /setting 'db_name' of postgres must be a name/,
    )
  })

  it('free text where the type allows it: accepted as it is (it reaches the scripts as data)', async () => {
    const r = await ts(['install', 'hello', '--check', '--set', 'message=x; touch /tmp/p $(id) `id`', '-o', 'json'], one())
    expect(r.code, r.stderr).toBe(0)
    expect(r.json().check).toBe(true)
  })

  it('unknown and invalid setting names: exit 2 with the nearest name', async () => {
    expectRefused(await ts(['install', 'redis', '--check', '--set', 'prot=6380'], one()), 2, /unknown setting 'prot' for taskserv redis; did you mean 'port'/)
    expectRefused(await ts(['install', 'redis', '--check', '--set', 'a.b=1'], one()), 2, /--set: invalid setting name 'a\.b'/)
    // Every --set counts, not only the last one.
    expectRefused(await ts(['install', 'redis', '--check', '--set', 'prot=6380', '--set', 'port=6380'], one()), 2, /unknown setting 'prot'/)
    expectRefused(await ts(['install', 'redis', '--check', '--set', '__proto__=1'], one()), 2, /invalid setting name '__proto__'/)
    expectRefused(await ts(['install', 'redis', '--check', '--set', 'x;y=1'], one()), 2, /--set expects key=value/)
  })

  it('--version is one plain word: exit 2 otherwise', async () => {
    expectRefused(await ts(['install', 'hello', '--check', '--version', '1.0; id'], one()), 2, /--version must be a version/)
    expectRefused(await ts(['install', 'hello', '--check', '--version', '1.0"}x'], one()), 2, /--version must be a version/)
  })

  it('a bad value in taskservs.yaml or a manifest: exit 3 naming where', async () => {
    const infra = join(ws.path, 'infra', 'typed')
    mkdirSync(infra, { recursive: true })
    writeFileSync(
      join(infra, 'taskservs.yaml'),
      'taskservs:\n  - name: haproxy\n    servers: all\n    settings: { backends: "10.0.0.1:80 check\\n  server evil 1.2.3.4:80" }\n',
    )
    expectRefused(await ts(['plan', '--infra', 'typed']), 3, /setting 'backends' of haproxy must be host:port pairs/)
    writeFileSync(join(infra, 'taskservs.yaml'), 'taskservs:\n  - name: hello\n    version: "1; id"\n    servers: all\n')
    expectRefused(await ts(['plan', '--infra', 'typed']), 3, /'taskservs\.0\.version': a version such as 1\.2\.3 .*taskservs\.yaml:3/)
    extension('typo-types', 'name: typo-types\nkind: taskserv\nversion: 1.0.0\nsettings: { port: 80 }\nsetting_types: { port: prot }\n')
    expectRefused(await ts(['plan', 'hello'], one()), 3, /taskserv 'typo-types': setting_types\.port: unknown type 'prot'.*typo-types\/manifest\.yaml/)
    rmSync(join(ws.path, 'extensions', 'taskservs', 'typo-types'), { recursive: true })
    extension('bad-service', 'name: bad-service\nkind: taskserv\nversion: 1.0.0\nservices: ["../../etc"]\n')
    expectRefused(await ts(['plan', 'hello'], one()), 3, /taskserv 'bad-service': services must be a list of names/)
    rmSync(join(ws.path, 'extensions', 'taskservs', 'bad-service'), { recursive: true })
  })

  it('prototype keys and hostile nesting in taskservs.yaml or a manifest: refused by name (exit 3 / exit 2)', async () => {
    const infra = join(ws.path, 'infra', 'hostile')
    mkdirSync(infra, { recursive: true })
    writeFileSync(join(infra, 'servers.yaml'), 'servers: []\n')
    for (const key of ['__proto__', 'constructor', 'prototype']) {
      writeFileSync(join(infra, 'taskservs.yaml'), `taskservs:\n  - name: redis\n    servers: all\n    settings: {${key}: {x: 1}}\n`)
      expectRefused(await ts(['plan', '--infra', 'hostile']), 3, new RegExp(`forbidden key '${key}'.*taskservs\\.yaml:4`))
    }
    writeFileSync(join(infra, 'taskservs.yaml'), `a: ${'['.repeat(100_000)}${']'.repeat(100_000)}\n`)
    expectRefused(await ts(['plan', '--infra', 'hostile']), 2, /taskservs\.yaml is nested too deeply/)
    extension('deep-one', `name: deep-one\nkind: taskserv\nversion: 1.0.0\nsettings: ${'['.repeat(100_000)}${']'.repeat(100_000)}\n`)
    expectRefused(await ts(['plan', 'hello'], one()), 2, /manifest\.yaml is nested too deeply/)
    rmSync(join(ws.path, 'extensions', 'taskservs', 'deep-one'), { recursive: true })
  })

  it('a variable name in taskservs.env that no shell can hold: exit 3', async () => {
    const r = await runCli('prov-taskserv', ['install', 'hello', '--check'], {
      env: { ...env(), 'PROV_TASKSERVS__ENV__HTTP-PROXY': 'x' },
      input: one(),
      cwd: ws.path,
    })
    expectRefused(r, 3, /invalid variable name '.*' in taskservs\.env/)
  })
})

describe('generate', () => {
  it('scaffolds a taskserv into the workspace layer, which then lists', async () => {
    const r = await ts(['generate', 'myapp', '-o', 'json'])
    expect(r.code, r.stderr).toBe(0)
    expect(r.json().files.some((f: string) => f.endsWith('install.sh'))).toBe(true)
    const list = (await ts(['list', '-o', 'json'])).json<{ name: string; layer: string }[]>()
    expect(list.find((e) => e.name === 'myapp')?.layer).toBe('workspace')
    const again = await ts(['generate', 'myapp'])
    expect(again.code).toBe(2)
    expect(again.stderr).toMatch(/myapp already exists/)
    const bad = await ts(['generate', 'Bad Name'])
    expect(bad.code).toBe(2)
    expect(bad.stderr).toMatch(/invalid taskserv name 'Bad Name'/)
  })

  it('never writes through a symlink that points out of the taskservs folder (exit 4, nothing written)', async () => {
    const outside = mkdtempSync(join(tmpdir(), 'prov-ts-outside-'))
    try {
      const parent = join(ws.path, 'extensions', 'taskservs')
      mkdirSync(parent, { recursive: true })
      symlinkSync(outside, join(parent, 'linked'))
      const r = await ts(['generate', 'linked'])
      expect(r.code, r.stderr).toBe(4)
      expect(r.stderr).toMatch(/refusing a path outside/)
      expect(r.stderr.trim().split('\n')).toHaveLength(1)
      symlinkSync(join(outside, 'later'), join(parent, 'dangling'))
      const dangling = await ts(['generate', 'dangling'])
      expect(dangling.code, dangling.stderr).toBe(2)
      expect(dangling.stderr).toMatch(/dangling already exists/)
      expect(existsSync(join(outside, 'later'))).toBe(false)
      expect(readdirSync(outside)).toEqual([])
    } finally {
      for (const link of ['linked', 'dangling']) rmSync(join(ws.path, 'extensions', 'taskservs', link), { force: true })
      rmSync(outside, { recursive: true, force: true })
    }
  })
})
