import { setConfiguredInputLimit } from '../limits'
import { resolveWorkspace } from '../workspace'
import { collectLayers, locateIn } from './load'
import { getPath } from './merge'

export interface ProbedSettings {
  /** `output.format` unless `auto` or unset. */
  outputFormat?: string
  /** `file:line` (or `env:NAME`) that set `output.format`. */
  outputFormatSource?: string
  /** `limits.input_bytes` when a layer sets it. */
  inputBytes?: number
}

const probes = new Map<string, Promise<ProbedSettings>>()

/**
 * Reads the few settings needed before a command runs from the configuration layers, without
 * interpolating or validating them (the command's own load reports a broken configuration). The
 * parsed files are cached, so a command that loads its configuration afterwards reads them once.
 * Creates nothing anywhere.
 */
export function probeConfigSettings(where: { workspace?: string; env?: string; infra?: string }): Promise<ProbedSettings> {
  const key = JSON.stringify([where.workspace ?? '', where.env ?? '', where.infra ?? '', process.cwd()])
  let probe = probes.get(key)
  if (!probe) {
    probe = (async () => {
      const workspace = resolveWorkspace(where.workspace)
      const layers = await collectLayers({ workspacePath: workspace?.path, env: where.env, infra: where.infra })
      const highest = (path: string) => {
        for (let i = layers.length - 1; i >= 0; i--) {
          const value = getPath(layers[i].data, path)
          if (value !== undefined) return value
        }
        return undefined
      }
      const format = highest('output.format')
      const bytes = highest('limits.input_bytes')
      const settings: ProbedSettings = {
        outputFormat: typeof format === 'string' && format !== 'auto' && !format.includes('{{') ? format : undefined,
        outputFormatSource: locateIn(layers, 'output.format'),
        inputBytes: typeof bytes === 'number' && Number.isInteger(bytes) && bytes > 0 ? bytes : undefined,
      }
      if (settings.inputBytes !== undefined) setConfiguredInputLimit(settings.inputBytes)
      return settings
    })()
    probes.set(key, probe)
  }
  return probe
}
