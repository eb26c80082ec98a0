import { spawn, spawnSync } from 'node:child_process'
import { existsSync, readFileSync, writeFileSync } from 'node:fs'
import { join } from 'node:path'
import { setTimeout as sleep } from 'node:timers/promises'
import { afterAll, beforeAll, expect, it } from 'vitest'
import { binDir, runCli, tempWorkspace } from '../../../tests/helpers/cli'
import { nuPath } from '../../../tests/helpers/tools'
import {
  cgroupsWith,
  cleanupPrefix,
  describeSandbox,
  linksWith,
  mountsUnder,
  netnsWith,
  processesRootedIn,
  systemSsh,
  tearDownSandboxes,
  useSubnet,
} from './helpers/local'

// Real sandboxes: own subnet and bridge so nothing clashes with the main job or other helpers.
const SUBNET = '10.213.1.0/24'
const BRIDGE = 'provt1'

type Ws = Awaited<ReturnType<typeof tempWorkspace>>
let ws: Ws
const cli = (args: string[], options: { input?: string } = {}) =>
  runCli('prov-server', args, { env: ws.env, cwd: ws.path, input: options.input, timeoutMs: 180_000 })

interface Server {
  name: string
  status: string
  ip_address: string
}
const servers = async (): Promise<Server[]> => (await cli(['list', '--out', 'json'])).json()
const ipOf = async (name: string) => (await servers()).find((s) => s.name === name)?.ip_address as string

describeSandbox('local provider: real sandboxes (root)', {}, () => {
  beforeAll(async () => {
    cleanupPrefix(BRIDGE)
    ws = await tempWorkspace('sandboxes', 'full')
    useSubnet(ws.path, SUBNET, BRIDGE)
  })

  afterAll(() => tearDownSandboxes(ws, BRIDGE, { verify: false }))

  it('plan --infra demo | apply --yes creates 3 SSH-ready servers', async () => {
    const plan = await cli(['plan', '--infra', 'demo', '-q'])
    expect(plan.code, plan.stderr).toBe(0)
    expect(plan.json().summary).toMatchObject({ create: 3 })
    const applied = await cli(['apply', '--yes', '--out', 'ndjson'], { input: plan.stdout })
    expect(applied.code, applied.stderr).toBe(0)
    const records = applied.lines()
    expect(records.map((r) => r.name).sort()).toEqual(['db-01', 'web-01', 'web-02'])
    for (const record of records) expect(record).toMatchObject({ schema: 'prov.server/v1', status: 'running', provider: 'local' })
    expect(new Set(records.map((r) => r.ip_address)).size).toBe(3)
    for (const r of records) expect(r.ip_address.startsWith('10.213.1.')).toBe(true)
  })

  it('a second workspace on the same bridge gets its own addresses and namespaces; deleting there leaves ours alone', async () => {
    const other = await tempWorkspace('neighbour', 'full')
    useSubnet(other.path, SUBNET, BRIDGE)
    try {
      const run = (args: string[]) => runCli('prov-server', args, { env: other.env, cwd: other.path, timeoutMs: 180_000 })
      const created = await run(['create', 'web-01', '--infra', 'demo', '--out', 'json'])
      expect(created.code, created.stderr).toBe(0)
      const theirs = created.json()[0] as Server
      const ours = await ipOf('web-01')
      expect(theirs.ip_address).not.toBe(ours)
      expect(systemSsh(other.path, theirs.ip_address, 'hostname').stdout.trim()).toBe('web-01')
      expect((await run(['delete', 'web-01', '--yes', '-q'])).code).toBe(0)
      expect(systemSsh(ws.path, ours, 'hostname').stdout.trim()).toBe('web-01')
      expect(netnsWith(BRIDGE)).toHaveLength(3)
    } finally {
      await runCli('prov-server', ['delete', '--all', '--yes', '-q'], { env: other.env, cwd: other.path }).catch(() => undefined)
      other.cleanup()
    }
  })

  it('each server answers ssh with its own hostname (workspace key, pinned host key)', async () => {
    for (const server of await servers()) {
      const result = systemSsh(ws.path, server.ip_address, 'hostname')
      expect(result.stdout.trim(), result.stderr).toBe(server.name)
    }
  })

  it('a file written on one server is invisible on another and on the host', async () => {
    const marker = `/root/prov-e2e-${process.pid}.txt`
    expect(systemSsh(ws.path, await ipOf('web-01'), `echo only-web-01 > ${marker} && cat ${marker}`).stdout.trim()).toBe('only-web-01')
    expect(systemSsh(ws.path, await ipOf('web-02'), `test -e ${marker} && echo present || echo absent`).stdout.trim()).toBe('absent')
    expect(existsSync(marker)).toBe(false)
  })

  it('list --out json | nu counts 3 running servers', async () => {
    const list = await cli(['list', '--out', 'json'])
    const nu = nuPath()
    const child = spawn(nu, ['--stdin', '-c', 'from json | where status == running | length'], { stdio: ['pipe', 'pipe', 'pipe'] })
    let out = ''
    child.stdout.on('data', (d) => {
      out += d
    })
    child.stdin.end(list.stdout)
    await new Promise((resolve) => child.on('exit', resolve))
    expect(out.trim()).toBe('3')
  })

  it('exec all -- hostname gives one record per server; failures exit 6', async () => {
    const result = await cli(['exec', 'all', '--out', 'json', '--', 'hostname'])
    expect(result.code, result.stderr).toBe(0)
    const records = result.json() as { server: string; stdout: string; exit_code: number; schema: string; duration_ms: number }[]
    expect(records).toHaveLength(3)
    for (const r of records) {
      expect(r).toMatchObject({ schema: 'prov.server.exec/v1', exit_code: 0 })
      expect(r.stdout.trim()).toBe(r.server)
      expect(typeof r.duration_ms).toBe('number')
    }
    const listed = await cli(['list', '--out', 'json'])
    const piped = await runCli('prov-server', ['exec', '--out', 'json', '--', 'test "$(hostname)" = web-01'], {
      env: ws.env,
      cwd: ws.path,
      input: listed.stdout,
    })
    expect(piped.code).toBe(6)
    expect((piped.json() as { exit_code: number }[]).filter((r) => r.exit_code === 0)).toHaveLength(1)
  })

  it('stop/start keeps the disk; a vanished sandbox (reboot) lists as stopped and comes back', async () => {
    const ip = await ipOf('web-01')
    expect(systemSsh(ws.path, ip, 'echo kept > /root/kept.txt').status).toBe(0)
    const stopped = await cli(['stop', 'web-01', '--yes', '--out', 'json'])
    expect(stopped.code, stopped.stderr).toBe(0)
    expect((await servers()).find((s) => s.name === 'web-01')?.status).toBe('stopped')
    expect(netnsWith(BRIDGE).filter((ns) => ns.startsWith(`${BRIDGE}-web-01-`))).toEqual([])
    const started = await cli(['start', 'web-01', '--yes', '--out', 'json'])
    expect(started.code, started.stderr).toBe(0)
    expect(systemSsh(ws.path, ip, 'cat /root/kept.txt').stdout.trim()).toBe('kept')

    // Simulate a host reboot: processes and namespaces vanish behind prov's back.
    const info = (await cli(['info', 'web-01', '--out', 'json'])).json() as { provider_info: { sandbox: { pid: number; veth: string; netns: string } } }
    process.kill(info.provider_info.sandbox.pid, 'SIGKILL')
    await sleep(200)
    cleanupOne(info.provider_info.sandbox.netns, info.provider_info.sandbox.veth)
    expect((await servers()).find((s) => s.name === 'web-01')?.status).toBe('stopped')
    const plan = await cli(['plan', '--infra', 'demo', '-q'])
    const action = (plan.json() as { actions: { server: string; action: string; start?: boolean }[] }).actions.find((a) => a.server === 'web-01')
    expect(action).toMatchObject({ action: 'update', start: true })
    const applied = await cli(['apply', '--yes', '-q'], { input: plan.stdout })
    expect(applied.code, applied.stderr).toBe(0)
    expect(systemSsh(ws.path, ip, 'cat /root/kept.txt; hostname').stdout.trim()).toBe('kept\nweb-01')
  })

  it('a plan of matching state keeps everything; a stale plan is refused', async () => {
    const plan = await cli(['plan', '--infra', 'demo', '-q'])
    expect(plan.json().summary).toMatchObject({ create: 0, update: 0, delete: 0, keep: 3 })
    await cli(['stop', 'web-02', '--yes', '-q'])
    const stale = await cli(['apply', '--yes'], { input: plan.stdout })
    expect(stale.code).toBe(2)
    expect(stale.stderr).toMatch(/plan is stale.*plan --infra demo/)
    const fresh = await cli(['plan', '--infra', 'demo', '-q'])
    expect((await cli(['apply', '--yes', '-q'], { input: fresh.stdout })).code).toBe(0)
    expect((await servers()).every((s) => s.status === 'running')).toBe(true)
  })

  it('--check on mutating commands changes nothing', async () => {
    const before = readFileSync(join(ws.path, '.prov/servers.json'), 'utf8')
    const del = await cli(['delete', 'web-01', '--check', '--out', 'json'])
    expect(del.code).toBe(0)
    expect(del.json()).toMatchObject({ schema: 'prov.server.plan/v1', actions: [{ action: 'delete', server: 'web-01' }] })
    const stop = await cli(['stop', 'all', '--check', '--out', 'json'])
    expect(stop.json().actions).toHaveLength(3)
    const exec = await cli(['exec', 'all', '--check', '--out', 'json', '--', 'touch /root/should-not-exist'])
    expect(exec.code).toBe(0)
    expect(readFileSync(join(ws.path, '.prov/servers.json'), 'utf8')).toBe(before)
    expect(systemSsh(ws.path, await ipOf('web-01'), 'test -e /root/should-not-exist && echo yes || echo no').stdout.trim()).toBe('no')
  })

  it('a changed host key is refused (exit 4), never prompted', async () => {
    const knownHosts = join(ws.path, '.prov/known_hosts')
    const original = readFileSync(knownHosts, 'utf8')
    const ip = await ipOf('web-02')
    const fake = 'AAAAC3NzaC1lZDI1NTE5AAAAIPa1KqSQ8rXxYv0cJt0e7a6YHnH2QyqY2r0X2S3mO4aB'
    writeFileSync(knownHosts, original.replace(new RegExp(`^${ip.replace(/\./g, '\\.')} ssh-ed25519 \\S+`, 'm'), `${ip} ssh-ed25519 ${fake}`))
    try {
      const result = await cli(['exec', 'web-02', '--', 'true'])
      expect(result.code, result.stderr).toBe(4)
      expect(result.stderr).toMatch(/does not match the pinned key/)
      const viaSsh = await cli(['ssh', 'web-02', '--', 'true'])
      expect(viaSsh.code, viaSsh.stderr).toBe(4)
      expect(viaSsh.stderr).toMatch(/does not match the pinned key/)
    } finally {
      writeFileSync(knownHosts, original)
    }
  })

  it('killing apply midway leaves consistent state; the next plan finishes the job', async () => {
    const file = join(ws.path, 'infra/demo/servers.yaml')
    writeFileSync(file, `${readFileSync(file, 'utf8')}  - name: extra-01\n    provider: local\n    labels: { role: extra }\n`)
    const plan = await cli(['plan', '--infra', 'demo', '-q'])
    expect(plan.json().summary).toMatchObject({ create: 1, keep: 3 })
    const child = spawn(process.execPath, [join(binDir, 'prov-server'), 'apply', '--yes', '-q'], {
      env: { ...process.env, ...ws.env } as NodeJS.ProcessEnv,
      cwd: ws.path,
      stdio: ['pipe', 'ignore', 'ignore'],
    })
    child.stdin.end(plan.stdout)
    const stateFile = join(ws.path, '.prov/servers.json')
    const deadline = Date.now() + 60_000
    while (!(existsSync(stateFile) && readFileSync(stateFile, 'utf8').includes('"extra-01"')) && Date.now() < deadline) await sleep(5)
    child.kill('SIGKILL')
    await new Promise((resolve) => child.on('exit', resolve))
    const state = JSON.parse(readFileSync(stateFile, 'utf8'))
    expect(state.servers['extra-01']).toBeDefined()
    const next = await cli(['plan', '--infra', 'demo', '-q'])
    const action = (next.json() as { actions: { server: string; action: string; reason: string }[] }).actions.find((a) => a.server === 'extra-01')
    if (state.servers['extra-01'].status === 'running') expect(action?.action).toBe('keep')
    else expect(action).toMatchObject({ action: 'create', reason: expect.stringMatching(/interrupted/) })
    const applied = await cli(['apply', '--yes', '-q'], { input: next.stdout })
    expect(applied.code, applied.stderr).toBe(0)
    expect(systemSsh(ws.path, await ipOf('extra-01'), 'hostname').stdout.trim()).toBe('extra-01')
    expect(netnsWith(BRIDGE)).toHaveLength(4)
  })

  it('removing a server from servers.yaml plans its delete', async () => {
    const file = join(ws.path, 'infra/demo/servers.yaml')
    writeFileSync(file, readFileSync(file, 'utf8').replace(/ {2}- name: extra-01[\s\S]*$/, ''))
    const plan = await cli(['plan', '--infra', 'demo', '-q'])
    expect(plan.json().actions.find((a: { server: string }) => a.server === 'extra-01')).toMatchObject({ action: 'delete' })
    const applied = await cli(['apply', '--yes', '--out', 'ndjson', '-q'], { input: plan.stdout })
    expect(applied.code, applied.stderr).toBe(0)
    expect(applied.lines()).toMatchObject([{ name: 'extra-01', deleted: true }])
    expect(netnsWith(BRIDGE)).toHaveLength(3)
  })

  it('delete --all --yes leaves no namespace, veth, mount, process or NAT rule behind', async () => {
    const result = await cli(['delete', '--all', '--yes', '--out', 'json'])
    expect(result.code, result.stderr).toBe(0)
    expect(result.json()).toHaveLength(3)
    expect(netnsWith(BRIDGE)).toEqual([])
    expect(linksWith(BRIDGE)).toEqual([])
    expect(mountsUnder(ws.path)).toEqual([])
    expect(processesRootedIn(ws.path)).toEqual([])
    expect(cgroupsWith(BRIDGE)).toEqual([])
    const nat = spawnSync('iptables', ['-w', '-t', 'nat', '-S'], { encoding: 'utf8' }).stdout
    expect(nat).not.toContain(`prov:${BRIDGE}`)
    expect(existsSync(join(ws.path, '.prov/local/web-01'))).toBe(false)
    expect(await servers()).toEqual([])
    const unknown = await cli(['delete', 'web-01', '--yes'])
    expect(unknown.code).toBe(5)
    expect(unknown.stderr).toMatch(/unknown server 'web-01'/)
  })
})

function cleanupOne(netns: string, veth: string) {
  spawnSync('ip', ['link', 'del', veth])
  spawnSync('ip', ['netns', 'del', netns])
}
