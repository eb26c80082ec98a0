import { readFileSync } from 'node:fs'
import { join } from 'node:path'
import { type CommandDef, configError, defineProvCommand, usageError, writeFileAtomic } from '@prov/core'
import type { CommandConfig } from '@prov/core/config'

const MODE_NAMES = ['solo', 'multi-user', 'ci', 'enterprise']

/** The mode, where it was chosen, what its layer sets, and each of its rules with whether this setup keeps it. */
async function describeMode(resolved: CommandConfig) {
  const { flattenLeaves, modePresets, modeRules } = await import('@prov/core/config')
  const mode = resolved.config.mode
  const origin = resolved.origin('mode')
  return {
    schema: 'prov.mode/v1',
    mode,
    chosen_in: origin && origin.layer !== 'defaults' ? (origin.line ? `${origin.source}:${origin.line}` : (origin.source ?? origin.layer)) : 'default',
    sets: Object.fromEntries(flattenLeaves(modePresets[mode])),
    rules: modeRules(mode, resolved.config).map(({ rule, key, ok, hint }) => ({ rule, key, ok, ...(ok ? {} : { hint }) })),
  }
}

const show = defineProvCommand({
  meta: {
    name: 'show',
    description: 'The mode of this workspace, where it was chosen, what it sets and whether its rules are kept',
    examples: ['prov mode show', 'prov mode show --out json'],
    mutating: false,
  },
  async run({ common, emit }) {
    const { loadCommandConfig } = await import('@prov/core/config')
    emit(await describeMode(await loadCommandConfig(common)))
  },
})

const set = defineProvCommand({
  meta: {
    name: 'set',
    description: 'Choose the mode of this workspace (writes mode: in its prov.config.yaml or .json)',
    examples: ['prov mode set multi-user', 'prov mode set solo --check'],
    mutating: true,
  },
  args: { mode: { type: 'positional', description: 'solo, multi-user, ci or enterprise', required: true, valueHint: 'MODE' } },
  async run({ positionals, common, emit, log }) {
    const mode = positionals[0]
    if (!mode || !MODE_NAMES.includes(mode)) {
      throw usageError(mode ? `unknown mode '${mode}'` : 'name a mode', { location: 'mode', hint: `one of ${MODE_NAMES.join(', ')}` })
    }
    if (positionals.length > 1) throw usageError(`unexpected argument '${positionals[1]}'`, { hint: 'prov mode set MODE' })
    const { findConfigFile, loadCommandConfig, withTopLevelKey } = await import('@prov/core/config')
    const before = await loadCommandConfig(common)
    if (!before.workspace) throw configError('no workspace here to set a mode in', { location: 'mode', hint: 'cd into a workspace, or -w NAME' })
    const file = findConfigFile(join(before.workspace.path, 'prov.config'), ['.ts', '.mts', '.js', '.mjs', '.yaml', '.yml', '.toml', '.json'])
    if (!file || !/\.(ya?ml|json)$/.test(file)) {
      throw configError(`cannot edit ${file ?? 'a missing prov.config file'} safely`, {
        location: file ?? before.workspace.path,
        hint: `add ${file?.endsWith('.toml') ? `mode = "${mode}"` : /\.[mc]?[jt]s$/.test(file ?? '') ? `mode: '${mode}'` : `mode: ${mode}`} to it yourself`,
      })
    }
    const text = readFileSync(file, 'utf8')
    const next = withTopLevelKey(file, text, 'mode', mode) as string
    if (!common.check) writeFileAtomic(file, next)
    // --check: what the mode would be, as if chosen on the command line; nothing written.
    const after = await loadCommandConfig(common, common.check ? { mode } : {})
    const described = await describeMode(after)
    for (const r of described.rules) if (!r.ok) log.warn(`mode ${mode} requires ${r.rule} (${r.key}); ${r.hint}`)
    emit({ ...described, file, changed: !common.check && text !== next })
  },
})

export default {
  meta: { name: 'mode', description: 'Modes (solo, multi-user, ci, enterprise): presets over storage, auth and policy' },
  subCommands: { show, set },
} as CommandDef
