import { execFile } from 'node:child_process'
import { failedError } from '../errors'

export interface RunFileOptions {
  /** Kill the program after this long (default 30 s); the result says `timedOut`. */
  timeoutMs?: number
  /** Most bytes of stdout or stderr kept (default 16 MiB); more fails the call. */
  maxBuffer?: number
  cwd?: string
  env?: NodeJS.ProcessEnv
  /** Written to the program's stdin, which is then closed. */
  input?: string | Buffer
}

export interface RunFileResult {
  /** Exit code; 1 when the program was killed by a signal. */
  code: number
  stdout: string
  stderr: string
  /** The signal that ended it, if any. */
  signal?: NodeJS.Signals
  timedOut: boolean
}

/**
 * Runs a program without a shell (arguments are never parsed as shell code) and resolves with its
 * exit code and output; a non-zero exit is a result, not an error. A program that cannot be started
 * (not installed, not executable) is a failed error (exit 1) naming it.
 */
export function runFile(file: string, args: readonly string[], options: RunFileOptions = {}): Promise<RunFileResult> {
  const timeoutMs = options.timeoutMs ?? 30_000
  return new Promise((resolve, reject) => {
    const child = execFile(
      file,
      args,
      { timeout: timeoutMs, maxBuffer: options.maxBuffer ?? 16 << 20, cwd: options.cwd, env: options.env, encoding: 'utf8' },
      (error, stdout, stderr) => {
        const err = error as (NodeJS.ErrnoException & { code?: number | string; killed?: boolean; signal?: NodeJS.Signals }) | null
        if (err && typeof err.code === 'string') {
          const missing = err.code === 'ENOENT'
          return reject(
            failedError(`cannot run ${file}: ${missing ? 'not found' : err.message}`, {
              cause: error,
              hint: missing ? `install ${file} (prov doctor lists what this host lacks)` : undefined,
            }),
          )
        }
        resolve({
          code: err ? (typeof err.code === 'number' ? err.code : 1) : 0,
          stdout: String(stdout),
          stderr: String(stderr),
          ...(err?.signal ? { signal: err.signal } : {}),
          timedOut: Boolean(err?.killed && err.signal),
        })
      },
    )
    if (options.input !== undefined) child.stdin?.end(options.input)
  })
}

/** `runFile`, failing (exit 1) with the program's stderr when it does not exit 0; resolves with stdout. */
export async function runFileOrFail(file: string, args: readonly string[], what?: string, options: RunFileOptions = {}): Promise<string> {
  const result = await runFile(file, args, options)
  if (result.code !== 0 || result.timedOut) {
    const reason = result.timedOut ? `timed out after ${(options.timeoutMs ?? 30_000) / 1000} s` : result.stderr.trim() || `exit ${result.code}`
    throw failedError(`${what ?? `${file} ${args.join(' ')}`} failed: ${reason}`)
  }
  return result.stdout
}
