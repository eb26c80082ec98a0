// prov-taskserv against real sandbox servers (local provider: netns + overlay root + sshd), as root.
// Three servers are created once for the file and deleted in afterAll, even after a failure.
import { mkdirSync, readdirSync, readFileSync, statSync, writeFileSync } from 'node:fs'
import { join } from 'node:path'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { runCli, tempWorkspace } from '../../../tests/helpers/cli'
import { prerequisitesMet, sandboxPrerequisites } from '../../../tests/helpers/prerequisites'
import { cleanupPrefix, tearDownSandboxes } from '../../server/test/helpers/local'

const canSandbox = prerequisitesMet('prov-taskserv on real sandbox servers', sandboxPrerequisites)

const SUBNET = '10.213.2.0/24'
const BRIDGE = 'provt2'

type Ws = Awaited<ReturnType<typeof tempWorkspace>>
let ws: Ws
const env = () => ({ ...ws.env, PROV_DEV: process.env.PROV_TEST_BUILT ? undefined : '1' })
const server = (args: string[], input?: string) => runCli('prov-server', args, { env: env(), cwd: ws.path, input, timeoutMs: 180_000 })
const ts = (args: string[], input?: string, extraEnv: Record<string, string> = {}) =>
  runCli('prov-taskserv', args, { env: { ...env(), ...extraEnv }, cwd: ws.path, input, timeoutMs: 300_000 })

interface Result {
  server: string
  taskserv: string
  action: string
  status: string
  version?: string
  output: string
  error?: string
  level?: number
  duration_ms: number
  rolled_back?: boolean
  healthy?: boolean
  log?: string
}

/** Runs a command on one server over SSH (prov-server exec) and returns its stdout. */
async function onServer(name: string, command: string): Promise<{ code: number; stdout: string }> {
  const r = await server(['exec', name, '-o', 'json', '-q', '--', 'sh', '-c', command])
  const record = r.json<{ stdout: string; exit_code?: number; code?: number }[]>()[0]
  return { code: record.exit_code ?? record.code ?? r.code, stdout: record.stdout ?? '' }
}

function extension(name: string, manifest: string, scripts: Record<string, string>) {
  const dir = join(ws.path, 'extensions', 'taskservs', name)
  mkdirSync(dir, { recursive: true })
  writeFileSync(join(dir, 'manifest.yaml'), manifest)
  for (const [file, text] of Object.entries(scripts)) writeFileSync(join(dir, file), text, { mode: 0o755 })
}

function filesUnder(dir: string): string[] {
  return readdirSync(dir).flatMap((e) => (statSync(join(dir, e)).isDirectory() ? filesUnder(join(dir, e)) : [join(dir, e)]))
}

describe.skipIf(!canSandbox)('prov-taskserv on real sandbox servers (root)', { timeout: 420_000 }, () => {
  let serverList = ''

  beforeAll(async () => {
    cleanupPrefix(BRIDGE)
    ws = await tempWorkspace('taskserv-e2e')
    writeFileSync(
      join(ws.path, 'prov.config.yaml'),
      `workspace:\n  name: taskserv-e2e\nproviders:\n  default: local\n  local: { subnet: ${SUBNET}, bridge: ${BRIDGE}, nat: true }\n`,
    )
    const created = await Promise.all([
      server(['create', 'ts-db', '--provider', 'local', '--label', 'role=db', '-q']),
      server(['create', 'ts-web1', '--provider', 'local', '--label', 'role=web', '-q']),
      server(['create', 'ts-web2', '--provider', 'local', '--label', 'role=web', '-q']),
    ])
    for (const c of created) expect(c.code, c.stderr).toBe(0)
    serverList = (await server(['list', '-o', 'json'])).stdout
  })

  afterAll(() => tearDownSandboxes(ws, BRIDGE))

  it('prov-server list | prov-taskserv install redis: real redis answers PING over SSH; status, health, logs, restart', async () => {
    const r = await ts(['install', 'redis', '-o', 'json'], serverList)
    expect(r.code, r.stderr).toBe(0)
    const results = r.json<Result[]>()
    expect(results.map((x) => `${x.server}:${x.status}`).sort()).toEqual(['ts-db:changed', 'ts-web1:changed', 'ts-web2:changed'])
    for (const name of ['ts-db', 'ts-web1', 'ts-web2']) expect((await onServer(name, 'redis-cli ping')).stdout.trim()).toBe('PONG')

    const status = await ts(['status', '-o', 'json'], serverList)
    expect(status.code, status.stderr).toBe(0)
    expect(status.json<Result[]>().every((x) => x.taskserv === 'redis' && x.status === 'ok' && x.healthy === true)).toBe(true)
    const health = await ts(['health', 'redis', '--where', 'role=web', '-o', 'json'])
    expect(health.code, health.stderr).toBe(0)
    expect(health.json<Result[]>().map((x) => x.output)).toEqual(['redis: PONG', 'redis: PONG'])

    const logs = await ts(['logs', 'redis', '--server', 'ts-db', '--tail', '50', '-o', 'json'])
    expect(logs.code, logs.stderr).toBe(0)
    expect(logs.json<Result[]>()[0].output).toMatch(/Ready to accept connections/)
    const pidBefore = (await onServer('ts-db', 'cat /var/lib/prov/run/redis.pid')).stdout.trim()
    const restart = await ts(['restart', 'redis', '--servers', 'ts-db', '--yes', '-o', 'json'])
    expect(restart.json<Result[]>()[0].status, restart.stderr).toBe('changed')
    expect((await onServer('ts-db', 'cat /var/lib/prov/run/redis.pid')).stdout.trim()).not.toBe(pidBefore)
    expect((await onServer('ts-db', 'redis-cli ping')).stdout.trim()).toBe('PONG')

    // Installed state is recorded on the server and in the workspace.
    expect(JSON.parse((await onServer('ts-web1', 'cat /var/lib/prov/taskservs/redis.json')).stdout)).toMatchObject({ name: 'redis', version: '7.0.0' })
    const installed = (await ts(['list', '--installed', '-o', 'json'])).json<{ name: string; server: string }[]>()
    expect(installed.filter((i) => i.name === 'redis')).toHaveLength(3)
  })

  it('install twice: the second run changes nothing (all ok, none changed)', async () => {
    const r = await ts(['install', 'redis', '-o', 'json'], serverList)
    expect(r.code, r.stderr).toBe(0)
    expect(r.json<Result[]>().map((x) => x.status)).toEqual(['ok', 'ok', 'ok'])
  })

  it('remove removes it (daemon stopped, package purged); removing again is ok', async () => {
    const r = await ts(['remove', 'redis', '--yes', '-o', 'json'], serverList)
    expect(r.code, r.stderr).toBe(0)
    expect(r.json<Result[]>().map((x) => x.status)).toEqual(['changed', 'changed', 'changed'])
    const gone = await onServer(
      'ts-web2',
      'redis-cli ping 2>&1; dpkg-query -W -f="${Status}" redis-server 2>&1; test -e /var/lib/prov/taskservs/redis.json && echo state-left',
    )
    expect(gone.stdout).not.toMatch(/PONG|install ok installed|state-left/)
    const again = await ts(['remove', 'redis', '--servers', 'ts-web2', '--yes', '-o', 'json'])
    expect(again.json<Result[]>()[0].status).toBe('ok')
    expect((await ts(['list', '--installed', '-o', 'json'])).json()).toEqual([])
  })

  it('the web cluster deploys in levels across servers: postgres, then webapp, then haproxy in front', async () => {
    const r = await ts(['cluster', 'deploy', 'web', '-o', 'json'])
    expect(r.code, r.stderr).toBe(0)
    const results = r.json<Result[]>()
    const level = (name: string) => [...new Set(results.filter((x) => x.taskserv === name).map((x) => x.level))]
    expect(level('postgres')).toEqual([0])
    expect(level('webapp')).toEqual([1])
    expect(level('haproxy')).toEqual([2])
    expect(results.map((x) => `${x.taskserv}@${x.server}`).sort()).toEqual(['haproxy@ts-web1', 'postgres@ts-db', 'webapp@ts-web1', 'webapp@ts-web2'])
    // haproxy on ts-web1 balances over both webapps, which count visits in postgres on ts-db.
    const page = await onServer('ts-web1', 'curl -fsS http://127.0.0.1:80/; curl -fsS http://127.0.0.1:80/')
    expect(page.stdout).toMatch(/webapp on ts-web1: visit \d+/)
    expect(page.stdout).toMatch(/webapp on ts-web2: visit \d+/)
  })

  it('cluster status reports every placement healthy; a second deploy changes nothing', async () => {
    const status = await ts(['cluster', 'status', 'web', '-o', 'json'])
    expect(status.code, status.stderr).toBe(0)
    expect(status.json<Result[]>().every((x) => x.status === 'ok' && x.healthy === true)).toBe(true)

    const again = await ts(['cluster', 'deploy', 'web', '-o', 'json'])
    expect(again.json<Result[]>().every((x) => x.status === 'ok')).toBe(true)
  })

  it('after stop and start of every server the cluster serves again, nothing reinstalled (the boot starts enabled services)', async () => {
    const recorded = 'stat -c %Y /var/lib/prov/taskservs/*.json'
    const before = await Promise.all(['ts-db', 'ts-web1', 'ts-web2'].map((name) => onServer(name, recorded)))
    const stopped = await server(['stop', 'all', '--yes', '-o', 'json'])
    expect(stopped.code, stopped.stderr).toBe(0)
    expect(stopped.json<{ status: string }[]>().map((s) => s.status)).toEqual(['stopped', 'stopped', 'stopped'])
    const started = await server(['start', 'all', '--yes', '-q'])
    expect(started.code, started.stderr).toBe(0)
    // postgres, both webapps and haproxy answer again: the page counts visits in postgres on ts-db.
    let page = { code: 1, stdout: '' }
    for (let i = 0; i < 40 && !/visit \d+[\s\S]*visit \d+/.test(page.stdout); i++) {
      page = await onServer('ts-web1', 'curl -fsS http://127.0.0.1:80/; curl -fsS http://127.0.0.1:80/')
      if (!/visit \d+[\s\S]*visit \d+/.test(page.stdout)) await new Promise((resolve) => setTimeout(resolve, 500))
    }
    expect(page.stdout).toMatch(/webapp on ts-web1: visit \d+/)
    expect(page.stdout).toMatch(/webapp on ts-web2: visit \d+/)
    const status = await ts(['cluster', 'status', 'web', '-o', 'json'])
    expect(status.code, status.stderr).toBe(0)
    expect(status.json<Result[]>().every((x) => x.status === 'ok' && x.healthy === true)).toBe(true)
    const after = await Promise.all(['ts-db', 'ts-web1', 'ts-web2'].map((name) => onServer(name, recorded)))
    expect(after.map((r) => r.stdout)).toEqual(before.map((r) => r.stdout))
  })

  it('cluster remove removes the components, dependents first', async () => {
    const removed = await ts(['cluster', 'remove', 'web', '--yes', '-o', 'json'])
    expect(removed.code, removed.stderr).toBe(0)
    const order = removed.json<Result[]>().map((x) => x.taskserv)
    expect(order.indexOf('haproxy')).toBeLessThan(order.indexOf('postgres'))
    expect((await onServer('ts-db', 'pg_isready -h 127.0.0.1 -p 5432 >/dev/null 2>&1 && echo up || echo down')).stdout.trim()).toBe('down')
  })

  it('settings with shell and SQL metacharacters reach the scripts and PostgreSQL as data over SSH', async () => {
    const message = 'x; touch /tmp/prov-p $(touch /tmp/prov-p) `touch /tmp/prov-p` \'q\' "dq" \\\nsecond line'
    const hello = await ts(['install', 'hello', '--servers', 'ts-web1', '--set', `message=${message}`, '--set', 'path=/etc/prov-hello-data', '-o', 'json'])
    expect(hello.code, hello.stderr).toBe(0)
    expect((await onServer('ts-web1', 'cat /etc/prov-hello-data/message')).stdout).toBe(`${message}\n`)
    const password = `pa:ss'w"o$(touch /tmp/prov-p)rd\\`
    const pg = await ts([
      'install',
      'postgres',
      '--servers',
      'ts-db',
      '--set',
      'db_name=data_app',
      '--set',
      'db_user=data_user',
      '--set',
      `db_password=${password}`,
      '-o',
      'json',
    ])
    expect(pg.code, pg.stderr).toBe(0)
    expect(pg.stdout + pg.stderr).not.toContain(password)
    const login = await onServer(
      'ts-db',
      `PGPASSWORD="$(printf %s ${Buffer.from(password).toString('base64')} | base64 -d)" psql -h 127.0.0.1 -U data_user -d data_app -tAc 'select current_user'`,
    )
    expect(login.stdout.trim()).toBe('data_user')
    for (const name of ['ts-web1', 'ts-db']) expect((await onServer(name, 'test -e /tmp/prov-p && echo injected || echo clean')).stdout.trim()).toBe('clean')
    expect((await ts(['remove', 'postgres', '--servers', 'ts-db', '--yes', '-q'])).code).toBe(0)
    expect((await ts(['remove', 'hello', '--servers', 'ts-web1', '--yes', '-q'])).code).toBe(0)
  })

  it('a failing script: exit 6, the other hosts continue, the failing host has its log tail in the result; secrets never on disk', async () => {
    extension('flaky', 'name: flaky\nkind: taskserv\nversion: 0.1.0\nsettings:\n  token: { secret: e2e/token }\n', {
      'check.sh': '#!/bin/sh\n[ -f /etc/prov-flaky ]\n',
      'install.sh':
        '#!/bin/sh\necho "token length ${#PROV_SETTING_TOKEN}"\necho "token received: $PROV_SETTING_TOKEN"\nif [ "$PROV_SERVER" = ts-web2 ]; then echo "boom on $PROV_SERVER" >&2; exit 7; fi\ntouch /etc/prov-flaky\n',
      'uninstall.sh': '#!/bin/sh\nrm -f /etc/prov-flaky\n',
    })
    const r = await ts(['install', 'flaky', 'hello', '-o', 'json'], serverList, { PROV_SECRET_E2E_TOKEN: 'tok-3f9a7c21' })
    expect(r.code, r.stderr).toBe(6)
    const results = r.json<Result[]>()
    const failed = results.find((x) => x.server === 'ts-web2' && x.taskserv === 'flaky') as Result
    expect(failed.status).toBe('failed')
    expect(failed.output).toMatch(/boom on ts-web2/)
    expect(failed.error).toMatch(/exit code 7/)
    expect(
      results
        .filter((x) => x.taskserv === 'flaky' && x.status === 'changed')
        .map((x) => x.server)
        .sort(),
    ).toEqual(['ts-db', 'ts-web1'])
    expect(results.filter((x) => x.taskserv === 'hello' && x.status === 'changed')).toHaveLength(3)
    // The secret reached the script, but is redacted in results and logs, and never written on the servers.
    expect(results.find((x) => x.server === 'ts-db' && x.taskserv === 'flaky')?.output).toMatch(/token length 12\ntoken received: \[redacted\]/)
    expect(r.stdout).not.toContain('tok-3f9a7c21')
    expect(r.stderr).not.toContain('tok-3f9a7c21')
    const written = [
      ...filesUnder(join(ws.path, '.prov', 'logs')),
      ...readdirSync(join(ws.path, '.prov'))
        .filter((f) => f.endsWith('.json'))
        .map((f) => join(ws.path, '.prov', f)),
    ]
    expect(written.length).toBeGreaterThan(3)
    for (const file of written) expect(readFileSync(file, 'utf8')).not.toContain('tok-3f9a7c21')
    expect((await onServer('ts-db', 'grep -rl tok-3f9a7c21 /var/lib/prov /etc /tmp 2>/dev/null | head -n 3')).stdout.trim()).toBe('')
    // The log file of the failing host holds its output.
    expect(readFileSync(failed.log as string, 'utf8')).toMatch(/boom on ts-web2/)
    await ts(['remove', 'flaky', '--yes', '-q'], serverList)
  })

  it('a cluster deploy that fails at a step rolls back what it installed', async () => {
    const dir = join(ws.path, 'extensions', 'clusters', 'shaky')
    mkdirSync(dir, { recursive: true })
    writeFileSync(
      join(dir, 'manifest.yaml'),
      'name: shaky\nkind: cluster\nversion: 1.0.0\ncomponents:\n  - name: hello\n    placement: { where: { role: web } }\n    settings: { path: /etc/prov-shaky }\n  - name: broken\n    placement: [ts-web2]\n',
    )
    extension('broken', 'name: broken\nkind: taskserv\nversion: 0.1.0\nrequires: { hello: "*" }\n', {
      'check.sh': '#!/bin/sh\nexit 1\n',
      'install.sh': '#!/bin/sh\necho "cannot start" >&2\nexit 4\n',
      'uninstall.sh': '#!/bin/sh\nexit 0\n',
    })
    const r = await ts(['cluster', 'deploy', 'shaky', '-o', 'json'])
    expect(r.code, r.stderr).toBe(6)
    const results = r.json<Result[]>()
    expect(results.find((x) => x.taskserv === 'broken')?.status).toBe('failed')
    const undo = results
      .filter((x) => x.action === 'remove')
      .map((x) => `${x.taskserv}@${x.server}:${x.status}`)
      .sort()
    expect(undo).toEqual(['hello@ts-web1:changed', 'hello@ts-web2:changed'])
    expect((await onServer('ts-web1', 'test -e /etc/prov-shaky && echo left || echo clean')).stdout.trim()).toBe('clean')
  })

  it('update with a failing health check rolls back to the previous version; rolling stops at the failed batch', async () => {
    let r = await ts(['update', 'hello', '--version', '1.1.0', '--servers', 'ts-db', '-o', 'json'])
    expect(r.json<Result[]>()[0], r.stderr).toMatchObject({ status: 'changed', version: '1.1.0' })
    r = await ts(['update', 'hello', '--version', '2.0.0-broken', '--servers', 'ts-db', '-o', 'json'])
    expect(r.code).toBe(1)
    expect(r.json<Result[]>()[0]).toMatchObject({ status: 'failed', rolled_back: true, version: '1.1.0' })
    expect((await onServer('ts-db', 'cat /etc/prov-hello/version')).stdout.trim()).toBe('1.1.0')
    const updates = (await ts(['check-updates', 'hello', '-o', 'json'])).json<{ server: string; installed: string }[]>()
    expect(updates.find((u) => u.server === 'ts-db')?.installed).toBe('1.1.0')

    r = await ts(['update', 'hello', '--version', '2.0.0-broken', '--rolling', '--batch', '1', '-o', 'json'], serverList)
    expect(r.code).toBe(6)
    const statuses = r.json<Result[]>().map((x) => `${x.server}:${x.status}`)
    expect(statuses).toEqual(['ts-db:failed', 'ts-web1:skipped', 'ts-web2:skipped'])
  })

  it('a script that fails because apt-get failed (exit 100) is failed, exit 1 — not skipped', async () => {
    extension('aptfail', 'name: aptfail\nkind: taskserv\nversion: 0.1.0\n', {
      'check.sh': '#!/bin/sh\nexit 1\n',
      'install.sh': '#!/bin/sh\nset -e\napt-get install -y -q --no-install-recommends prov-no-such-package\n',
    })
    const r = await ts(['install', 'aptfail', '--servers', 'ts-web1', '-o', 'json'])
    expect(r.code, r.stderr).toBe(1)
    expect(r.json<Result[]>()[0]).toMatchObject({ status: 'failed', error: 'install.sh failed with exit code 100' })
  })

  it('a hanging script is killed on the server at the timeout', async () => {
    extension('hang', 'name: hang\nkind: taskserv\nversion: 0.1.0\n', {
      'check.sh': '#!/bin/sh\nexit 1\n',
      'install.sh': '#!/bin/sh\necho $$ > /tmp/prov-hang.pid\nsleep 600\n',
    })
    const r = await ts(['install', 'hang', '--servers', 'ts-web1', '--timeout', '2', '-o', 'json'])
    expect(r.json<Result[]>()[0].error, r.stderr).toMatch(/timed out after 2s/)
    expect(r.code).toBe(1)
    const alive = await onServer('ts-web1', 'kill -0 "$(cat /tmp/prov-hang.pid)" 2>/dev/null && echo alive || echo gone; ps -eo args= | grep -cx "sleep 600"')
    expect(alive.stdout.trim().split('\n')).toEqual(['gone', '0'])
  })

  it('a host that goes away mid-install fails alone (exit 6); the others finish', async () => {
    extension('slow', 'name: slow\nkind: taskserv\nversion: 0.1.0\n', {
      'check.sh': '#!/bin/sh\n[ -f /etc/prov-slow ]\n',
      'install.sh': '#!/bin/sh\necho starting\nsleep 4\ntouch /etc/prov-slow\necho done\n',
    })
    const running = ts(['install', 'slow', '--servers', 'ts-web1,ts-web2', '--timeout', '6', '-o', 'json'])
    await new Promise((resolve) => setTimeout(resolve, 2000))
    const stopped = await server(['stop', 'ts-web2', '--yes', '-q'])
    expect(stopped.code, stopped.stderr).toBe(0)
    const r = await running
    expect(r.stdout, r.stderr).toMatch(/ts-web1/)
    expect(r.code, r.stderr).toBe(6)
    const results = r.json<Result[]>()
    expect(results.find((x) => x.server === 'ts-web1')?.status).toBe('changed')
    expect(results.find((x) => x.server === 'ts-web2')?.status).toBe('failed')
  })
})
