import { existsSync } from 'node:fs'
import { homedir } from 'node:os'
import { join } from 'node:path'

/**
 * Test tools that are not project dependencies (they would pin other platforms' binaries into the
 * lockfile) live in a cache directory that `scripts/setup.sh` fills: one folder per tool version.
 */
export function toolsDir(): string {
  if (process.env.PROV_TOOLS_DIR) return process.env.PROV_TOOLS_DIR
  return join(process.env.XDG_CACHE_HOME || join(homedir(), '.cache'), 'prov', 'tools')
}

/** The nu versions the tests cover; the first is the default. */
export const NU_VERSIONS = ['0.108.0', '0.115.1'] as const
export type NuVersion = (typeof NU_VERSIONS)[number]

/** Path of the real `nu` binary of that version, installed by `scripts/setup.sh`; throws when missing. */
export function nuPath(version: NuVersion = NU_VERSIONS[0]): string {
  const path = join(toolsDir(), `nushell-${version}`, 'node_modules', '@nushell', 'linux-x64', 'bin', 'nu')
  if (!existsSync(path)) throw new Error(`nu ${version} is not installed at ${path}: run scripts/setup.sh`)
  return path
}

/** Path of the real `just` (rust-just 1.57.0), installed by `scripts/setup.sh`; throws when missing. */
export function justPath(): string {
  const path = join(toolsDir(), 'just-1.57.0', 'node_modules', '.bin', 'just')
  if (!existsSync(path)) throw new Error(`just is not installed at ${path}: run scripts/setup.sh`)
  return path
}
