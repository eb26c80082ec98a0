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
