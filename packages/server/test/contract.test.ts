import { existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs'
import { createServer, type Server } from 'node:net'
import { join } from 'node:path'
import { newServerRecord } from '@prov/core'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { runOnTerminal } from '../../../tests/helpers/cli'
import type { LoopbackSshd } from './helpers/sshd'
import { type CliCall, type ServerTestWorkspace, serverTestWorkspace, treeHash } from './helpers/workspace'

// The JSON contract for prov-server's commands: --check previews without changing a byte or
// opening a connection, `all` names every server, plans read as a diff on a terminal.

let ws: ServerTestWorkspace
let sshd: LoopbackSshd
let trap: Server
let trapPort = 0
let trapConnections = 0
const cli = (args: string[], options: CliCall = {}) => ws.cli(args, options)

/** prov-server with a terminal on stdin and stdout, fed `input` as typed answers. */
const onTerminal = (args: string[], input = '') => runOnTerminal('prov-server', args, { cwd: ws.path, env: ws.env, input })

beforeAll(async () => {
  ws = await serverTestWorkspace('contract', '10.213.8.0/24', 'provt8')
  sshd = ws.sshd
  // A listener that counts connections: a server whose address points here proves "no connection".
  trap = createServer((socket) => {
    trapConnections++
    socket.destroy()
  })
  await new Promise<void>((resolve) => trap.listen(0, '127.0.0.1', resolve))
  trapPort = (trap.address() as { port: number }).port
  mkdirSync(join(ws.path, 'infra/byo'), { recursive: true })
  writeFileSync(
    join(ws.path, 'infra/byo/servers.yaml'),
    `servers:\n  - name: byo-01\n    provider: ssh\n    address: 127.0.0.1\n    ssh: { port: ${sshd.port} }\n    labels: { role: web }\n`,
  )
  const created = await cli(['create', 'byo-01', '--infra', 'byo', '-q'])
  if (created.code !== 0) throw new Error(created.stderr)
  // trap-01 is a recorded ssh server whose address is the counting listener.
  const state = JSON.parse(readFileSync(join(ws.path, '.prov/servers.json'), 'utf8'))
  state.servers['trap-01'] = newServerRecord({
    name: 'trap-01',
    provider: 'ssh',
    status: 'running',
    ip_address: '127.0.0.1',
    ssh: { user: 'root', port: trapPort },
  })
  writeFileSync(join(ws.path, '.prov/servers.json'), JSON.stringify(state, null, 2))
})

afterAll(async () => {
  trap?.close()
  await ws?.dispose()
})

describe('--check previews every mutating command', () => {
  it('changes no byte of the workspace and opens no connection', async () => {
    writeFileSync(
      join(ws.path, 'infra/byo/servers.yaml'),
      `${readFileSync(join(ws.path, 'infra/byo/servers.yaml'), 'utf8')}  - name: byo-02\n    provider: ssh\n    address: localhost\n    ssh: { port: ${trapPort} }\n`,
    )
    const plan = await cli(['plan', '--infra', 'byo', '-q'])
    expect(plan.code, plan.stderr).toBe(0)
    const before = treeHash(ws.path)
    const commands: [string[], string?][] = [
      [['apply', '--check'], plan.stdout],
      [['create', 'byo-02', '--infra', 'byo', '--check']],
      [['create', 'all', '--infra', 'byo', '--check']],
      [['delete', 'trap-01', '--check']],
      [['delete', 'all', '--check']],
      [['stop', 'all', '--check']],
      [['start', 'trap-01', '--check']],
      [['restart', 'trap-01', '--check']],
      [['exec', 'all', '--check', '--', 'touch /tmp/should-not-exist']],
      [['ssh', 'trap-01', '--check', '--', 'true']],
    ]
    for (const [args, input] of commands) {
      const result = await cli([...args, '--out', 'json'], { input })
      expect(result.code, `${args.join(' ')}: ${result.stderr}`).toBe(0)
      expect(() => result.json(), args.join(' ')).not.toThrow()
    }
    expect(treeHash(ws.path)).toBe(before)
    expect(trapConnections).toBe(0)
  })

  it('create all --check plans every declared server; delete all --check every recorded one', async () => {
    const created = await cli(['create', 'all', '--infra', 'byo', '--check', '--out', 'json'])
    expect(created.json().actions.map((a: { server: string; action: string }) => [a.server, a.action])).toEqual([
      ['byo-01', 'keep'],
      ['byo-02', 'create'],
    ])
    const deleted = await cli(['delete', 'all', '--check', '--out', 'json'])
    expect(deleted.json().actions.map((a: { server: string }) => a.server)).toEqual(['byo-01', 'trap-01'])
    const inInfra = await cli(['delete', 'all', '--infra', 'byo', '--check', '--out', 'json'])
    expect(inInfra.json().actions.map((a: { server: string }) => a.server)).toEqual(['byo-01'])
  })
})

describe('the word all', () => {
  it('works wherever servers are named; with other names it is refused', async () => {
    const info = await cli(['info', 'all', '--out', 'json'])
    expect(info.code, info.stderr).toBe(0)
    expect(info.json().map((s: { name: string }) => s.name)).toEqual(['byo-01', 'trap-01'])
    const one = await cli(['info', 'byo-01', '--out', 'json'])
    expect(one.json()).toMatchObject({ name: 'byo-01', provider_info: { address: '127.0.0.1' } })
    const exec = await cli(['exec', 'all', '--infra', 'byo', '--out', 'json', '--', 'echo hi'])
    expect(exec.code, exec.stderr).toBe(0)
    expect(exec.json()).toMatchObject([{ server: 'byo-01', stdout: 'hi\n' }])
    const mixed = await cli(['stop', 'all', 'byo-01', '--yes'])
    expect(mixed.code).toBe(2)
    expect(mixed.stderr).toMatch(/give server names or all, not both/)
    const ssh = await cli(['ssh', 'all'])
    expect(ssh.code).toBe(2)
    expect(ssh.stderr).toMatch(/ssh connects to one server.*exec all/)
    expect(trapConnections).toBe(0)
  })
})

describe('human views on a terminal', () => {
  it('plan shows a Terraform-like diff on a TTY and with --out table; JSON off a TTY', async () => {
    writeFileSync(
      join(ws.path, 'infra/byo/servers.yaml'),
      `servers:\n  - name: byo-01\n    provider: ssh\n    address: 127.0.0.1\n    ssh: { port: ${sshd.port} }\n    labels: { role: db }\n  - name: web-09\n    provider: local\n    cores: 1\n    memory_mb: 512\n`,
    )
    const tty = await onTerminal(['plan', '--infra', 'byo'])
    expect(tty.code, tty.stdout).toBe(0)
    expect(tty.stdout).toContain('+ create web-09 (local, 1 core, 512 MB)')
    expect(tty.stdout).toContain('~ update byo-01 (ssh): labels {role: web} -> {role: db}')
    expect(tty.stdout).toContain('Plan: 1 to create, 1 to update, 0 to delete, 0 unchanged.')
    const table = await cli(['plan', '--infra', 'byo', '--out', 'table'])
    expect(table.stdout).toContain('+ create web-09 (local, 1 core, 512 MB)')
    const json = await cli(['plan', '--infra', 'byo'])
    expect(json.json()).toMatchObject({ schema: 'prov.server.plan/v1', summary: { create: 1, update: 1 } })
    const removed = await cli(['delete', 'trap-01', '--check', '--out', 'table'])
    expect(removed.stdout).toContain('- delete trap-01 (ssh)')
  })

  it('the apply confirmation shows the diff; answering no changes nothing', async () => {
    writeFileSync(
      join(ws.path, 'infra/byo/servers.yaml'),
      `servers:\n  - name: byo-01\n    provider: ssh\n    address: 127.0.0.1\n    ssh: { port: ${sshd.port} }\n    labels: { role: db }\n`,
    )
    const plan = await cli(['plan', '--infra', 'byo', '-q'])
    writeFileSync(join(ws.root, 'plan.json'), plan.stdout)
    const before = treeHash(ws.path)
    const answered = await onTerminal(['apply', join(ws.root, 'plan.json')], 'n\n')
    expect(answered.code, answered.stdout).toBe(1)
    expect(answered.stdout).toContain('~ update byo-01 (ssh): labels {role: web} -> {role: db}')
    expect(answered.stdout).toMatch(/apply: 0 create, 1 update, 0 delete\? \[y\/N\]/)
    expect(answered.stdout).toMatch(/cancelled, nothing was changed/)
    expect(treeHash(ws.path)).toBe(before)
    const stop = await onTerminal(['stop', 'trap-01'], 'n\n')
    expect(stop.code, stop.stdout).toBe(1)
    expect(stop.stdout).toContain('~ stop trap-01 (ssh)')
    expect(existsSync(join(ws.path, '.prov/servers.json'))).toBe(true)
    expect(trapConnections).toBe(0)
  })
})
