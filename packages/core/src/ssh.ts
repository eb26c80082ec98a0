import { existsSync, readFileSync } from 'node:fs'
import { setTimeout as sleep } from 'node:timers/promises'
import type { NodeSSH } from 'node-ssh'
import { deniedError, ExitCode, failedError, isProvError, ProvError } from './errors'
import type { WorkspacePaths } from './paths'
import type { WorkspaceRef } from './servers'
import { assertPrivateKeyMode, assertSshTarget, pinnedHostKeys, type SshTarget, sshPathsOf } from './ssh-trust'
import { shellQuote } from './util/shell'
import { type SshConnectionOptions, type SshSettings, sshConnectionOptions } from './util/ssh-options'

const describe = (target: SshTarget) =>
  `${target.name ? `${target.name} (${target.user}@${target.host}:${target.port})` : `${target.user}@${target.host}:${target.port}`}`

/** Arguments for the system `ssh` client: workspace key, pinned host keys only, never a prompt about keys. */
export function systemSshArgs(
  workspace: WorkspaceRef,
  target: SshTarget,
  options: { batch?: boolean; connectTimeoutS?: number; privateKeyPath?: string } = {},
): string[] {
  assertSshTarget(target)
  const paths = sshPathsOf(workspace)
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
    this.paths = sshPathsOf(workspace)
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
