import type { CommonOptions } from '../command'
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

/** Parses repeated `--set key=value` words into dotted flags (values as in env overrides). */
export function parseSetFlags(values: string[]): Record<string, unknown> {
  const out: Record<string, unknown> = {}
  for (const item of values) {
    const eq = item.indexOf('=')
    if (eq <= 0) continue
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
    }
    out[item.slice(0, eq)] = value
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
