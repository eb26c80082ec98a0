import { spawn } from 'node:child_process'
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join, resolve } from 'node:path'
import { parse, stringify } from 'yaml'

export const repoRoot = resolve(import.meta.dirname, '../..')
export const binDir = join(repoRoot, 'bin')

export interface CliResult {
  code: number
  stdout: string
  stderr: string
  /** stdout parsed as JSON (throws with the output when it is not). */
  json<T = any>(): T
  /** stdout parsed as NDJSON lines. */
  lines<T = any>(): T[]
}

export interface CliOptions {
  input?: string | Buffer
  env?: Record<string, string | undefined>
  cwd?: string
  timeoutMs?: number
}

/**
 * Runs a prov binary (bin/<name>) like a user would. stdin is a pipe (closed at once when no
 * input is given), stdout is not a TTY, so the JSON contract applies.
 */
export function runCli(bin: string, args: string[], options: CliOptions = {}): Promise<CliResult> {
  return runProcess(process.execPath, [join(binDir, bin), ...args], options)
}

/**
 * Runs a prov binary with a terminal on stdin and stdout (util-linux `script`), feeding `input` as
 * typed answers; `stdout` is the whole terminal output (stderr included, without carriage returns).
 */
export async function runOnTerminal(bin: string, args: string[], options: CliOptions & { columns?: number } = {}): Promise<CliResult> {
  const quote = (word: string) => `'${word.replace(/'/g, `'\\''`)}'`
  const command = [process.execPath, join(binDir, bin), ...args].map(quote).join(' ')
  // The pseudo-terminal starts with zero columns (a "zero-width terminal"); stty gives it a size.
  const sized = options.columns ? `stty cols ${Math.trunc(options.columns)} rows 50; exec ${command}` : command
  const result = await runProcess('script', ['-qec', sized, '/dev/null'], { ...options, env: { COLUMNS: '200', ...options.env } })
  return { ...result, stdout: result.stdout.replace(/\r/g, '') }
}

/** Runs any program the way runCli runs a prov binary (pipes, no colours, a time limit). */
export function runProcess(command: string, args: string[], options: CliOptions = {}): Promise<CliResult> {
  return new Promise((resolvePromise, reject) => {
    const child = spawn(command, args, {
      cwd: options.cwd ?? repoRoot,
      env: Object.fromEntries(
        Object.entries({ ...process.env, NO_COLOR: '1', FORCE_COLOR: '0', ...options.env }).filter(([, v]) => v !== undefined),
      ) as NodeJS.ProcessEnv,
      stdio: ['pipe', 'pipe', 'pipe'],
    })
    const out: Buffer[] = []
    const err: Buffer[] = []
    child.stdout.on('data', (d: Buffer) => out.push(d))
    child.stderr.on('data', (d: Buffer) => err.push(d))
    const timer = setTimeout(() => child.kill('SIGKILL'), options.timeoutMs ?? 120_000)
    child.on('error', reject)
    child.on('close', (code, signal) => {
      clearTimeout(timer)
      const stdout = Buffer.concat(out).toString('utf8')
      const stderr = Buffer.concat(err).toString('utf8')
      resolvePromise({
        code: code ?? (signal ? 128 : 1),
        stdout,
        stderr,
        json() {
          try {
            return JSON.parse(stdout)
          } catch {
            throw new Error(`stdout is not JSON (exit ${code}):\n${stdout}\nstderr:\n${stderr}`)
          }
        },
        lines() {
          return stdout
            .split('\n')
            .filter((l) => l.trim())
            .map((l) => JSON.parse(l))
        },
      })
    })
    child.stdin.on('error', () => {})
    if (options.input !== undefined) child.stdin.end(options.input)
    else child.stdin.end()
  })
}

/** A temporary XDG config home + workspace folder; `cleanup()` removes both. */
export function tempEnv(prefix = 'prov-test-') {
  const root = mkdtempSync(join(tmpdir(), prefix))
  const xdg = join(root, 'xdg')
  mkdirSync(xdg, { recursive: true })
  return {
    root,
    env: { XDG_CONFIG_HOME: xdg, PROV_SYSTEM_CONFIG_DIR: join(root, 'etc'), PROV_WORKSPACE: undefined, PROV_ENV: undefined } as Record<
      string,
      string | undefined
    >,
    cleanup: () => rmSync(root, { recursive: true, force: true }),
  }
}

/** Creates a workspace with `prov workspace init` in a temp env. */
export async function tempWorkspace(name = 'ws', template = 'minimal') {
  const t = tempEnv()
  const path = join(t.root, name)
  const result = await runCli('prov', ['workspace', 'init', name, '--template', template, '--path', path, '-q'], { env: t.env, cwd: t.root })
  if (result.code !== 0) throw new Error(`workspace init failed: ${result.stderr}`)
  const env: Record<string, string | undefined> = { ...t.env, PROV_WORKSPACE: path }
  return { ...t, name, path, env }
}

/** Sets `providers.<provider>` in a workspace's prov.config.yaml, keeping the other providers. */
export function setProviderConfig(workspacePath: string, provider: string, settings: Record<string, unknown>): void {
  const file = join(workspacePath, 'prov.config.yaml')
  const config = parse(readFileSync(file, 'utf8'))
  config.providers = { ...config.providers, [provider]: settings }
  writeFileSync(file, stringify(config))
}

/** Writes `infra/<name>/servers.yaml` of a workspace with these servers. */
export function writeInfra(workspacePath: string, name: string, servers: object[]): void {
  mkdirSync(join(workspacePath, 'infra', name), { recursive: true })
  writeFileSync(join(workspacePath, 'infra', name, 'servers.yaml'), stringify({ servers }))
}
