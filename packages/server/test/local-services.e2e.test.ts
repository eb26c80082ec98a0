// Services installed by taskservs come back when a local server boots again (stop/start, restart,
// a re-apply after the sandbox vanished), the way systemd starts enabled units: nothing is
// reinstalled. Real sandboxes (root), real nginx and redis from the image's apt archive.
import { spawnSync } from 'node:child_process'
import { mkdirSync, writeFileSync } from 'node:fs'
import { join } from 'node:path'
import { setTimeout as sleep } from 'node:timers/promises'
import { afterAll, beforeAll, expect, it } from 'vitest'
import { runCli, tempWorkspace } from '../../../tests/helpers/cli'
import { cleanupPrefix, describeSandbox, systemSsh, tearDownSandboxes, useSubnet } from './helpers/local'

const SUBNET = '10.213.8.0/24'
const BRIDGE = 'provt8'

type Ws = Awaited<ReturnType<typeof tempWorkspace>>
let ws: Ws
let ip = ''
const server = (args: string[], input?: string) => runCli('prov-server', args, { env: ws.env, cwd: ws.path, input, timeoutMs: 600_000 })
const taskserv = (args: string[]) => runCli('prov-taskserv', args, { env: ws.env, cwd: ws.path, timeoutMs: 600_000 })
const inside = (command: string) => systemSsh(ws.path, ip, command)

/** Both services answer (retried briefly: a boot starts them before sshd, but health takes a moment). */
async function servicesAnswer(): Promise<string> {
  let out = ''
  for (let i = 0; i < 20; i++) {
    out = inside('curl -fsS http://127.0.0.1:80/healthz; redis-cli ping').stdout
    if (/ok\s+PONG/.test(out)) return out
    await sleep(250)
  }
  return out
}

describeSandbox('local servers keep their services across stop/start (root)', { timeout: 900_000 }, () => {
  beforeAll(async () => {
    cleanupPrefix(BRIDGE)
    ws = await tempWorkspace('services')
    useSubnet(ws.path, SUBNET, BRIDGE, false)
    mkdirSync(join(ws.path, 'infra', 'svc'), { recursive: true })
    writeFileSync(join(ws.path, 'infra', 'svc', 'servers.yaml'), 'servers:\n  - name: svc-01\n    provider: local\n    cores: 1\n    memory_mb: 512\n')
    const created = await server(['create', 'svc-01', '--infra', 'svc', '--out', 'json'])
    expect(created.code, created.stderr).toBe(0)
    ip = created.json()[0].ip_address
    const installed = await taskserv(['install', 'nginx', 'redis', '--servers', 'svc-01', '-o', 'json'])
    expect(installed.code, installed.stderr).toBe(0)
    expect(
      installed
        .json<{ taskserv: string; status: string }[]>()
        .map((r) => `${r.taskserv}:${r.status}`)
        .sort(),
    ).toEqual(['nginx:changed', 'redis:changed'])
  })

  afterAll(() => tearDownSandboxes(ws, BRIDGE))

  it('stop + start: nginx and redis run again, nothing reinstalled', async () => {
    expect(await servicesAnswer()).toMatch(/ok\s+PONG/)
    const installedAt = inside('stat -c %Y /var/lib/prov/taskservs/nginx.json /var/lib/prov/taskservs/redis.json').stdout
    expect((await server(['stop', 'svc-01', '--yes', '-q'])).code).toBe(0)
    expect((await server(['start', 'svc-01', '--yes', '-q'])).code).toBe(0)
    expect(await servicesAnswer()).toMatch(/ok\s+PONG/)
    expect(inside('stat -c %Y /var/lib/prov/taskservs/nginx.json /var/lib/prov/taskservs/redis.json').stdout).toBe(installedAt)
    // One host's independent taskservs install side by side, so either may start first.
    const bootLog = inside('cat /var/log/prov/boot.log').stdout
    expect(bootLog).toMatch(/boot: starting nginx/)
    expect(bootLog).toMatch(/boot: starting redis/)
    const status = await taskserv(['status', 'nginx', 'redis', '--servers', 'svc-01', '-o', 'json'])
    expect(
      status.json<{ status: string; healthy?: boolean }[]>().every((r) => r.status === 'ok' && r.healthy === true),
      status.stdout,
    ).toBe(true)
  })

  it('stop is a shutdown: redis saw SIGTERM and saved its data', async () => {
    inside('redis-cli set prov-key kept >/dev/null')
    expect((await server(['restart', 'svc-01', '--yes', '-q'])).code).toBe(0)
    expect(await servicesAnswer()).toMatch(/ok\s+PONG/)
    expect(inside('redis-cli get prov-key').stdout.trim()).toBe('kept')
  })

  it('a sandbox that vanished (host reboot) comes back with its services through plan + apply', async () => {
    const info = (await server(['info', 'svc-01', '--out', 'json'])).json() as { provider_info: { sandbox: { pid: number; netns: string; veth: string } } }
    process.kill(info.provider_info.sandbox.pid, 'SIGKILL')
    await sleep(200)
    spawnSync('ip', ['link', 'del', info.provider_info.sandbox.veth])
    spawnSync('ip', ['netns', 'del', info.provider_info.sandbox.netns])
    const plan = await server(['plan', '--infra', 'svc', '-q'])
    expect(plan.json().actions[0]).toMatchObject({ action: 'update', start: true })
    const applied = await server(['apply', '--yes', '-q'], plan.stdout)
    expect(applied.code, applied.stderr).toBe(0)
    expect(await servicesAnswer()).toMatch(/ok\s+PONG/)
  })
})
