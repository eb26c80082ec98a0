// What prov-taskserv connects to, proven with a loopback listener that counts accepted connections
// (the servers' addresses point at it): --check opens none, on every command; the real run does.
// Also: destructive commands confirm, status/health default to every server, `all` names them all.
import { randomBytes } from 'node:crypto'
import { writeFileSync } from 'node:fs'
import { join } from 'node:path'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { runCli, tempWorkspace } from '../../../tests/helpers/cli'
import { connectionCounter } from '../../../tests/helpers/net'
import { ensureWorkspaceKey, recordHostKeys } from '../../core/src/index'
import { serverRecord } from './records'

type Ws = Awaited<ReturnType<typeof tempWorkspace>>
let ws: Ws
let listener: Awaited<ReturnType<typeof connectionCounter>>
const env = () => ({ ...ws.env, PROV_DEV: process.env.PROV_TEST_BUILT ? undefined : '1', PROV_SSH__RETRIES: '0', PROV_SSH__CONNECT_TIMEOUT: '5' })
const ts = (args: string[], input?: string) => runCli('prov-taskserv', args, { env: env(), input, cwd: ws.path })

const server = (name: string, role: string) => serverRecord(name, { ip_address: '127.0.0.1', ssh: { user: 'root', port: listener.port }, labels: { role } })

/** An ssh-ed25519 public key blob (random: nothing will ever present it). */
function hostKey(): string {
  const field = (data: Buffer) => Buffer.concat([Buffer.from([0, 0, 0, data.length]), data])
  return `ssh-ed25519 ${Buffer.concat([field(Buffer.from('ssh-ed25519')), field(randomBytes(32))]).toString('base64')}`
}

beforeAll(async () => {
  listener = await connectionCounter()
  ws = await tempWorkspace('conn', 'full')
  writeFileSync(
    join(ws.path, '.prov', 'servers.json'),
    JSON.stringify({ version: 1, servers: { 'db-01': server('db-01', 'db'), 'web-01': server('web-01', 'web') }, provider_data: {} }),
  )
  // A key and a pinned host key make a real run go as far as connecting (without them it is refused before).
  await ensureWorkspaceKey(ws.path)
  await recordHostKeys(ws.path, '127.0.0.1', listener.port, [hostKey()])
})
afterAll(async () => {
  await listener?.close()
  ws?.cleanup()
})

describe('connections', () => {
  it('--check opens no connection, on every command that acts on servers', { timeout: 300_000 }, async () => {
    const runs: string[][] = [
      ['install', 'hello', '--servers', 'all'],
      ['install', '--infra', 'demo'],
      ['update', 'hello', '--version', '1.1.0', '--servers', 'db-01'],
      ['update', 'hello', '--rolling', '--servers', 'all'],
      ['remove', 'hello', '--servers', 'all'],
      ['status'],
      ['status', 'hello', '--where', 'role=web'],
      ['health'],
      ['restart', 'hello', '--servers', 'all'],
      ['logs', 'hello', '--server', 'db-01'],
      ['cluster', 'deploy', 'web'],
      ['cluster', 'remove', 'web'],
      ['cluster', 'status', 'web'],
    ]
    // status/health/logs/restart act on what is recorded: record hello on both servers first.
    writeFileSync(
      join(ws.path, '.prov', 'taskservs.json'),
      JSON.stringify({
        schema: 'prov.taskserv.state/v1',
        servers: {
          'db-01': { hello: { version: '1.0.0', updated_at: '2026-01-01T00:00:00Z' } },
          'web-01': { hello: { version: '1.0.0', updated_at: '2026-01-01T00:00:00Z' } },
        },
      }),
    )
    for (const args of runs) {
      const r = await ts([...args, '--check', '-o', 'json'])
      expect(r.code, `${args.join(' ')}: ${r.stderr}`).toBe(0)
      expect(r.json().check, args.join(' ')).toBe(true)
      expect(listener.count(), args.join(' ')).toBe(0)
    }
  })

  it('the same listener sees the real run connect (so a zero above is not an accident)', async () => {
    const r = await ts(['install', 'hello', '--servers', 'all', '-o', 'json'])
    expect(r.code, r.stderr).toBe(1)
    expect(r.json<{ status: string }[]>().map((x) => x.status)).toEqual(['failed', 'failed'])
    expect(listener.count()).toBeGreaterThanOrEqual(2)
  })
})

describe('targets', () => {
  it('status and health without a target look at every server of the workspace', async () => {
    for (const command of ['status', 'health']) {
      const r = await ts([command, '--check', '-o', 'json'])
      expect(r.code, r.stderr).toBe(0)
      expect(r.json().servers.map((s: { server: string }) => s.server)).toEqual(['db-01', 'web-01'])
    }
    const before = listener.count()
    const r = await ts(['health', '-o', 'json'])
    expect(
      r
        .json<{ server: string }[]>()
        .map((x) => x.server)
        .sort(),
    ).toEqual(['db-01', 'web-01'])
    expect(listener.count()).toBeGreaterThanOrEqual(before + 2)
  })

  it('the word all names every server: --servers all, --server all', async () => {
    const plan = await ts(['plan', 'hello', '--servers', 'all', '-o', 'json'])
    expect(plan.code, plan.stderr).toBe(0)
    expect(plan.json().servers.map((s: { server: string }) => s.server)).toEqual(['db-01', 'web-01'])
    const narrowed = await ts(['plan', 'hello', '--servers', 'all', '--where', 'role=db', '-o', 'json'])
    expect(narrowed.json().servers.map((s: { server: string }) => s.server)).toEqual(['db-01'])
    const logs = await ts(['logs', 'hello', '--server', 'all', '--check', '-o', 'json'])
    expect(logs.json().servers.map((s: { server: string }) => s.server)).toEqual(['db-01', 'web-01'])
    const installed = await ts(['list', '--installed', '--server', 'all', '-o', 'json'])
    expect(installed.json<{ server: string }[]>().map((x) => x.server)).toEqual(['db-01', 'web-01'])
    const updates = await ts(['check-updates', '--server', 'all', '-o', 'json'])
    expect(updates.json<{ server: string }[]>().map((x) => x.server)).toEqual(['db-01', 'web-01'])
  })
})

describe('destructive commands confirm', () => {
  it('remove, restart and cluster remove refuse without --yes off a terminal: exit 2, one line, no connection', async () => {
    const before = listener.count()
    for (const args of [
      ['remove', 'hello', '--servers', 'all'],
      ['restart', 'hello', '--servers', 'db-01'],
      ['cluster', 'remove', 'web'],
    ]) {
      const r = await ts(args, '')
      expect(r.code, `${args.join(' ')}: ${r.stderr}`).toBe(2)
      expect(r.stderr).toMatch(/refusing to (remove|restart) .* without --yes \(stdin is not a terminal/)
      expect(r.stderr.trim().split('\n')).toHaveLength(1)
      expect(r.stdout).toBe('')
    }
    // Piped server records are not a terminal either.
    const piped = await ts(['remove', 'hello'], JSON.stringify([server('db-01', 'db')]))
    expect(piped.code).toBe(2)
    expect(piped.stderr).toMatch(/refusing to remove taskservs without --yes/)
    expect(listener.count()).toBe(before)
  })

  it('with --yes they run (and connect)', async () => {
    const before = listener.count()
    const r = await ts(['remove', 'hello', '--servers', 'db-01', '--yes', '-o', 'json'])
    expect(r.code, r.stderr).toBe(1)
    expect(r.json<{ action: string; status: string }[]>()).toMatchObject([{ action: 'remove', status: 'failed' }])
    expect(listener.count()).toBeGreaterThan(before)
  })
})
