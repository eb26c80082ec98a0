import type { CommonOptions } from '../command'
import { configError, ExitCode, usageError } from '../errors'
import { assertSafeStructure, PROTOTYPE_KEYS } from '../util/structure'
import { resolveWorkspace, type Workspace } from '../workspace'
import { loadConfig, type ResolvedConfig } from './load'

export interface CommandConfig extends ResolvedConfig {
  workspace?: Workspace
}

/** Flags that are also config keys (layer 8). */
export function flagLayer(common: Partial<CommonOptions>, extra: Record<string, unknown> = {}): Record<string, unknown> {
  const flags: Record<string, unknown> = { ...extra }
  if (common.debug) flags['debug.enabled'] = true
  if (common.check) flags['debug.check'] = true
  return flags
}

/**
 * Parses repeated `--set key=value` words into dotted flags (values as in env overrides). A word
 * without `=` or with a prototype key (`__proto__`, `constructor`, `prototype`) is refused.
 */
export function parseSetFlags(values: string[]): Record<string, unknown> {
  const out: Record<string, unknown> = {}
  for (const item of values) {
    const eq = item.indexOf('=')
    if (eq <= 0) throw usageError(`--set needs key=value, got '${item}'`, { location: '--set', hint: 'e.g. --set debug.enabled=true' })
    const key = item.slice(0, eq)
    const bad = key.split('.').find((part) => PROTOTYPE_KEYS.has(part))
    if (bad) {
      throw configError(`forbidden key '${bad}' in --set ${key}`, {
        location: `--set ${key}`,
        hint: "'__proto__', 'constructor' and 'prototype' are never valid config keys",
      })
    }
    if (key.split('.').some((part) => !part)) throw usageError(`--set key '${key}' has an empty part`, { location: `--set ${key}` })
    const raw = item.slice(eq + 1)
    let value: unknown = raw
    if (raw === 'true' || raw === 'false') value = raw === 'true'
    else if (/^-?\d+(\.\d+)?$/.test(raw)) value = Number(raw)
    else if (/^[[{]/.test(raw)) {
      try {
        value = JSON.parse(raw)
      } catch {
        value = raw
      }
      assertSafeStructure(value, { source: `--set ${key}`, keyCode: ExitCode.CONFIG })
    }
    out[key] = value
  }
  return out
}

/** The configuration of a command: its workspace (if any) plus the eight layers. */
export async function loadCommandConfig(common: Partial<CommonOptions>, extraFlags: Record<string, unknown> = {}): Promise<CommandConfig> {
  const workspace = resolveWorkspace(common.workspace)
  const resolved = await loadConfig({
    workspacePath: workspace?.path,
    env: common.env,
    infra: common.infra,
    flags: flagLayer(common, extraFlags),
  })
  return Object.assign(resolved, { workspace })
}
