// Whom an SSH connection trusts: the workspace's own key pair, the host keys pinned for each
// endpoint (never "accept whatever the host says"), and endpoints that cannot be read as options.
import { execFile } from 'node:child_process'
import { chmodSync, existsSync, readFileSync, rmSync, type Stats, statSync } from 'node:fs'
import { basename, dirname } from 'node:path'
import { setTimeout as sleep } from 'node:timers/promises'
import { deniedError, failedError, usageError } from './errors'
import { type WorkspacePaths, workspacePaths } from './paths'
import { addressProblem, loginNameProblem, type ServerRecord, type WorkspaceRef } from './servers'
import { withLock, writeFileAtomic, writeFileAtomicAsync } from './state'
import { containedPath, mkdirContained } from './util/contain'
import { serialised } from './util/queue'

/** Where to connect: one SSH endpoint. `name` is for messages (the server name). */
export interface SshTarget {
  name?: string
  host: string
  port: number
  user: string
}

export interface WorkspaceKey {
  privateKeyPath: string
  publicKeyPath: string
  /** The `ssh-ed25519 AAAA... comment` line. */
  publicKey: string
}

/** The paths of a workspace given by path, by workspace or by its paths. */
export function sshPathsOf(workspace: WorkspaceRef): WorkspacePaths {
  if (typeof workspace === 'string') return workspacePaths(workspace)
  return 'paths' in workspace ? workspace.paths : workspace
}

function run(file: string, args: string[], timeoutMs = 30_000): Promise<{ code: number; stdout: string; stderr: string }> {
  return new Promise((resolve, reject) => {
    execFile(file, args, { timeout: timeoutMs, maxBuffer: 16 << 20 }, (error, stdout, stderr) => {
      const err = error as (NodeJS.ErrnoException & { code?: number | string }) | null
      if (err && typeof err.code === 'string') return reject(err)
      resolve({ code: err ? (typeof err.code === 'number' ? err.code : 1) : 0, stdout: String(stdout), stderr: String(stderr) })
    })
  })
}

/** Refuses a private key readable by group or others: it would let other local users log in as us. */
export function assertPrivateKeyMode(path: string): void {
  const stat = statSync(path)
  const mode = stat.mode & 0o777
  if (mode & 0o077) {
    throw deniedError(`private key ${path} is readable by others (mode ${mode.toString(8)})`, {
      location: path,
      hint: `chmod 600 ${path}`,
    })
  }
  assertOwnKeyFile(path, 'private key', stat)
}

/**
 * A key file is trusted only when the caller owns it and no one else can replace it: a key that
 * belongs to another user, or one in a folder that others can write to (without the sticky bit),
 * is refused (exit 4), whatever its mode.
 */
export function assertOwnKeyFile(path: string, what: string, stat: Stats = statSync(path)): void {
  const uid = process.getuid?.()
  if (uid !== undefined && stat.uid !== uid) {
    throw deniedError(`${what} ${path} belongs to another user (uid ${stat.uid})`, { location: path, hint: 'use a key file you own' })
  }
  const folder = dirname(path)
  const folderMode = statSync(folder).mode
  if (folderMode & 0o022 && !(folderMode & 0o1000)) {
    throw deniedError(`${what} ${path} is in a folder others can write to (${folder}, mode ${(folderMode & 0o777).toString(8)})`, {
      location: path,
      hint: `chmod go-w ${folder}`,
    })
  }
}

/** The workspace's ed25519 key pair (`.prov/ssh/id_ed25519`, 0600), generated on first need. */
export async function ensureWorkspaceKey(workspace: WorkspaceRef): Promise<WorkspaceKey> {
  const paths = sshPathsOf(workspace)
  const inState = (name: string) => containedPath(paths.state, ['ssh', name], { what: 'the workspace state (.prov)' })
  const privateKeyPath = inState(basename(paths.sshKey))
  const publicKeyPath = inState(`${basename(paths.sshKey)}.pub`)
  if (!existsSync(privateKeyPath) || !existsSync(publicKeyPath)) {
    await serialised(privateKeyPath, () =>
      withLock(privateKeyPath, async () => {
        if (existsSync(privateKeyPath) && existsSync(publicKeyPath)) return
        mkdirContained(paths.state, 'ssh', { mode: 0o700, what: 'the workspace state (.prov)' })
        const temp = inState(`${basename(paths.sshKey)}.new-${process.pid}`)
        const result = await run('ssh-keygen', ['-q', '-t', 'ed25519', '-N', '', '-C', `prov@${paths.root}`, '-f', temp]).catch((error: Error) => {
          throw failedError(`cannot run ssh-keygen: ${error.message}`, { hint: 'install openssh-client' })
        })
        if (result.code !== 0) throw failedError(`ssh-keygen failed: ${result.stderr.trim()}`, { location: privateKeyPath })
        chmodSync(temp, 0o600)
        // Public key first: a private key without its .pub is regenerated, never half-used.
        writeFileAtomic(publicKeyPath, readFileSync(`${temp}.pub`), { mode: 0o644 })
        writeFileAtomic(privateKeyPath, readFileSync(temp), { mode: 0o600 })
        for (const file of [temp, `${temp}.pub`]) rmSync(file, { force: true })
      }),
    )
  }
  assertPrivateKeyMode(privateKeyPath)
  return { privateKeyPath, publicKeyPath, publicKey: readFileSync(publicKeyPath, 'utf8').trim() }
}

/** The known_hosts host field: `host` on port 22, `[host]:port` otherwise (OpenSSH's format). */
export function knownHostsName(host: string, port: number): string {
  return port === 22 ? host : `[${host}]:${port}`
}

export interface PinnedKey {
  type: string
  /** Base64 key blob. */
  key: string
}

function parseKnownHosts(text: string): { hosts: string[]; type: string; key: string; line: string }[] {
  const entries = []
  for (const raw of text.split('\n')) {
    const line = raw.trim()
    if (!line || line.startsWith('#')) continue
    const [hosts, type, key] = line.split(/\s+/)
    if (!hosts || !type || !key || hosts.startsWith('@')) continue
    entries.push({ hosts: hosts.split(','), type, key, line })
  }
  return entries
}

/** `.prov/known_hosts`, refused when a symlink moves it out of `.prov`. */
function knownHostsFile(workspace: WorkspaceRef): string {
  const paths = sshPathsOf(workspace)
  return containedPath(paths.state, basename(paths.knownHosts), { what: 'the workspace state (.prov)' })
}

/** Keys pinned for host:port in the workspace's `.prov/known_hosts`. */
export function pinnedHostKeys(workspace: WorkspaceRef, host: string, port: number): PinnedKey[] {
  const file = sshPathsOf(workspace).knownHosts
  if (!existsSync(file)) return []
  const name = knownHostsName(host, port)
  return parseKnownHosts(readFileSync(file, 'utf8'))
    .filter((entry) => entry.hosts.includes(name))
    .map(({ type, key }) => ({ type, key }))
}

/**
 * Records host keys (lines `type base64 [comment]`) for host:port, replacing what was pinned
 * for that endpoint before (a new server behind a reused address).
 */
export async function recordHostKeys(workspace: WorkspaceRef, host: string, port: number, keyLines: string[]): Promise<PinnedKey[]> {
  assertSshTarget({ host, port, user: 'root' })
  const file = knownHostsFile(workspace)
  const name = knownHostsName(host, port)
  const keys: PinnedKey[] = []
  for (const line of keyLines) {
    const [type, key] = line.trim().split(/\s+/)
    if (type && key && /^(ssh-|ecdsa-|sk-)/.test(type)) keys.push({ type, key })
  }
  if (!keys.length) throw failedError(`no host key to pin for ${name}`)
  await serialised(file, () =>
    withLock(file, () => {
      const current = existsSync(file) ? readFileSync(file, 'utf8') : ''
      const kept = parseKnownHosts(current)
        .filter((entry) => !entry.hosts.includes(name))
        .map((entry) => entry.line)
      const added = keys.map((k) => `${name} ${k.type} ${k.key}`)
      return writeFileAtomicAsync(file, `${[...kept, ...added].join('\n')}\n`, { mode: 0o600 })
    }),
  )
  return keys
}

/** Forgets the pinned keys of host:port (the server was deleted). */
export async function forgetHostKey(workspace: WorkspaceRef, host: string, port: number): Promise<void> {
  const file = knownHostsFile(workspace)
  if (!existsSync(file)) return
  const name = knownHostsName(host, port)
  await serialised(file, () =>
    withLock(file, () => {
      const kept = parseKnownHosts(readFileSync(file, 'utf8'))
        .filter((entry) => !entry.hosts.includes(name))
        .map((entry) => entry.line)
      return writeFileAtomicAsync(file, kept.length ? `${kept.join('\n')}\n` : '', { mode: 0o600 })
    }),
  )
}

export interface PinOptions {
  /** Total time to keep trying (the host may still be booting). Default 10 s. */
  timeoutMs?: number
}

/** Fetches the host keys of host:port (ssh-keyscan) and pins them. Retries until the timeout. */
export async function pinHostKey(workspace: WorkspaceRef, host: string, port: number, options: PinOptions = {}): Promise<PinnedKey[]> {
  assertSshTarget({ host, port, user: 'root' })
  const timeoutMs = options.timeoutMs ?? 10_000
  const deadline = Date.now() + timeoutMs
  let delay = 100
  let lastError = ''
  for (;;) {
    const remaining = Math.max(1, Math.ceil((deadline - Date.now()) / 1000))
    const result = await run('ssh-keyscan', ['-T', String(Math.min(remaining, 5)), '-p', String(port), '--', host], (Math.min(remaining, 5) + 2) * 1000).catch(
      (error: Error) => ({ code: 1, stdout: '', stderr: error.message }),
    )
    const lines = result.stdout
      .split('\n')
      .filter((line) => line.trim() && !line.startsWith('#'))
      .map((line) => line.trim().split(/\s+/).slice(1).join(' '))
    if (lines.length) return recordHostKeys(workspace, host, port, lines)
    lastError = result.stderr.trim().split('\n').pop() ?? ''
    if (Date.now() + delay > deadline) break
    await sleep(delay)
    delay = Math.min(delay * 2, 1000)
  }
  throw failedError(`timed out after ${Math.round(timeoutMs / 1000)} s waiting for SSH on ${host}:${port}${lastError ? ` (${lastError})` : ''}`, {
    location: `${host}:${port}`,
    hint: 'check that the host is up, reachable from here and runs sshd on that port',
  })
}

/**
 * Refuses (exit 2) an endpoint whose host or user could be read as an option or is no address
 * at all: they end up as arguments of ssh and ssh-keyscan. State edited by hand is input too.
 */
export function assertSshTarget(target: SshTarget): SshTarget {
  const where = target.name ? `server ${target.name}` : `${target.host}:${target.port}`
  const problem = addressProblem(target.host) ?? loginNameProblem(target.user)
  if (problem) throw usageError(`refusing to connect to ${where}: ${problem}`, { location: where, hint: 'fix the address or ssh.user of the server' })
  if (!Number.isInteger(target.port) || target.port < 1 || target.port > 65535) {
    throw usageError(`refusing to connect to ${where}: port ${String(target.port)} is not 1-65535`, { location: where })
  }
  return target
}

/** The SSH endpoint of a server record. */
export function targetOf(server: ServerRecord): SshTarget {
  return { name: server.name, host: server.ip_address, port: server.ssh?.port ?? 22, user: server.ssh?.user ?? 'root' }
}
