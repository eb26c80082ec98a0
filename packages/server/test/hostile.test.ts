import { existsSync, mkdirSync, readdirSync, readFileSync, writeFileSync } from 'node:fs'
import { join } from 'node:path'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { freePort, type LoopbackSshd } from './helpers/sshd'
import { type CliCall, type ServerTestWorkspace, serverTestWorkspace, treeHash } from './helpers/workspace'

// Hostile input to prov-server: hand-edited plans, addresses that look like options, power
// actions from a pipe, huge outputs, stopped servers. No sandboxes are made: everything that
// passes runs against the ssh provider (a real loopback sshd) or a workspace provider.

let ws: ServerTestWorkspace
let sshd: LoopbackSshd
const cli = (args: string[], options: CliCall = {}) => ws.cli(args, options)

const stateFile = () => join(ws.path, '.prov/servers.json')
const state = () => (existsSync(stateFile()) ? readFileSync(stateFile(), 'utf8') : '(none)')
const oneErrorLine = (stderr: string) => {
  const lines = stderr.trim().split('\n')
  expect(lines, stderr).toHaveLength(1)
  expect(lines[0]).toMatch(/^prov-server: error: /)
  return lines[0]
}

const fakeProvider = `const provider = {
  name: 'fake',
  capabilities: { start_stop: true, keep_storage: false, plans: false, zones: false, price: false, root: false },
  validateConfig: (): string[] => [],
  async list(_ctx: unknown, records: unknown[]) { return records },
  async create(ctx: any, _spec: any, record: any) { const made = { ...record, status: 'running', ip_address: '192.0.2.10' }; await ctx.save(made); return made },
  async delete() {},
  async start(ctx: any, record: any) { const up = { ...record, status: 'running' }; await ctx.save(up); return up },
  async stop(ctx: any, record: any) { const down = { ...record, status: 'stopped' }; await ctx.save(down); return down },
  async info() { return {} },
  async plans() { return [] },
  async zones() { return [] },
  async price() { return null },
}
export default provider
`

beforeAll(async () => {
  // Its own subnet and bridge: should a bug ever let a local server through, it clashes with nobody.
  ws = await serverTestWorkspace('hostile', '10.213.9.0/24', 'provt9')
  sshd = ws.sshd
  const dir = join(ws.path, 'extensions/providers/fake')
  mkdirSync(dir, { recursive: true })
  writeFileSync(join(dir, 'manifest.yaml'), 'name: fake\nkind: provider\nversion: 0.1.0\ndescription: test double\n')
  writeFileSync(join(dir, 'index.ts'), fakeProvider)
  ws.writeInfra('byo', `servers:\n  - name: byo-01\n    provider: ssh\n    address: 127.0.0.1\n    ssh: { port: ${sshd.port} }\n`)
})

afterAll(async () => {
  await ws?.dispose()
})

const planOf = async (infra: string) => {
  const plan = await cli(['plan', '--infra', infra, '-q'])
  expect(plan.code, plan.stderr).toBe(0)
  return plan.json() as { actions: Record<string, any>[]; summary: Record<string, number>; [key: string]: unknown }
}

describe('plans are untrusted input', () => {
  it('a name that climbs out of the workspace is refused as a whole; nothing outside is touched', async () => {
    const sibling = join(ws.root, 'sibling')
    mkdirSync(join(sibling, 'inner'), { recursive: true })
    writeFileSync(join(sibling, 'inner', 'keep.txt'), 'precious\n')
    const before = treeHash(sibling)
    const probe = `prov-probe-${process.pid}`
    const base = await planOf('demo')
    const variants: [string, (plan: typeof base) => void][] = [
      ['server and spec name', (p) => Object.assign(p.actions[0], { server: `../../../${probe}`, spec: { ...p.actions[0].spec, name: `../../../${probe}` } })],
      ['spec name only', (p) => Object.assign(p.actions[0].spec, { name: `../../${probe}` })],
      ['a delete', (p) => p.actions.unshift({ action: 'delete', server: '../../sibling', provider: 'local', reason: 'x' })],
      ['an absolute name', (p) => Object.assign(p.actions[1], { server: `/run/${probe}`, spec: { ...p.actions[1].spec, name: `/run/${probe}` } })],
      ['the infra', (p) => Object.assign(p.actions[2].spec, { infra: '../..' })],
    ]
    for (const [what, edit] of variants) {
      const plan = structuredClone(base)
      edit(plan)
      const result = await cli(['apply', '--yes'], { input: JSON.stringify(plan) })
      expect(result.code, `${what}: ${result.stderr}`).toBe(2)
      expect(result.stdout, what).toBe('')
      expect(oneErrorLine(result.stderr), what).toMatch(/(name|infra|server).*(at stdin\.actions\[\d\])/)
    }
    expect(treeHash(sibling)).toBe(before)
    for (const dir of ['/', '/run', '/run/prov', '/run/prov/local', ws.root, ws.path]) {
      const found = existsSync(dir) ? readdirSync(dir).filter((e) => e.includes(probe)) : []
      expect(found, dir).toEqual([])
    }
    expect(existsSync(stateFile())).toBe(false)
    expect(existsSync(join(ws.path, '.prov/local'))).toBe(false)
  })

  it('deleting a server that is not in state is exit 5, before anything runs', async () => {
    const plan = await planOf('byo')
    plan.actions.push({ action: 'delete', server: 'ghost-01', provider: 'ssh', reason: 'not in servers.yaml any more' })
    plan.summary.delete++
    const result = await cli(['apply', '--yes'], { input: JSON.stringify(plan) })
    expect(result.code, result.stderr).toBe(5)
    expect(oneErrorLine(result.stderr)).toMatch(/cannot delete server 'ghost-01': it does not exist/)
    expect(result.stdout).not.toMatch(/deleted/)
    expect(existsSync(stateFile())).toBe(false)
  })

  it('a plan changed after planning is refused; the plan as made applies', async () => {
    const plan = await planOf('byo')
    const edits: [string, (p: typeof plan) => void][] = [
      ['a label', (p) => Object.assign(p.actions[0].spec.labels, { role: 'db' })],
      ['the reason', (p) => Object.assign(p.actions[0], { reason: 'trust me' })],
      ['the port', (p) => Object.assign(p.actions[0].spec.ssh, { port: 2222 })],
      ['the creation time', (p) => Object.assign(p, { created_at: new Date(0).toISOString() })],
    ]
    for (const [what, edit] of edits) {
      const tampered = structuredClone(plan)
      edit(tampered)
      const result = await cli(['apply', '--yes'], { input: JSON.stringify(tampered) })
      expect(result.code, what).toBe(2)
      expect(oneErrorLine(result.stderr), what).toMatch(/plan is stale or was altered/)
      expect(existsSync(stateFile()), what).toBe(false)
    }
    const applied = await cli(['apply', '--yes', '--out', 'json'], { input: JSON.stringify(plan) })
    expect(applied.code, applied.stderr).toBe(0)
    expect(applied.json()).toMatchObject([{ name: 'byo-01', status: 'running', action: 'create' }])
  })

  it('malformed actions are refused naming the field (exit 2)', async () => {
    ws.writeInfra('byo3', `servers:\n  - name: byo-03\n    provider: ssh\n    address: localhost\n    ssh: { port: ${sshd.port} }\n`)
    const plan = await planOf('byo3')
    const before = state()
    const cases: [string, (p: typeof plan) => void, RegExp][] = [
      ['unknown spec field', (p) => Object.assign(p.actions[0].spec, { command: 'x' }), /unknown field 'command'/],
      ['spec for another server', (p) => Object.assign(p.actions[0].spec, { name: 'byo-01' }), /its spec is for ssh server 'byo-01'/],
      ['unknown provider', (p) => Object.assign(p.actions[0], { provider: 'sshh', spec: { ...p.actions[0].spec, provider: 'sshh' } }), /did you mean 'ssh'/],
      ['a delete with a spec', (p) => Object.assign(p.actions[0], { action: 'delete' }), /may not carry a spec/],
      ['prototype key in options', (p) => Object.assign(p.actions[0].spec, { options: JSON.parse('{"__proto__": {"polluted": true}}') }), /'__proto__'/],
      ['deep options', (p) => Object.assign(p.actions[0].spec, { options: JSON.parse(`${'{"a":'.repeat(60)}1${'}'.repeat(60)}`) }), /nested more than/],
      ['negative cores', (p) => Object.assign(p.actions[0].spec, { cores: -1 }), /cores/],
      ['the same server twice', (p) => p.actions.push(structuredClone(p.actions[0])), /already has action 1/],
      ['a wrong summary', (p) => Object.assign(p.summary, { create: 7 }), /summary says 7 create/],
      ['unknown top-level field', (p) => Object.assign(p, { extra: 1 }), /unknown field 'extra'/],
      ['an address taken by another server', (p) => Object.assign(p.actions[0].spec, { address: '127.0.0.1' }), /collides with existing server 'byo-01'/],
    ]
    for (const [what, edit, message] of cases) {
      const bad = structuredClone(plan)
      edit(bad)
      const result = await cli(['apply', '--yes'], { input: JSON.stringify(bad) })
      expect(result.code, `${what}: ${result.stderr}`).toBe(2)
      expect(oneErrorLine(result.stderr), what).toMatch(message)
      expect(state(), what).toBe(before)
    }
    expect(({} as Record<string, unknown>).polluted).toBeUndefined()
  })

  it('a plan with nothing to do prints [] (and --check previews the plan)', async () => {
    const plan = await planOf('byo')
    expect(plan.summary).toMatchObject({ keep: 1, create: 0 })
    const applied = await cli(['apply', '--yes'], { input: JSON.stringify(plan) })
    expect(applied.code, applied.stderr).toBe(0)
    expect(applied.json()).toEqual([])
    const checked = await cli(['apply', '--check'], { input: JSON.stringify(plan) })
    expect(checked.code, checked.stderr).toBe(0)
    expect(checked.json()).toMatchObject({ schema: 'prov.server.plan/v1' })
  })
})

describe('addresses and login names never become options', () => {
  const marker = () => join(ws.root, 'proxy-command-ran')
  const hostile = () => `-oProxyCommand=touch ${marker()}`

  it('servers.yaml: exit 2 naming file:line', async () => {
    ws.writeInfra('evil', `servers:\n  - name: evil-01\n    provider: ssh\n    address: "${hostile()}"\n`)
    const address = await cli(['plan', '--infra', 'evil'])
    expect(address.code, address.stderr).toBe(2)
    expect(oneErrorLine(address.stderr)).toMatch(/is not an IP address or host name.*infra\/evil\/servers\.yaml:4/)
    ws.writeInfra('evil', `servers:\n  - name: evil-01\n    provider: ssh\n    address: 127.0.0.1\n    ssh: { user: "${hostile()}" }\n`)
    const user = await cli(['plan', '--infra', 'evil'])
    expect(user.code, user.stderr).toBe(2)
    expect(oneErrorLine(user.stderr)).toMatch(/is not a login name.*servers\.yaml:5/)
    for (const bad of ['192.0.2', 'host name', 'a..b', '-x']) {
      ws.writeInfra('evil', `servers:\n  - name: evil-01\n    provider: ssh\n    address: "${bad}"\n`)
      expect((await cli(['plan', '--infra', 'evil'])).code, bad).toBe(2)
    }
  })

  it('create flags, piped records and hand-edited state: exit 2, no connection', async () => {
    // `--address -o...` is refused as a flag without a value; `--address=-o...` reaches the address check.
    const spaced = await cli(['create', 'evil-02', '--provider', 'ssh', '--address', hostile()])
    expect(spaced.code, spaced.stderr).toBe(2)
    const created = await cli(['create', 'evil-02', '--provider', 'ssh', `--address=${hostile()}`])
    expect(created.code, created.stderr).toBe(2)
    expect(oneErrorLine(created.stderr)).toMatch(/is not an IP address or host name .*\(at --address\)/)
    const user = await cli(['create', 'evil-02', '--provider', 'ssh', '--address', '127.0.0.1', `--user=${hostile()}`])
    expect(user.code, user.stderr).toBe(2)
    expect(oneErrorLine(user.stderr)).toMatch(/is not a login name/)
    const [record] = (await cli(['list', '--out', 'json'])).json()
    const piped = await cli(['exec', '--', 'true'], { input: JSON.stringify([{ ...record, ip_address: hostile() }]) })
    expect(piped.code, piped.stderr).toBe(2)
    expect(oneErrorLine(piped.stderr)).toMatch(/ip_address.*is not an IP address or host name/)

    const original = readFileSync(stateFile(), 'utf8')
    const edited = JSON.parse(original)
    edited.servers['byo-01'].ip_address = hostile()
    writeFileSync(stateFile(), JSON.stringify(edited))
    try {
      const exec = await cli(['exec', 'byo-01', '--out', 'json', '--', 'true'])
      expect(exec.code, exec.stderr).toBe(2)
      expect(exec.json()[0].error).toMatch(/refusing to connect to server byo-01/)
      const ssh = await cli(['ssh', 'byo-01', '--', 'true'])
      expect(ssh.code, ssh.stderr).toBe(2)
      expect(oneErrorLine(ssh.stderr)).toMatch(/refusing to connect to server byo-01/)
    } finally {
      writeFileSync(stateFile(), original)
    }
    expect(existsSync(marker())).toBe(false)
  })
})

describe('power actions confirm like delete', () => {
  it('stop/start/restart refuse without --yes off a TTY (exit 2) and change nothing', async () => {
    const made = await cli(['create', 'f-01', 'f-02', '--provider', 'fake', '-q'])
    expect(made.code, made.stderr).toBe(0)
    const before = state()
    for (const action of ['stop', 'start', 'restart']) {
      const named = await cli([action, 'f-01'])
      expect(named.code, `${action}: ${named.stderr}`).toBe(2)
      expect(oneErrorLine(named.stderr)).toMatch(new RegExp(`refusing to ${action} servers without --yes`))
      const all = await cli([action, 'all'])
      expect(all.code, action).toBe(2)
      const list = await cli(['list', '--provider', 'fake', '--out', 'json'])
      const piped = await cli([action], { input: list.stdout })
      expect(piped.code, action).toBe(2)
      expect(piped.stdout).toBe('')
      const checked = await cli([action, 'f-01', '--check', '--out', 'json'])
      expect(checked.code, action).toBe(0)
      expect(checked.json()).toMatchObject({ schema: 'prov.server.plan/v1', actions: [{ server: 'f-01', reason: action }] })
      expect(state(), action).toBe(before)
    }
    const stopped = await cli(['stop', 'f-01', '--yes', '--out', 'json'])
    expect(stopped.code, stopped.stderr).toBe(0)
    expect(stopped.json()).toMatchObject([{ name: 'f-01', status: 'stopped', action: 'stop' }])
  })
})

describe('exec', () => {
  it('on a stopped server fails at once: exit 1, "server is stopped", a record all the same', async () => {
    const result = await cli(['exec', 'f-01', '--out', 'json', '--', 'true'])
    expect(result.code, result.stderr).toBe(1)
    expect(result.json()).toMatchObject([{ schema: 'prov.server.exec/v1', server: 'f-01', exit_code: -1, error: 'server is stopped' }])
    expect(result.stderr).toMatch(/f-01: server is stopped/)
    const ssh = await cli(['ssh', 'f-01', '--', 'true'])
    expect(ssh.code).toBe(1)
    expect(oneErrorLine(ssh.stderr)).toMatch(/server is stopped.*hint: prov-server start f-01/)
  })

  it('output past --max-output is dropped, flagged and announced; the record still comes', async () => {
    const big = await cli(['exec', 'byo-01', '--max-output', '1M', '--out', 'json', '--', 'head -c 30000000 /dev/zero | tr "\\0" x'])
    expect(big.code, big.stderr).toBe(0)
    const [record] = big.json()
    expect(record).toMatchObject({ server: 'byo-01', exit_code: 0, stdout_truncated: true, stdout_bytes: 30_000_000 })
    expect(record.stdout).toBe('x'.repeat(1 << 20))
    expect(big.stderr).toMatch(/byo-01: stdout was 28\.6 MiB; kept the first 1 MiB/)
    const small = await cli(['exec', 'byo-01', '--out', 'json', '--', 'printf ok'])
    expect(small.json()[0]).toEqual(expect.not.objectContaining({ stdout_truncated: expect.anything() }))
    expect((await cli(['exec', 'byo-01', '--max-output', 'lots', '--', 'true'])).code).toBe(2)
  })

  it('failing on every server is exit 1 (partial needs a success)', async () => {
    const created = await cli(['apply', '--yes', '-q'], { input: JSON.stringify(await planOf('byo3')) })
    expect(created.code, created.stderr).toBe(0)
    const failing = await cli(['exec', 'byo-01', 'byo-03', '--out', 'json', '--', 'false'])
    expect(failing.code, failing.stderr).toBe(1)
    expect(failing.json().map((r: { exit_code: number }) => r.exit_code)).toEqual([1, 1])
    const mixed = await cli(['exec', 'byo-01', 'f-01', '--out', 'json', '--', 'true'])
    expect(mixed.code, mixed.stderr).toBe(6)
  })
})

describe('create failures print the contract line', () => {
  it('text: one line with where and a hint; json: code and kind', async () => {
    const port = await freePort()
    const args = ['create', 'gone-01', '--provider', 'ssh', '--address', '127.0.0.1', '--port', String(port)]
    const text = await cli(args, { env: { PROV_SSH__CONNECT_TIMEOUT: '1' } })
    expect(text.code).toBe(1)
    expect(oneErrorLine(text.stderr)).toMatch(
      new RegExp(
        `^prov-server: error: create gone-01: timed out after 1 s waiting for SSH on 127\\.0\\.0\\.1:${port} .*\\(at 127\\.0\\.0\\.1:${port}\\); hint: `,
      ),
    )
    const json = await cli([...args, '--log-format', 'json'], { env: { PROV_SSH__CONNECT_TIMEOUT: '1' } })
    expect(json.code).toBe(1)
    const lines = json.stderr
      .trim()
      .split('\n')
      .map((line) => JSON.parse(line))
    const error = lines.find((l) => l.level === 'error')
    expect(error).toMatchObject({ code: 1, kind: 'failed', location: `127.0.0.1:${port}`, message: expect.stringMatching(/^create gone-01: timed out/) })
    expect(error.hint).toBeTruthy()
  })
})

describe('provider configuration is checked by the configuration schema', () => {
  it('a bridge name sandboxes cannot derive names from is exit 3 naming the key; nothing changes', async () => {
    const before = treeHash(ws.path)
    for (const bridge of ['bad name!', 'a-very-long-bridge', '../x']) {
      for (const args of [['providers'], ['plan', '--infra', 'byo', '-q'], ['create', 'cfg-01', '--provider', 'local', '--check']]) {
        const r = await cli(args, { env: { PROV_PROVIDERS__LOCAL__BRIDGE: bridge } })
        expect(r.code, `${args.join(' ')} ${bridge}: ${r.stderr}`).toBe(3)
        expect(oneErrorLine(r.stderr)).toMatch(/providers\.local\.bridge.*1-12 letters, digits, - or _/)
        expect(r.stdout).toBe('')
      }
    }
    expect(treeHash(ws.path)).toBe(before)
  })
})
