import { spawn } from 'node:child_process'
import { readFileSync } from 'node:fs'

export interface ProcessResult {
  code: number | null
  signal: NodeJS.Signals | null
  stdout: string
  stderr: string
  timedOut: boolean
  cancelled: boolean
  notFound: boolean
  error?: string
}

export interface RunningProcess {
  result: Promise<ProcessResult>
  pid?: number
  /** Kills the whole process group (the step and everything it started). */
  kill(reason: 'timeout' | 'cancel'): void
}

const MAX_STDOUT = 16 * 1024 * 1024

function killGroup(pid: number, signal: NodeJS.Signals) {
  try {
    process.kill(-pid, signal)
  } catch {
    // already gone
  }
}

/**
 * Runs a step as a child process in its own process group (detached), so that a timeout or a
 * cancellation can kill everything it started. stdin gets the step input; stderr lines go to
 * `onStderr` as they come.
 */
export function runProcess(
  argv: string[],
  options: { input?: string; env: NodeJS.ProcessEnv; cwd?: string; timeoutMs?: number; onStderr?: (text: string) => void },
): RunningProcess {
  let timedOut = false
  let cancelled = false
  let child: ReturnType<typeof spawn>
  let killTimer: NodeJS.Timeout | undefined
  const kill = (reason: 'timeout' | 'cancel') => {
    if (reason === 'timeout') timedOut = true
    else cancelled = true
    if (!child?.pid) return
    killGroup(child.pid, 'SIGTERM')
    // A short grace, then nothing in the group survives.
    killTimer ??= setTimeout(() => child.pid && killGroup(child.pid, 'SIGKILL'), 500)
  }
  let pid: number | undefined
  const result = new Promise<ProcessResult>((resolve) => {
    const stdout: Buffer[] = []
    let stdoutSize = 0
    let stderr = ''
    try {
      child = spawn(argv[0], argv.slice(1), { detached: true, stdio: ['pipe', 'pipe', 'pipe'], env: options.env, cwd: options.cwd })
    } catch (error) {
      resolve({ code: null, signal: null, stdout: '', stderr: '', timedOut, cancelled, notFound: false, error: (error as Error).message })
      return
    }
    pid = child.pid
    const timer = options.timeoutMs ? setTimeout(() => kill('timeout'), options.timeoutMs) : undefined
    let spawnError: NodeJS.ErrnoException | undefined
    child.on('error', (error: NodeJS.ErrnoException) => {
      spawnError = error
    })
    child.stdout?.on('data', (d: Buffer) => {
      stdoutSize += d.length
      if (stdoutSize <= MAX_STDOUT) stdout.push(d)
    })
    child.stderr?.on('data', (d: Buffer) => {
      const text = d.toString('utf8')
      if (stderr.length < 64 * 1024) stderr += text
      options.onStderr?.(text)
    })
    child.stdin?.on('error', () => {})
    child.stdin?.end(options.input ?? '')
    child.on('close', (code, signal) => {
      if (timer) clearTimeout(timer)
      if (killTimer) clearTimeout(killTimer)
      // The leader is gone; take the rest of the group with it (background children of a step).
      if (child.pid && (timedOut || cancelled)) killGroup(child.pid, 'SIGKILL')
      resolve({
        code,
        signal,
        stdout: Buffer.concat(stdout).toString('utf8'),
        stderr,
        timedOut,
        cancelled,
        notFound: spawnError?.code === 'ENOENT' || code === 127,
        error: spawnError ? `${spawnError.code}: ${spawnError.message}` : undefined,
      })
    })
  })
  return { result, kill, pid }
}

/** Field 22 of /proc/PID/stat (start time in clock ticks since boot), or undefined. */
export function processStart(pid: number): string | undefined {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8')
    return stat.slice(stat.lastIndexOf(')') + 2).split(' ')[19]
  } catch {
    return undefined
  }
}

/** Kills the process group of a step left by a dead engine on this host, if it is still that process. */
export function killOrphanGroup(pid: number, host: string, start: string, thisHost: string): boolean {
  if (host !== thisHost || processStart(pid) !== start) return false
  killGroup(pid, 'SIGKILL')
  return true
}
