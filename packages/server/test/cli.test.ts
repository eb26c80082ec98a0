import { spawnSync } from 'node:child_process'
import { chmodSync, existsSync, mkdirSync, readdirSync, readFileSync, statSync, writeFileSync } from 'node:fs'
import { join } from 'node:path'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { binDirRunnableBy, nodeRunnableBy } from '../../../tests/helpers/checkout'
import { runCli } from '../../../tests/helpers/cli'
import { prerequisitesMet, root } from '../../../tests/helpers/prerequisites'
import { freePort, type LoopbackSshd } from './helpers/sshd'
import { type CliCall, type ServerTestWorkspace, serverTestWorkspace } from './helpers/workspace'

// No sandboxes here: bad input, the ssh provider against a real loopback sshd, a workspace
// provider loaded with jiti. Runs beside local.e2e.test.ts without touching its bridge.
// The non-root test runs the CLI as nobody, from a copy of the checkout nobody can read when this
// one is not (a clone under /root); it needs root to switch users.
const nobodyCanRun = prerequisitesMet('running prov as nobody', [root])

let ws: ServerTestWorkspace
let sshd: LoopbackSshd
const cli = (args: string[], options: CliCall = {}) => ws.cli(args, options)
const writeInfra = (name: string, text: string) => ws.writeInfra(name, text)

beforeAll(async () => {
  // Its own subnet/bridge in case anything here ever reached the local provider.
  ws = await serverTestWorkspace('clitest', '10.213.1.0/24', 'provt1')
  sshd = ws.sshd
})

afterAll(async () => {
  await ws?.dispose()
})

describe('prov-server basics', () => {
  it('--version and list on an empty workspace', async () => {
    expect((await cli(['--version'])).stdout.trim()).toMatch(/^\d+\.\d+\.\d+/)
    const list = await cli(['list'])
    expect(list.code, list.stderr).toBe(0)
    expect(list.json()).toEqual([])
  })

  it('providers lists the bundled local and ssh providers', async () => {
    const result = await cli(['providers', '--out', 'json'])
    expect(result.code, result.stderr).toBe(0)
    const names = (result.json() as { name: string }[]).map((p) => p.name)
    expect(names).toEqual(expect.arrayContaining(['local', 'ssh']))
    const plans = await cli(['plans', '--provider', 'local', '--out', 'json'])
    expect((plans.json() as { name: string }[]).map((p) => p.name)).toContain('small')
    expect((await cli(['zones', '--out', 'json'])).json()).toEqual([
      { schema: 'prov.server.zone/v1', provider: 'local', name: 'local', description: 'this machine' },
    ])
    expect((await cli(['price', 'small', '--out', 'json'])).json()[0]).toMatchObject({ plan: 'small', monthly: 0 })
  })
})

describe('servers.yaml validation (exit 3, file:line, nothing changed)', () => {
  const cases: [string, string, RegExp][] = [
    ['malformed', 'servers:\n  - name: a\n    cores: [1,\n', /servers\.yaml:\d+/],
    ['wrongtype', 'servers:\n  - name: a\n    provider: local\n    cores: two\n', /infra\/wrongtype\/servers\.yaml:4.*|cores.*servers\.yaml:4/],
    ['unknownfield', 'servers:\n  - name: a\n    coers: 2\n', /unknown field.*servers\.yaml:3.*did you mean 'cores'/],
    ['dupes', 'servers:\n  - name: a\n  - name: b\n  - name: a\n', /duplicate server name 'a'.*servers\.yaml:4/],
    [
      'collide',
      'servers:\n  - name: a\n    provider: ssh\n    address: 192.0.2.7\n  - name: b\n    provider: ssh\n    address: 192.0.2.7\n',
      /address 192\.0\.2\.7 of server 'b' collides with server 'a'.*servers\.yaml:7/,
    ],
    ['badprovider', 'servers:\n  - name: a\n    provider: locl\n', /unknown provider 'locl'.*servers\.yaml:3.*did you mean 'local'/],
    // A name every object inherits is not a bundled provider.
    ['protoprovider', 'servers:\n  - name: a\n    provider: constructor\n', /unknown provider 'constructor'.*servers\.yaml:3/],
    ['badname', 'servers:\n  - name: Bad_Name\n', /name.*servers\.yaml:2/],
    ['notalist', 'servers: web-01\n', /servers/],
    ['sshnoaddress', 'servers:\n  - name: a\n    provider: ssh\n', /needs an address.*servers\.yaml:2/],
  ]
  for (const [name, text, message] of cases) {
    it(`${name}`, async () => {
      writeInfra(name, text)
      const result = await cli(['plan', '--infra', name])
      expect(result.code, result.stderr).toBe(3)
      expect(result.stdout).toBe('')
      expect(result.stderr.trim().split('\n')).toHaveLength(1)
      expect(result.stderr).toMatch(message)
      expect(existsSync(join(ws.path, '.prov/servers.json'))).toBe(false)
    })
  }

  it('an unknown infra exits 5; no --infra/-f exits 2', async () => {
    const unknown = await cli(['plan', '--infra', 'dem'])
    expect(unknown.code).toBe(5)
    expect(unknown.stderr).toMatch(/did you mean 'demo'/)
    expect((await cli(['plan'])).code).toBe(2)
  })

  it('mixed providers plan side by side', async () => {
    writeInfra(
      'mixed',
      `servers:\n  - name: m-local\n    provider: local\n  - name: m-byo\n    provider: ssh\n    address: 127.0.0.1\n    ssh: { port: ${sshd.port} }\n`,
    )
    const plan = await cli(['plan', '--infra', 'mixed', '--out', 'json'])
    expect(plan.code, plan.stderr).toBe(0)
    expect((plan.json().actions as { provider: string }[]).map((a) => a.provider).sort()).toEqual(['local', 'ssh'])
  })
})

describe('apply refuses bad plans (exit 2, nothing changed)', () => {
  it('malformed JSON, wrong schema id, no plan, bad action', async () => {
    const malformed = await cli(['apply', '--yes'], { input: '{"schema": "prov.server.plan/v1", ' })
    expect(malformed.code).toBe(2)
    const wrong = await cli(['apply', '--yes'], { input: JSON.stringify({ schema: 'prov.taskserv.plan/v1', actions: [], state_fingerprint: 'x' }) })
    expect(wrong.code).toBe(2)
    expect(wrong.stderr).toMatch(/expected prov\.server\.plan\/v1/)
    expect((await cli(['apply', '--yes'])).code).toBe(2)
    const badAction = await cli(['apply', '--yes'], {
      input: JSON.stringify({ schema: 'prov.server.plan/v1', workspace: ws.path, state_fingerprint: 'x', actions: [{ action: 'creat', server: 'a' }] }),
    })
    expect(badAction.code).toBe(2)
    expect(badAction.stderr).toMatch(/did you mean 'create'/)
    expect(existsSync(join(ws.path, '.prov/servers.json'))).toBe(false)
  })

  it('refuses without --yes when stdin is not a terminal', async () => {
    writeInfra('byo', `servers:\n  - name: byo-01\n    provider: ssh\n    address: 127.0.0.1\n    ssh: { port: ${sshd.port} }\n`)
    const plan = await cli(['plan', '--infra', 'byo', '-q'])
    const refused = await cli(['apply'], { input: plan.stdout })
    expect(refused.code).toBe(2)
    expect(refused.stderr).toMatch(/without --yes/)
    expect(existsSync(join(ws.path, '.prov/servers.json'))).toBe(false)
  })
})

describe('ssh provider against a real sshd', () => {
  it('plan | apply creates a server: host key pinned, exec works', async () => {
    const plan = await cli(['plan', '--infra', 'byo', '-q'])
    const applied = await cli(['apply', '--yes', '--out', 'ndjson'], { input: plan.stdout })
    expect(applied.code, applied.stderr).toBe(0)
    expect(applied.lines()[0]).toMatchObject({ schema: 'prov.server/v1', name: 'byo-01', provider: 'ssh', status: 'running', ip_address: '127.0.0.1' })
    expect(readFileSync(join(ws.path, '.prov/known_hosts'), 'utf8')).toContain(
      `[127.0.0.1]:${sshd.port} ${sshd.hostPublicKey.split(' ').slice(0, 2).join(' ')}`,
    )
    const exec = await cli(['exec', 'byo-01', '--out', 'json', '--', 'whoami'])
    expect(exec.code, exec.stderr).toBe(0)
    expect(exec.json()[0]).toMatchObject({ schema: 'prov.server.exec/v1', server: 'byo-01', exit_code: 0, stdout: 'root\n' })
    const failing = await cli(['exec', 'byo-01', '--out', 'json', '--', 'exit 3'])
    expect(failing.code).toBe(1)
    expect(failing.json()[0].exit_code).toBe(3)
    const ssh = await cli(['ssh', 'byo-01', '--', 'echo', 'via-system-ssh'])
    expect(ssh.code, ssh.stderr).toBe(0)
    expect(ssh.stdout.trim()).toBe('via-system-ssh')
    const again = await cli(['plan', '--infra', 'byo', '--out', 'json'])
    expect(again.json().summary).toMatchObject({ keep: 1, create: 0 })
  })

  it('records piped from list select exec targets; wrong records exit 2', async () => {
    const list = await cli(['list', '--out', 'json'])
    const exec = await runCli('prov-server', ['exec', '--out', 'ndjson', '--', 'echo ok'], { env: ws.env, cwd: ws.path, input: list.stdout })
    expect(exec.code, exec.stderr).toBe(0)
    expect(exec.lines()).toHaveLength(1)
    const wrong = await runCli('prov-server', ['exec', '--', 'true'], { env: ws.env, cwd: ws.path, input: '{"schema":"prov.taskserv.result/v1"}' })
    expect(wrong.code).toBe(2)
    const garbage = await runCli('prov-server', ['exec', '--', 'true'], { env: ws.env, cwd: ws.path, input: '{not json' })
    expect(garbage.code).toBe(2)
  })

  it('a stale plan is refused with a hint to plan again', async () => {
    writeInfra('byo2', `servers:\n  - name: byo-02\n    provider: ssh\n    address: localhost\n    ssh: { port: ${sshd.port} }\n`)
    const plan = await cli(['plan', '--infra', 'byo2', '-q'])
    const created = await cli(['create', 'byo-02', '--infra', 'byo2', '-q'])
    expect(created.code, created.stderr).toBe(0)
    const stale = await cli(['apply', '--yes'], { input: plan.stdout })
    expect(stale.code).toBe(2)
    expect(stale.stderr).toMatch(/stale.*prov-server plan --infra byo2/)
    expect((await cli(['delete', 'byo-02', '--yes', '-q'])).code).toBe(0)
  })

  it('unreachable host: clear timeout error, nothing recorded', async () => {
    const port = await freePort()
    const result = await cli(['create', 'gone-01', '--provider', 'ssh', '--address', '127.0.0.1', '--port', String(port)], {
      env: { PROV_SSH__CONNECT_TIMEOUT: '2' },
    })
    expect(result.code).toBe(1)
    expect(result.stderr).toMatch(/timed out after 2 s waiting for SSH on 127\.0\.0\.1:\d+/)
    expect((await cli(['list', '--out', 'json'])).json().map((s: { name: string }) => s.name)).not.toContain('gone-01')
  })

  it('delete only forgets the host; unknown names exit 5 with a hint', async () => {
    const unknown = await cli(['delete', 'byo-1', '--yes'])
    expect(unknown.code).toBe(5)
    expect(unknown.stderr).toMatch(/did you mean 'byo-01'/)
    const info = await cli(['info', 'byo-01', '--out', 'json'])
    expect(info.json()).toMatchObject({ name: 'byo-01', provider_info: { address: '127.0.0.1' } })
    const stop = await cli(['stop', 'byo-01', '--yes'])
    expect(stop.code).toBe(1)
    const deleted = await cli(['delete', 'byo-01', '--yes', '--out', 'json'])
    expect(deleted.code, deleted.stderr).toBe(0)
    expect(readFileSync(join(ws.path, '.prov/known_hosts'), 'utf8')).not.toContain(`[127.0.0.1]:${sshd.port}`)
    expect((await cli(['list', '--out', 'json'])).json()).toEqual([])
    const refused = await cli(['delete', 'byo-01'], { input: '' })
    expect(refused.code).toBe(5)
  })
})

describe('other bad input', () => {
  it('flags and names', async () => {
    expect((await cli(['list', '--status', 'runing'])).code).toBe(2)
    expect((await cli(['list', '--bogus'])).code).toBe(2)
    expect((await cli(['exec', 'all'])).code).toBe(2)
    expect((await cli(['create', 'Bad_Name', '--provider', 'ssh', '--address', 'x'])).code).toBe(2)
    const unknownProvider = await cli(['create', 'x1', '--provider', 'sssh', '--address', '127.0.0.1'])
    expect(unknownProvider.code).toBe(2)
    expect(unknownProvider.stderr).toMatch(/did you mean 'ssh'/)
    expect((await cli(['info', 'nope'])).code).toBe(5)
    expect((await cli(['create', 'undeclared'])).code).toBe(3)
  })

  it.skipIf(!nobodyCanRun)('the local provider without root: exit 4, clear message, nothing changed', async () => {
    for (const dir of [ws.root, ws.path, join(ws.root, 'xdg'), join(ws.root, 'xdg', 'prov')]) if (existsSync(dir)) chmodSync(dir, 0o755)
    // State files are the owner's (0600): opened up here so that the run reaches the provider's root check.
    const state = join(ws.path, '.prov')
    if (existsSync(state)) for (const file of readdirSync(state)) if (statSync(join(state, file)).isFile()) chmodSync(join(state, file), 0o644)
    const result = spawnSync(nodeRunnableBy(65534), [join(binDirRunnableBy(65534), 'prov-server'), 'create', 'web-01', '--infra', 'demo'], {
      env: { ...process.env, ...ws.env, HOME: '/tmp' } as NodeJS.ProcessEnv,
      cwd: '/tmp',
      uid: 65534,
      gid: 65534,
      encoding: 'utf8',
      input: '',
    })
    expect(result.status, result.stderr).toBe(4)
    expect(result.stderr).toMatch(/local provider needs root/)
    expect(existsSync(join(ws.path, '.prov/local'))).toBe(false)
  })
})

describe('a workspace provider in TypeScript (jiti)', () => {
  it('is listed, validated and used', async () => {
    const dir = join(ws.path, 'extensions/providers/fake')
    mkdirSync(dir, { recursive: true })
    writeFileSync(join(dir, 'manifest.yaml'), 'name: fake\nkind: provider\nversion: 0.1.0\ndescription: test double\n')
    writeFileSync(
      join(dir, 'index.ts'),
      `const provider = {
  name: 'fake',
  capabilities: { start_stop: true, keep_storage: false, plans: true, zones: true, price: true, root: false },
  validateConfig: (): string[] => [],
  async list(_ctx: unknown, records: unknown[]) { return records },
  async create(ctx: any, spec: any, record: any) {
    const created = { ...record, status: 'running', ip_address: '192.0.2.10', zone: spec.zone ?? 'nowhere' }
    await ctx.save(created, { made_by: 'fake' })
    return created
  },
  async delete() {},
  async start(_ctx: unknown, record: any) { return { ...record, status: 'running' } },
  async stop(_ctx: any, record: any) { const stopped = { ...record, status: 'stopped' }; await _ctx.save(stopped); return stopped },
  async info() { return { fake: true } },
  async plans() { return [{ name: 'tiny', cores: 1, memory_mb: 256, disk_gb: 1 }] },
  async zones() { return [{ name: 'nowhere' }] },
  async price(_ctx: unknown, plan: string) { return { plan, zone: null, currency: 'EUR', hourly: 0.01, monthly: 7 } },
}
export default provider
`,
    )
    const providers = await cli(['providers', '--out', 'json'])
    expect(providers.code, providers.stderr).toBe(0)
    expect(providers.json().find((p: { name: string }) => p.name === 'fake')).toMatchObject({ layer: 'workspace', version: '0.1.0' })
    expect((await cli(['price', '--provider', 'fake', '--out', 'json'])).json()[0]).toMatchObject({ plan: 'tiny', monthly: 7 })
    const created = await cli(['create', 'f-01', '--provider', 'fake', '--out', 'json'])
    expect(created.code, created.stderr).toBe(0)
    expect(created.json()[0]).toMatchObject({ name: 'f-01', provider: 'fake', status: 'running', ip_address: '192.0.2.10' })
    expect((await cli(['stop', 'f-01', '--yes', '--out', 'json'])).json()[0].status).toBe('stopped')
    expect((await cli(['list', '--status', 'stopped', '--out', 'json'])).json()).toHaveLength(1)
    expect((await cli(['delete', 'f-01', '--yes', '-q'])).code).toBe(0)
    // Concurrent create commands in one workspace never lose a server (state lock).
    const names = Array.from({ length: 6 }, (_, i) => `c-0${i}`)
    const results = await Promise.all(names.map((name) => cli(['create', name, '--provider', 'fake', '-q'])))
    for (const r of results) expect(r.code, r.stderr).toBe(0)
    expect((await cli(['list', '--provider', 'fake', '--out', 'json'])).json().map((s: { name: string }) => s.name)).toEqual(names)
    expect((await cli(['delete', ...names, '--yes', '-q'])).code).toBe(0)
    writeFileSync(join(dir, 'index.ts'), 'export default { name: "fake" }\n')
    const broken = await cli(['plans', '--provider', 'fake'])
    expect(broken.code).toBe(3)
    expect(broken.stderr).toMatch(/does not implement/)
  })
})
