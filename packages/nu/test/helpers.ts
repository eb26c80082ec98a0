import { spawn } from 'node:child_process'
import { readdirSync, readFileSync } from 'node:fs'
import { join } from 'node:path'
import { binDir } from '../../../tests/helpers/cli'
import { type NuVersion, nuPath } from '../../../tests/helpers/tools'

export const pluginPath = join(binDir, 'nu_plugin_prov')

export interface NuResult {
  code: number
  stdout: string
  stderr: string
}

const ansi = /\x1b\[[0-9;]*[A-Za-z]/g

/**
 * Runs a script in the real `nu` of that version with the plugin loaded for this run only (no
 * registry file, no config): `nu -n --plugins [bin/nu_plugin_prov] -c SCRIPT`.
 */
export function runNu(
  version: NuVersion,
  script: string,
  options: { env?: Record<string, string | undefined>; cwd?: string; plugin?: boolean; timeoutMs?: number } = {},
): Promise<NuResult> {
  const args = ['-n', ...(options.plugin === false ? [] : ['--plugins', `[${pluginPath}]`]), '-c', script]
  return new Promise((resolve, reject) => {
    const child = spawn(nuPath(version), args, {
      cwd: options.cwd,
      env: Object.fromEntries(Object.entries({ ...process.env, NO_COLOR: '1', ...options.env }).filter(([, v]) => v !== undefined)) as NodeJS.ProcessEnv,
      stdio: ['ignore', 'pipe', 'pipe'],
    })
    const out: Buffer[] = []
    const err: Buffer[] = []
    child.stdout.on('data', (d: Buffer) => out.push(d))
    child.stderr.on('data', (d: Buffer) => err.push(d))
    const timer = setTimeout(() => child.kill('SIGKILL'), options.timeoutMs ?? 120_000)
    child.on('error', reject)
    child.on('close', (code) => {
      clearTimeout(timer)
      resolve({
        code: code ?? 1,
        stdout: Buffer.concat(out).toString('utf8').replace(ansi, ''),
        stderr: Buffer.concat(err).toString('utf8').replace(ansi, ''),
      })
    })
  })
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
