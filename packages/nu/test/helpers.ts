import { spawn } from 'node:child_process'
import { readdirSync, readFileSync } from 'node:fs'
import { join } from 'node:path'
import { binDir, type CliResult, runProcess } from '../../../tests/helpers/cli'
import { type NuVersion, nuPath } from '../../../tests/helpers/tools'

export const pluginPath = join(binDir, 'nu_plugin_prov')

const ansi = /\x1b\[[0-9;]*[A-Za-z]/g

/**
 * Runs a script in the real `nu` of that version with the plugin loaded for this run only (no
 * registry file, no config): `nu -n --plugins [bin/nu_plugin_prov] -c SCRIPT`.
 */
export async function runNu(
  version: NuVersion,
  script: string,
  options: { env?: Record<string, string | undefined>; cwd?: string; plugin?: boolean; timeoutMs?: number } = {},
): Promise<CliResult> {
  const args = ['-n', ...(options.plugin === false ? [] : ['--plugins', `[${pluginPath}]`]), '-c', script]
  const result = await runProcess(nuPath(version), args, options)
  return { ...result, stdout: result.stdout.replace(ansi, ''), stderr: result.stderr.replace(ansi, '') }
}

/** Processes whose environment holds `NAME=value` (marks what one test started). */
export function processesMarked(name: string, value: string): number[] {
  const found: number[] = []
  for (const entry of readdirSync('/proc')) {
    if (!/^\d+$/.test(entry) || Number(entry) === process.pid) continue
    try {
      if (readFileSync(`/proc/${entry}/environ`, 'latin1').split('\0').includes(`${name}=${value}`)) found.push(Number(entry))
    } catch {
      // gone, or not ours to read
    }
  }
  return found
}

/** Waits until no process carries the mark (or gives up after `limitMs` and returns those left). */
export async function markedProcessesAfter(name: string, value: string, limitMs = 10_000): Promise<number[]> {
  const until = Date.now() + limitMs
  let left = processesMarked(name, value)
  while (left.length && Date.now() < until) {
    await new Promise((r) => setTimeout(r, 100))
    left = processesMarked(name, value)
  }
  return left
}

/**
 * What the interactive `nu` of that version offers on Tab after `typed` (its line editor needs a
 * terminal: util-linux `script` gives it one). `before` runs first as its own line (`cd ws`).
 */
export async function completionsInNu(
  version: NuVersion,
  typed: string,
  options: { before?: string; env?: Record<string, string | undefined>; cwd?: string } = {},
): Promise<string> {
  const nuCommand = [nuPath(version), '-n', '--no-history', '--plugins', `'[${pluginPath}]'`, '-e', `'$env.config.show_banner = false'`].join(' ')
  const env: Record<string, string> = {}
  for (const [name, value] of Object.entries({ ...process.env, TERM: 'xterm', ...options.env })) if (value !== undefined) env[name] = value
  const child = spawn('script', ['-qfec', nuCommand, '/dev/null'], { cwd: options.cwd, env, stdio: ['pipe', 'pipe', 'pipe'] })
  let out = ''
  child.stdout.setEncoding('utf8')
  child.stdout.on('data', (chunk: string) => {
    out += chunk
    // The line editor asks where the cursor is before it draws; answer like a terminal would.
    for (let i = 0; i < chunk.split('\x1b[6n').length - 1; i++) child.stdin.write('\x1b[1;1R')
  })
  const pause = (ms: number) => new Promise((r) => setTimeout(r, ms))
  const settle = async (ms: number) => {
    let seen = -1
    const until = Date.now() + ms
    while (Date.now() < until && seen !== out.length) {
      seen = out.length
      await pause(400)
    }
  }
  try {
    await settle(8000)
    if (options.before) {
      child.stdin.write(`${options.before}\r`)
      await settle(8000)
    }
    child.stdin.write(typed)
    await settle(3000)
    const mark = out.length
    child.stdin.write('\t')
    // The first Tab may start the plugin: wait for the answer to begin, then for it to end.
    for (const until = Date.now() + 8000; out.length === mark && Date.now() < until; ) await pause(100)
    await settle(8000)
    const menu = out.slice(mark)
    child.stdin.write('\x03')
    await pause(200)
    child.stdin.write('exit\r')
    return menu
      .replace(/\x1b\][^\x07\x1b]*(\x07|\x1b\\)/g, '')
      .replace(/\x1b\[[0-9;?]*[A-Za-z]|\x1b[78]/g, '')
      .replace(/\r/g, '')
  } finally {
    await Promise.race([new Promise((r) => child.once('close', r)), pause(3000)])
    if (child.exitCode === null) child.kill('SIGKILL')
  }
}
