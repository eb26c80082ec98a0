import { readFileSync, statSync } from 'node:fs'
import { extname } from 'node:path'
import { MAX_CONFIG_FILE_BYTES, setConfiguredInputLimit } from '../limits'
import { lookupWorkspace, registryMayName, resolveWorkspace } from '../workspace'
import { dataExtensions } from './files'
import { type ConfigLayer, collectLayers, type LoadConfigOptions, locateIn } from './load'
import { getPath } from './merge'

export interface ProbedSettings {
  /** `output.format` unless `auto` or unset. */
  outputFormat?: string
  /** `file:line` (or `env:NAME`) that set `output.format`. */
  outputFormatSource?: string
  /** `limits.input_bytes` when a layer sets it. */
  inputBytes?: number
  /** `mode` when a layer sets it (unvalidated: the command's own load reports a bad one). */
  mode?: string
}

type Where = { workspace?: string; env?: string; infra?: string }

const probes = new Map<string, Promise<ProbedSettings>>()

/**
 * Reads the few settings needed before a command runs from the configuration layers, without
 * interpolating or validating them (the command's own load reports a broken configuration). The
 * parsed files are cached, so a command that loads its configuration afterwards reads them once.
 * Creates nothing anywhere.
 */
export function probeConfigSettings(where: Where): Promise<ProbedSettings> {
  const key = JSON.stringify([where.workspace ?? '', where.env ?? '', where.infra ?? '', process.cwd()])
  let probe = probes.get(key)
  if (!probe) {
    probe = (async () => {
      const layers = (await layersIfNoFileSetsProbedKeys(where)) ?? (await collectLayers(layerOptions(where, resolveWorkspace(where.workspace))))
      const highest = (path: string) => {
        for (let i = layers.length - 1; i >= 0; i--) {
          const value = getPath(layers[i].data, path)
          if (value !== undefined) return value
        }
        return undefined
      }
      const format = highest('output.format')
      const bytes = highest('limits.input_bytes')
      const mode = highest('mode')
      const settings: ProbedSettings = {
        mode: typeof mode === 'string' ? mode : undefined,
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

const layerOptions = (where: Where, workspace: { path: string } | undefined): LoadConfigOptions => ({
  workspacePath: workspace?.path,
  env: where.env,
  infra: where.infra,
})

/**
 * Parsing YAML (and loading its parser) is most of a short command's start. When neither the
 * workspace registry can redirect the workspace named on the command line nor any layer's file
 * can set a probed key, the layers without their files give the same answer: those layers.
 * Undefined when a file must be parsed.
 */
async function layersIfNoFileSetsProbedKeys(where: Where): Promise<ConfigLayer[] | undefined> {
  const named = where.workspace || process.env.PROV_WORKSPACE
  const workspace = named && !registryMayName(named) ? lookupWorkspace(named, 'flag', { workspaces: [] }) : resolveWorkspace(where.workspace)
  let mayMention = false
  const layers = await collectLayers(layerOptions(where, workspace), async (file) => {
    mayMention ||= mayMentionProbedKeys(file)
    return undefined
  })
  return mayMention ? undefined : layers
}

/**
 * Whether a configuration file could set a probed key. A data file can spell a key only as its
 * text or through an escape (`\u0066ormat`), so one with neither cannot; a code file, an
 * oversized or an unreadable one is read the usual way (which reports it as before).
 */
function mayMentionProbedKeys(file: string): boolean {
  if (!(dataExtensions as readonly string[]).includes(extname(file))) return true
  try {
    if (statSync(file).size > MAX_CONFIG_FILE_BYTES) return true
    // `mode` is a top-level key: a line that starts with it (YAML, TOML) or a JSON member.
    return /format|input_bytes|\\|^mode\s*[:=]|"mode"/im.test(readFileSync(file, 'utf8'))
  } catch {
    return true
  }
}
