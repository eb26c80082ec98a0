import { execFile } from 'node:child_process'
import { chmodSync, existsSync, readFileSync, rmSync, statSync } from 'node:fs'
import { basename } from 'node:path'
import { setTimeout as sleep } from 'node:timers/promises'
import type { NodeSSH } from 'node-ssh'
import { deniedError, ExitCode, failedError, isProvError, ProvError, usageError } from './errors'
import { type WorkspacePaths, workspacePaths } from './paths'
import { addressProblem, loginNameProblem, type ServerRecord, type WorkspaceRef } from './servers'
import { withLock, writeFileAtomic } from './state'
import { containedPath, mkdirContained } from './util/contain'
import { serialised } from './util/queue'
import { shellQuote } from './util/shell'
import { type SshConnectionOptions, type SshSettings, sshConnectionOptions } from './util/ssh-options'

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

function pathsOf(workspace: WorkspaceRef): WorkspacePaths {
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
  const mode = statSync(path).mode & 0o777
  if (mode & 0o077) {
    throw deniedError(`private key ${path} is readable by others (mode ${mode.toString(8)})`, {
      location: path,
      hint: `chmod 600 ${path}`,
    })
  }
}

/** The workspace's ed25519 key pair (`.prov/ssh/id_ed25519`, 0600), generated on first need. */
export async function ensureWorkspaceKey(workspace: WorkspaceRef): Promise<WorkspaceKey> {
  const paths = pathsOf(workspace)
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
  const paths = pathsOf(workspace)
  return containedPath(paths.state, basename(paths.knownHosts), { what: 'the workspace state (.prov)' })
}

/** Keys pinned for host:port in the workspace's `.prov/known_hosts`. */
export function pinnedHostKeys(workspace: WorkspaceRef, host: string, port: number): PinnedKey[] {
  const file = pathsOf(workspace).knownHosts
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
      writeFileAtomic(file, `${[...kept, ...added].join('\n')}\n`, { mode: 0o644 })
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
      writeFileAtomic(file, kept.length ? `${kept.join('\n')}\n` : '', { mode: 0o644 })
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

const describe = (target: SshTarget) =>
  `${target.name ? `${target.name} (${target.user}@${target.host}:${target.port})` : `${target.user}@${target.host}:${target.port}`}`

/** Arguments for the system `ssh` client: workspace key, pinned host keys only, never a prompt about keys. */
export function systemSshArgs(
  workspace: WorkspaceRef,
  target: SshTarget,
  options: { batch?: boolean; connectTimeoutS?: number; privateKeyPath?: string } = {},
): string[] {
  assertSshTarget(target)
  const paths = pathsOf(workspace)
  return [
    '-i',
    options.privateKeyPath ?? paths.sshKey,
    '-p',
    String(target.port),
    '-o',
    'IdentitiesOnly=yes',
    '-o',
    'StrictHostKeyChecking=yes',
    '-o',
    `UserKnownHostsFile=${paths.knownHosts}`,
    '-o',
    'GlobalKnownHostsFile=/dev/null',
    '-o',
    `ConnectTimeout=${options.connectTimeoutS ?? 10}`,
    ...(options.batch ? ['-o', 'BatchMode=yes'] : []),
    '-l',
    target.user,
    // Nothing after `--` is an option: the host and the remote command stay data.
    '--',
    target.host,
  ]
}

export interface SshPoolOptions {
  /** TCP + handshake timeout per attempt (default 10 s). */
  connectTimeoutMs?: number
  /** Extra connection attempts, with exponential backoff (default 3). */
  retries?: number
  /** Close a connection unused for this long (default 30 s). */
  idleTimeoutMs?: number
  /** Private key instead of the workspace key. */
  privateKeyPath?: string
}

export interface SshExecOptions {
  /** Environment for the command (exported in the remote shell; values never logged). */
  env?: Record<string, string>
  stdin?: string
  /** Kill the command (remote process group included) after this long; exit code 124. */
  timeoutMs?: number
  onStdout?: (chunk: Buffer) => void
  onStderr?: (chunk: Buffer) => void
  /**
   * Bytes of stdout and of stderr kept in the result (each; default `defaultMaxOutputBytes`).
   * Past it the command keeps running, the rest is read and dropped, and the result says so.
   */
  maxOutputBytes?: number
}

/** Output kept per stream of a remote command unless the caller chooses otherwise (16 MiB). */
export const defaultMaxOutputBytes = 16 << 20

export interface SshExecResult {
  code: number
  stdout: string
  stderr: string
  durationMs: number
  timedOut: boolean
  /** Bytes the command wrote to each stream (more than the text kept when truncated). */
  stdoutBytes: number
  stderrBytes: number
  /** The kept text of a stream stops at `maxOutputBytes`. */
  stdoutTruncated: boolean
  stderrTruncated: boolean
}

/** Keeps the first `limit` bytes of a stream and counts the rest. */
class BoundedOutput {
  private readonly chunks: Buffer[] = []
  private kept = 0
  total = 0
  constructor(private readonly limit: number) {}

  push(chunk: Buffer): void {
    this.total += chunk.length
    if (this.kept >= this.limit) return
    const part = chunk.length > this.limit - this.kept ? chunk.subarray(0, this.limit - this.kept) : chunk
    this.chunks.push(part)
    this.kept += part.length
  }

  get truncated(): boolean {
    return this.total > this.kept
  }

  /** Decoded once at the end, so a character split across chunks stays whole. */
  text(): string {
    return Buffer.concat(this.chunks).toString('utf8')
  }
}

/** The part of an ssh2 channel the pool uses (node-ssh ships no types for ssh2). */
interface ExecChannel {
  on(event: 'data', listener: (chunk: Buffer) => void): void
  on(event: 'exit', listener: (code: number | null, signal?: string | null) => void): void
  on(event: 'close', listener: () => void): void
  stderr: { on(event: 'data', listener: (chunk: Buffer) => void): void }
  write(data: string): void
  end(): void
  close(): void
  signal?(name: string): void
}

interface ExecClient {
  exec(command: string, options: object, callback: (error: Error | undefined, channel: ExecChannel) => void): void
  on(event: 'error', listener: (error: Error) => void): void
  removeListener(event: 'error', listener: (error: Error) => void): void
}

interface PooledConnection {
  ssh: NodeSSH
  busy: number
  idleTimer?: NodeJS.Timeout
}

/** Wraps a command so it runs in its own process group and dies with it at the deadline. */
export function wrapRemoteCommand(command: string, options: { env?: Record<string, string>; timeoutMs?: number } = {}): string {
  const exports = Object.entries(options.env ?? {})
    .filter(([key]) => /^[A-Za-z_][A-Za-z0-9_]*$/.test(key))
    .map(([key, value]) => `export ${key}=${shellQuote(value)}; `)
    .join('')
  const script = `${exports}${command}`
  if (!options.timeoutMs) return exports ? `sh -c ${shellQuote(script)}` : command
  const seconds = Math.max(1, Math.ceil(options.timeoutMs / 1000))
  // coreutils timeout puts the command in its own process group and signals the whole group.
  return `if command -v timeout >/dev/null 2>&1; then exec timeout -k 5 ${seconds} sh -c ${shellQuote(script)}; else exec sh -c ${shellQuote(script)}; fi`
}

/**
 * A pool of SSH connections (node-ssh, loaded lazily) keyed by user@host:port, with pinned
 * host-key verification, connect timeout, retries with exponential backoff and idle close.
 */
export class SshPool {
  private readonly paths: WorkspacePaths
  private readonly options: Required<Omit<SshPoolOptions, 'privateKeyPath'>> & { privateKeyPath?: string }
  private readonly connections = new Map<string, Promise<PooledConnection>>()

  /** A pool with the options of the `ssh` configuration section (`overrides` win, e.g. fewer retries). */
  static fromConfig(workspace: WorkspaceRef, ssh: SshSettings, overrides: Partial<SshConnectionOptions> = {}): SshPool {
    return new SshPool(workspace, sshConnectionOptions(ssh, overrides))
  }

  constructor(workspace: WorkspaceRef, options: SshPoolOptions = {}) {
    this.paths = pathsOf(workspace)
    this.options = {
      connectTimeoutMs: options.connectTimeoutMs ?? 10_000,
      retries: options.retries ?? 3,
      idleTimeoutMs: options.idleTimeoutMs ?? 30_000,
      privateKeyPath: options.privateKeyPath,
    }
  }

  private async connectOnce(target: SshTarget, privateKey: string): Promise<NodeSSH> {
    const { NodeSSH } = await import('node-ssh')
    const pinned = pinnedHostKeys(this.paths, target.host, target.port)
    if (!pinned.length) {
      throw deniedError(`no pinned host key for ${describe(target)}`, {
        location: this.paths.knownHosts,
        hint: 'host keys are pinned when a server is created (prov-server create); re-create or re-add it',
      })
    }
    const blobs = pinned.map((k) => Buffer.from(k.key, 'base64'))
    let mismatch = false
    const ssh = new NodeSSH()
    try {
      await ssh.connect({
        host: target.host,
        port: target.port,
        username: target.user,
        privateKey,
        readyTimeout: this.options.connectTimeoutMs,
        keepaliveInterval: 15_000,
        algorithms: { serverHostKey: [...new Set(pinned.map((k) => k.type))] as never },
        hostVerifier: (key: Buffer | string) => {
          const ok = Buffer.isBuffer(key) && blobs.some((blob) => blob.equals(key))
          if (!ok) mismatch = true
          return ok
        },
      })
    } catch (error) {
      ssh.dispose()
      if (mismatch) {
        throw deniedError(`host key of ${describe(target)} does not match the pinned key`, {
          location: this.paths.knownHosts,
          hint: 'the host was replaced or someone is intercepting; if the change is expected, re-create the server to pin its new key',
        })
      }
      const message = (error as Error).message ?? String(error)
      if (/authentication methods failed|auth/i.test(message)) {
        throw deniedError(`SSH authentication failed for ${describe(target)}`, { hint: 'the workspace public key must be in authorized_keys on the host' })
      }
      if (/no matching host key format/i.test(message)) {
        throw deniedError(`host ${describe(target)} offers none of the pinned host key types (${pinned.map((k) => k.type).join(', ')})`, {
          location: this.paths.knownHosts,
        })
      }
      throw failedError(
        `cannot connect to ${describe(target)}: ${/timed out/i.test(message) ? `timed out after ${this.options.connectTimeoutMs / 1000} s` : message}`,
        {
          cause: error,
        },
      )
    }
    return ssh
  }

  private async connect(target: SshTarget): Promise<PooledConnection> {
    assertSshTarget(target)
    const keyPath = this.options.privateKeyPath ?? this.paths.sshKey
    if (!existsSync(keyPath)) throw deniedError(`no SSH private key at ${keyPath}`, { hint: 'the workspace key is created with the first server' })
    assertPrivateKeyMode(keyPath)
    const privateKey = readFileSync(keyPath, 'utf8')
    let delay = 200
    for (let attempt = 0; ; attempt++) {
      try {
        return { ssh: await this.connectOnce(target, privateKey), busy: 0 }
      } catch (error) {
        // Key mismatches and auth failures do not heal by retrying.
        if ((isProvError(error) && (error.code === ExitCode.DENIED || error.code === ExitCode.USAGE)) || attempt >= this.options.retries) throw error
        await sleep(delay)
        delay *= 2
      }
    }
  }

  private async acquire(target: SshTarget): Promise<PooledConnection> {
    const key = `${target.user}@${target.host}:${target.port}`
    let pending = this.connections.get(key)
    if (pending) {
      const existing = await pending.catch(() => undefined)
      if (existing?.ssh.isConnected()) {
        clearTimeout(existing.idleTimer)
        existing.busy++
        return existing
      }
      if (this.connections.get(key) === pending) this.connections.delete(key)
    }
    pending = this.connections.get(key) ?? this.connect(target)
    this.connections.set(key, pending)
    try {
      const connection = await pending
      clearTimeout(connection.idleTimer)
      connection.busy++
      return connection
    } catch (error) {
      if (this.connections.get(key) === pending) this.connections.delete(key)
      throw error
    }
  }

  private release(target: SshTarget, connection: PooledConnection): void {
    connection.busy--
    if (connection.busy > 0) return
    const key = `${target.user}@${target.host}:${target.port}`
    connection.idleTimer = setTimeout(() => {
      if (connection.busy > 0) return
      this.connections.delete(key)
      connection.ssh.dispose()
    }, this.options.idleTimeoutMs)
    connection.idleTimer.unref()
  }

  /**
   * Runs a command; never throws for a non-zero exit (see `code`), throws ProvError when it cannot
   * connect. Output beyond `maxOutputBytes` per stream is dropped (and flagged), never buffered.
   */
  async exec(target: SshTarget, command: string, options: SshExecOptions = {}): Promise<SshExecResult> {
    const started = Date.now()
    const connection = await this.acquire(target)
    try {
      const wrapped = wrapRemoteCommand(command, { env: options.env, timeoutMs: options.timeoutMs })
      const limit = options.maxOutputBytes ?? defaultMaxOutputBytes
      const stdout = new BoundedOutput(limit)
      const stderr = new BoundedOutput(limit)
      let channel: ExecChannel | undefined
      const client = connection.ssh.connection as unknown as ExecClient | null
      if (!client) throw failedError(`connection to ${describe(target)} was closed`)
      const run = new Promise<{ code: number | null; signal: string | null }>((resolve, reject) => {
        client.on('error', reject)
        client.exec(wrapped, {}, (error, opened) => {
          client.removeListener('error', reject)
          if (error) return reject(failedError(`cannot run a command on ${describe(target)}: ${error.message}`, { cause: error }))
          channel = opened
          let code: number | null = null
          let signal: string | null = null
          opened.on('data', (chunk) => {
            options.onStdout?.(chunk)
            stdout.push(chunk)
          })
          opened.stderr.on('data', (chunk) => {
            options.onStderr?.(chunk)
            stderr.push(chunk)
          })
          opened.on('exit', (exitCode, exitSignal) => {
            code = exitCode ?? null
            signal = exitSignal ?? null
          })
          opened.on('close', () => resolve({ code, signal }))
          if (options.stdin !== undefined) opened.write(options.stdin)
          opened.end()
        })
      })
      let timer: NodeJS.Timeout | undefined
      // Local backstop in case the remote `timeout` is missing or the link hangs.
      const backstop = options.timeoutMs
        ? new Promise<'timeout'>((resolve) => {
            timer = setTimeout(() => resolve('timeout'), (options.timeoutMs as number) + 10_000)
          })
        : undefined
      const result = await (backstop ? Promise.race([run, backstop]) : run)
      clearTimeout(timer)
      const output = {
        stdout: stdout.text(),
        stderr: stderr.text(),
        stdoutBytes: stdout.total,
        stderrBytes: stderr.total,
        stdoutTruncated: stdout.truncated,
        stderrTruncated: stderr.truncated,
      }
      if (result === 'timeout') {
        channel?.signal?.('KILL')
        channel?.close()
        return { ...output, code: 124, stderr: `timed out after ${options.timeoutMs} ms`, durationMs: Date.now() - started, timedOut: true }
      }
      const code = result.code ?? (result.signal ? 128 : 1)
      return { ...output, code, durationMs: Date.now() - started, timedOut: Boolean(options.timeoutMs) && code === 124 }
    } finally {
      this.release(target, connection)
    }
  }

  /** Copies one local file to the target (SFTP). */
  async putFile(target: SshTarget, local: string, remote: string): Promise<void> {
    const connection = await this.acquire(target)
    try {
      await connection.ssh.putFile(local, remote)
    } catch (error) {
      throw failedError(`cannot copy ${local} to ${describe(target)}:${remote}: ${(error as Error).message}`, { cause: error })
    } finally {
      this.release(target, connection)
    }
  }

  /** Copies a local folder recursively to the target (SFTP). */
  async putDirectory(target: SshTarget, local: string, remote: string): Promise<void> {
    const connection = await this.acquire(target)
    const failures: string[] = []
    try {
      const ok = await connection.ssh.putDirectory(local, remote, {
        recursive: true,
        concurrency: 4,
        tick: (localFile, _remoteFile, error) => {
          if (error) failures.push(`${localFile}: ${error.message}`)
        },
      })
      if (!ok || failures.length) throw failedError(`cannot copy ${local} to ${describe(target)}:${remote}: ${failures[0] ?? 'transfer failed'}`)
    } catch (error) {
      if (error instanceof ProvError) throw error
      throw failedError(`cannot copy ${local} to ${describe(target)}:${remote}: ${(error as Error).message}`, { cause: error })
    } finally {
      this.release(target, connection)
    }
  }

  /** Closes every connection (call at the end of a command so the process can exit). */
  async closeAll(): Promise<void> {
    const pending = [...this.connections.values()]
    this.connections.clear()
    for (const result of await Promise.allSettled(pending)) {
      if (result.status === 'fulfilled') {
        clearTimeout(result.value.idleTimer)
        result.value.ssh.dispose()
      }
    }
  }
}
