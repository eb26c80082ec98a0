import { chmodSync, existsSync, readdirSync, readFileSync, statSync, writeFileSync } from 'node:fs'
import { join } from 'node:path'
import { expect } from 'vitest'
import { type CliOptions, type CliResult, runCli, tempEnv, tempWorkspace } from '../../../tests/helpers/cli'

export { runCli, tempEnv, tempWorkspace }

export const fixtures = join(import.meta.dirname, 'fixtures')

/** Runs prov-kms (the built dist, or the source with PROV_DEV=1 in the environment). */
export function kms(args: string[], options: CliOptions = {}): Promise<CliResult> {
  return runCli('prov-kms', args, { timeoutMs: 120_000, ...options })
}

/** Every file under root that looks like a log. */
function logFiles(root: string, out: string[] = []): string[] {
  if (!existsSync(root)) return out
  for (const entry of readdirSync(root, { withFileTypes: true })) {
    const full = join(root, entry.name)
    if (entry.isDirectory()) logFiles(full, out)
    else if (/\.log$|\.ndjson$/.test(entry.name) || full.includes('/logs/')) out.push(full)
  }
  return out
}

/** A secret value must never appear on stderr nor in any log file under the roots. */
export function expectNoLeak(results: CliResult[], secrets: string[], roots: string[] = []): void {
  for (const result of results) for (const secret of secrets) expect(result.stderr, `stderr leaks a secret`).not.toContain(secret)
  for (const root of roots) {
    for (const file of logFiles(root)) {
      const text = readFileSync(file, 'utf8')
      for (const secret of secrets) expect(text, `${file} leaks a secret`).not.toContain(secret)
    }
  }
}

/** One clear line on stderr. */
export function expectOneErrorLine(result: Pick<CliResult, 'stderr'> & { code: number | null }, code: number, pattern?: RegExp): void {
  expect(result.code, result.stderr).toBe(code)
  const lines = result.stderr.trim().split('\n').filter(Boolean)
  expect(lines.length, result.stderr).toBe(1)
  expect(lines[0]).toMatch(/^prov-kms: error: /)
  if (pattern) expect(lines[0]).toMatch(pattern)
}

export function recipientOf(identityFile: string): string {
  const line = readFileSync(identityFile, 'utf8')
    .split('\n')
    .find((l) => l.startsWith('# public key: '))
  if (!line) throw new Error(`no public key in ${identityFile}`)
  return line.slice('# public key: '.length).trim()
}

export function modeOf(file: string): number {
  return statSync(file).mode & 0o777
}

export function makeWorldReadable(file: string): void {
  chmodSync(file, 0o644)
}

/**
 * A prov-kms runner in the environment `context()` gives at call time (a workspace made in
 * beforeAll, say) that keeps every result, for the no-leak check.
 */
export function recordingKms(context: () => { env: Record<string, string | undefined>; root: string }) {
  const results: CliResult[] = []
  const run = async (args: string[], input?: string | Buffer, extra: Record<string, string | undefined> = {}) => {
    const { env, root } = context()
    const result = await kms(args, { env: { ...env, ...extra }, input, cwd: root })
    results.push(result)
    return result
  }
  return { results, run }
}

/** A temporary environment with a runner that keeps every result (for the no-leak check) and a file writer. */
export function kmsSession(prefix: string) {
  const env = tempEnv(prefix)
  const { results, run } = recordingKms(() => env)
  const file = (name: string, text: string) => {
    const path = join(env.root, name)
    writeFileSync(path, text)
    return path
  }
  return { env, results, run, file }
}
