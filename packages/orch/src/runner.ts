import { spawn } from 'node:child_process'
import { isSameProcess } from '@prov/core'

export type KillReason = 'timeout' | 'cancel' | 'overflow'

export interface ProcessResult {
  code: number | null
  signal: NodeJS.Signals | null
  stdout: string
  stderr: string
  /** Why the engine killed the process group, if it did. */
  killed?: KillReason
  /** stdout went past the limit (with `truncate`, `stdout` holds the first `limit` bytes). */
  overflowed: boolean
  stdoutBytes: number
  notFound: boolean
  error?: string
}

export interface RunningProcess {
  result: Promise<ProcessResult>
  pid?: number
  /** Kills the whole process group (the step and everything it started). */
  kill(reason: KillReason): void
}

export interface ProcessOptions {
  input?: string
  env: NodeJS.ProcessEnv
  cwd?: string
  timeoutMs?: number
  onStderr?: (text: string) => void
  /** Bytes of stdout kept (default 16 MiB). */
  maxStdout?: number
  /** Past the limit: `fail` kills the step at once; `truncate` keeps the first bytes and reads on. */
  onOverflow?: 'fail' | 'truncate'
}

const DEFAULT_MAX_STDOUT = 16 * 1024 * 1024
/** What a POSIX shell exits with when it cannot find the command. */
export const SHELL_COMMAND_NOT_FOUND = 127
const STDERR_TAIL = 64 * 1024

function killGroup(pid: number, signal: NodeJS.Signals) {
  try {
    process.kill(-pid, signal)
  } catch {
    // already gone
  }
}

/**
 * Runs a step as a child process in its own process group (detached), so that a timeout, a
 * cancellation or runaway output can kill everything it started. stdin gets the step input;
 * stderr chunks go to `onStderr` as they come.
 */
export function runProcess(argv: string[], options: ProcessOptions): RunningProcess {
  let killed: KillReason | undefined
  let child: ReturnType<typeof spawn> | undefined
  let killTimer: NodeJS.Timeout | undefined
  const kill = (reason: KillReason) => {
    killed ??= reason
    if (!child?.pid) return
    const pid = child.pid
    killGroup(pid, 'SIGTERM')
    // A short grace, then nothing in the group survives.
    killTimer ??= setTimeout(() => killGroup(pid, 'SIGKILL'), 500)
  }
  const maxStdout = options.maxStdout ?? DEFAULT_MAX_STDOUT
  const result = new Promise<ProcessResult>((resolve) => {
    const stdout: Buffer[] = []
    let stdoutBytes = 0
    let stderr = ''
    try {
      child = spawn(argv[0], argv.slice(1), { detached: true, stdio: ['pipe', 'pipe', 'pipe'], env: options.env, cwd: options.cwd })
    } catch (error) {
      resolve({ code: null, signal: null, stdout: '', stderr: '', overflowed: false, stdoutBytes: 0, notFound: false, error: (error as Error).message })
      return
    }
    const proc = child
    const timer = options.timeoutMs ? setTimeout(() => kill('timeout'), options.timeoutMs) : undefined
    let spawnError: NodeJS.ErrnoException | undefined
    proc.on('error', (error: NodeJS.ErrnoException) => {
      spawnError = error
    })
    proc.stdout?.on('data', (d: Buffer) => {
      const room = maxStdout - stdoutBytes
      stdoutBytes += d.length
      if (room > 0) stdout.push(room >= d.length ? d : d.subarray(0, room))
      if (stdoutBytes > maxStdout && options.onOverflow !== 'truncate') kill('overflow')
    })
    proc.stderr?.on('data', (d: Buffer) => {
      const text = d.toString('utf8')
      stderr = (stderr + text).slice(-STDERR_TAIL)
      options.onStderr?.(text)
    })
    proc.stdin?.on('error', () => {})
    proc.stdin?.end(options.input ?? '')
    proc.on('close', (code, signal) => {
      if (timer) clearTimeout(timer)
      if (killTimer) clearTimeout(killTimer)
      // The leader is gone; take the rest of the group with it (background children of a step).
      if (proc.pid && killed) killGroup(proc.pid, 'SIGKILL')
      resolve({
        code,
        signal,
        stdout: Buffer.concat(stdout).toString('utf8'),
        stderr,
        killed,
        overflowed: stdoutBytes > maxStdout,
        stdoutBytes,
        notFound: spawnError?.code === 'ENOENT' || code === SHELL_COMMAND_NOT_FOUND,
        error: spawnError ? `${spawnError.code}: ${spawnError.message}` : undefined,
      })
    })
  })
  return { result, kill, pid: child?.pid }
}

/** Kills the process group of a step left by a dead engine on this host, if it is still that process. */
export function killOrphanGroup(pid: number, host: string, start: string, thisHost: string): boolean {
  if (host !== thisHost || !isSameProcess(pid, start)) return false
  killGroup(pid, 'SIGKILL')
  return true
}
