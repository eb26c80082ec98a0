import { execFileSync, spawn } from 'node:child_process'
import { mkdirSync, mkdtempSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import {
  ensureWorkspaceKey,
  getServer,
  listServers,
  newServerRecord,
  type ProvError,
  pinHostKey,
  pinnedHostKeys,
  putServer,
  recordHostKeys,
  SshPool,
  serversFromRecords,
} from '@prov/core'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { freePort, type LoopbackSshd, startLoopbackSshd } from './helpers/sshd'

const root = mkdtempSync(join(tmpdir(), 'prov-core-ssh-'))
let sshd: LoopbackSshd
let pool: SshPool

beforeAll(async () => {
  mkdirSync(join(root, '.prov'), { recursive: true })
  const key = await ensureWorkspaceKey(root)
  sshd = await startLoopbackSshd(key.publicKey)
  pool = new SshPool(root, { connectTimeoutMs: 5000, retries: 1, idleTimeoutMs: 2000 })
})

afterAll(async () => {
  await pool?.closeAll()
  await sshd?.stop()
  rmSync(root, { recursive: true, force: true })
})

const target = () => ({ name: 'loop', host: '127.0.0.1', port: sshd.port, user: 'root' })

describe('server state store', () => {
  it('keeps every server under concurrent writers', async () => {
    const ws = join(root, 'state-ws')
    await Promise.all(Array.from({ length: 20 }, (_, i) => putServer(ws, newServerRecord({ name: `s${i}`, provider: 'ssh', status: 'running' }))))
    expect(listServers(ws)).toHaveLength(20)
    expect(getServer(ws, 's3').name).toBe('s3')
    expect(() => getServer(ws, 's33')).toThrow(/unknown server 's33'/)
    try {
      getServer(ws, 's33')
    } catch (error) {
      expect((error as ProvError).code).toBe(5)
      expect((error as ProvError).hint).toMatch(/did you mean/)
    }
  })

  it('validates piped records', () => {
    const record = newServerRecord({ name: 'a', provider: 'local' })
    expect(serversFromRecords([record])[0].name).toBe('a')
    expect(() => serversFromRecords([{ schema: 'prov.taskserv.result/v1' }])).toThrow(/expected prov.server\/v1/)
    expect(() => serversFromRecords([{ ...record, ip_address: 7 }])).toThrow(/ip_address/)
  })
})

describe('ssh core', () => {
  it('generates a 0600 ed25519 workspace key once', async () => {
    const key = await ensureWorkspaceKey(root)
    expect(statSync(key.privateKeyPath).mode & 0o777).toBe(0o600)
    expect(key.publicKey).toMatch(/^ssh-ed25519 /)
    expect((await ensureWorkspaceKey(root)).publicKey).toBe(key.publicKey)
  })

  it('pins a host key and runs commands over a pooled connection', async () => {
    const keys = await pinHostKey(root, '127.0.0.1', sshd.port)
    expect(keys.map((k) => k.key)).toContain(sshd.hostPublicKey.split(' ')[1])
    const result = await pool.exec(target(), 'echo "$GREETING"; cat; exit 3', { env: { GREETING: "it's me" }, stdin: 'from-stdin' })
    expect(result).toMatchObject({ code: 3, stdout: "it's me\nfrom-stdin", timedOut: false })
    const again = await pool.exec(target(), 'echo $$')
    expect(again.code).toBe(0)
  })

  it('kills a command on the remote side at its timeout', async () => {
    const marker = `sleep 98${Math.floor(Math.random() * 1000)}`
    const result = await pool.exec(target(), marker, { timeoutMs: 1000 })
    expect(result.code).toBe(124)
    expect(result.timedOut).toBe(true)
    await new Promise((r) => setTimeout(r, 300))
    const ps = execFileSync('ps', ['-eo', 'args']).toString()
    expect(ps).not.toContain(marker)
  })

  it('copies files and folders', async () => {
    const local = join(root, 'upload')
    mkdirSync(join(local, 'sub'), { recursive: true })
    writeFileSync(join(local, 'a.txt'), 'A')
    writeFileSync(join(local, 'sub', 'b.txt'), 'B')
    const remote = join(root, 'remote')
    await pool.putDirectory(target(), local, remote)
    await pool.putFile(target(), join(local, 'a.txt'), join(root, 'single.txt'))
    expect(readFileSync(join(remote, 'sub', 'b.txt'), 'utf8')).toBe('B')
    expect(readFileSync(join(root, 'single.txt'), 'utf8')).toBe('A')
  })

  it('refuses a changed host key (exit 4, no prompt)', async () => {
    const other = join(root, 'other_key')
    execFileSync('ssh-keygen', ['-q', '-t', 'ed25519', '-N', '', '-f', other])
    const port = sshd.port
    const fresh = new SshPool(root, { connectTimeoutMs: 5000, retries: 2 })
    await recordHostKeys(root, '127.0.0.1', port, [readFileSync(`${other}.pub`, 'utf8')])
    try {
      await expect(fresh.exec(target(), 'true')).rejects.toMatchObject({ code: 4, message: expect.stringMatching(/does not match the pinned key/) })
    } finally {
      await fresh.closeAll()
      await pinHostKey(root, '127.0.0.1', port)
    }
    expect(pinnedHostKeys(root, '127.0.0.1', port)[0].key).toBe(sshd.hostPublicKey.split(' ')[1])
  })

  it('gives a clear timeout error for an unreachable host', async () => {
    const port = await freePort()
    await expect(pinHostKey(root, '127.0.0.1', port, { timeoutMs: 1500 })).rejects.toThrow(/timed out after 2 s waiting for SSH on 127.0.0.1/)
  })

  it('does not keep the process alive after closeAll', async () => {
    const script = `
      import { SshPool } from '${join(import.meta.dirname, '../../core/src/index.ts')}'
      const pool = new SshPool(${JSON.stringify(root)}, { idleTimeoutMs: 60000 })
      const r = await pool.exec({ host: '127.0.0.1', port: ${sshd.port}, user: 'root' }, 'hostname')
      process.stdout.write(String(r.code))
      await pool.closeAll()
    `
    const file = join(root, 'close-all.ts')
    writeFileSync(file, script)
    const child = spawn(process.execPath, [join(import.meta.dirname, '../../../node_modules/jiti/lib/jiti-cli.mjs'), file], {
      stdio: ['ignore', 'pipe', 'inherit'],
    })
    let out = ''
    child.stdout.on('data', (d) => (out += d))
    const code = await new Promise((r) => child.on('exit', r))
    expect(code).toBe(0)
    expect(out).toBe('0')
  })
})
