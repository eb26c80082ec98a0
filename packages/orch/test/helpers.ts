import { type ChildProcess, execFileSync, spawn } from 'node:child_process'
import { chmodSync, chownSync, existsSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join, resolve } from 'node:path'
import { freePort } from '../../../tests/helpers/net'

export { freePort }

export const repoRoot = resolve(import.meta.dirname, '../../..')
export const orchBin = join(repoRoot, 'bin', 'prov-orch')
const PG_BIN = '/usr/lib/postgresql/15/bin'

export interface Postgres {
  url: string
  dir: string
  port: number
  start(): void
  stop(): void
  cleanup(): void
}

/** A throwaway PostgreSQL 15 (Debian package): initdb in a temp dir owned by postgres, 127.0.0.1 on a free port. */
export async function startPostgres(): Promise<Postgres> {
  const dir = mkdtempSync(join(tmpdir(), 'prov-orch-pg-'))
  // initdb refuses root: as root, the cluster belongs to the postgres user (runuser); otherwise to us.
  const isRoot = process.getuid?.() === 0
  const owner = isRoot
    ? { uid: Number(execFileSync('id', ['-u', 'postgres']).toString().trim()), gid: Number(execFileSync('id', ['-g', 'postgres']).toString().trim()) }
    : undefined
  chmodSync(dir, 0o755)
  if (owner) chownSync(dir, owner.uid, owner.gid)
  const data = join(dir, 'data')
  const asPostgres = (cmd: string, args: string[]) =>
    execFileSync(isRoot ? 'runuser' : cmd, isRoot ? ['-u', 'postgres', '--', cmd, ...args] : args, { stdio: 'pipe', timeout: 60_000 })
  const port = await freePort()
  asPostgres(`${PG_BIN}/initdb`, ['-D', data, '-U', 'postgres', '--auth=trust', '-E', 'UTF8', '--no-sync'])
  writeFileSync(
    join(data, 'postgresql.auto.conf'),
    `listen_addresses = '127.0.0.1'\nport = ${port}\nunix_socket_directories = '${dir}'\nfsync = on\nmax_connections = 100\n`,
  )
  if (owner) chownSync(join(data, 'postgresql.auto.conf'), owner.uid, owner.gid)
  const pg: Postgres = {
    url: `postgres://postgres@127.0.0.1:${port}/postgres`,
    dir,
    port,
    start() {
      asPostgres(`${PG_BIN}/pg_ctl`, ['-D', data, '-l', join(dir, 'log'), '-w', '-t', '60', 'start'])
    },
    stop() {
      if (existsSync(join(data, 'postmaster.pid'))) asPostgres(`${PG_BIN}/pg_ctl`, ['-D', data, '-m', 'immediate', '-w', 'stop'])
    },
    cleanup() {
      try {
        pg.stop()
      } catch {
        // already stopped
      }
      rmSync(dir, { recursive: true, force: true })
    },
  }
  pg.start()
  return pg
}

export function tempDir(prefix = 'prov-orch-test-') {
  const dir = mkdtempSync(join(tmpdir(), prefix))
  return { dir, cleanup: () => rmSync(dir, { recursive: true, force: true }) }
}

/** Starts a prov-orch process in the background (worker, serve). */
export function startOrch(args: string[], env: Record<string, string> = {}): ChildProcess & { stderrText: () => string } {
  const child = spawn(process.execPath, [orchBin, ...args], {
    cwd: repoRoot,
    env: { ...process.env, NO_COLOR: '1', ...env },
    stdio: ['ignore', 'pipe', 'pipe'],
  }) as ChildProcess & { stderrText: () => string }
  let stderr = ''
  child.stderr?.on('data', (d: Buffer) => {
    stderr += d.toString()
  })
  child.stdout?.resume()
  child.stderrText = () => stderr
  return child
}

export function waitExit(child: ChildProcess, timeoutMs = 120_000): Promise<number | null> {
  if (child.exitCode !== null || child.signalCode !== null) return Promise.resolve(child.exitCode)
  return new Promise((resolveExit, reject) => {
    const timer = setTimeout(() => reject(new Error('process did not exit in time')), timeoutMs)
    child.once('exit', (code) => {
      clearTimeout(timer)
      resolveExit(code)
    })
  })
}

export async function waitFor<T>(fn: () => Promise<T | undefined | false> | T | undefined | false, timeoutMs = 60_000, stepMs = 50): Promise<T> {
  const deadline = Date.now() + timeoutMs
  for (;;) {
    const value = await fn()
    if (value) return value
    if (Date.now() > deadline) throw new Error('timed out waiting')
    await new Promise((r) => setTimeout(r, stepMs))
  }
}

export const devEnv: Record<string, string> = process.env.PROV_ORCH_TEST_DIST ? {} : { PROV_DEV: '1' }
