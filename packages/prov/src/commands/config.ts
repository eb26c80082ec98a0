import { type CommandDef, defineProvCommand } from '@prov/core'
import { loadCommandConfig, parseSetFlags } from '@prov/core/config'

const setArg = { type: 'string', description: 'Override a key (layer 8), e.g. --set debug.enabled=true (repeatable)', valueHint: 'key=value' } as const

const show = defineProvCommand({
  meta: {
    name: 'show',
    description: 'Print the resolved configuration (--explain: every key with its layer, file and line)',
    examples: ['prov config show --explain', 'prov config show ssh.port', 'prov config show --set debug.enabled=true --out yaml'],
    mutating: false,
    uses: ['infra'],
  },
  args: {
    explain: { type: 'boolean', description: 'One record per key with the layer it came from' },
    key: { type: 'positional', description: 'Only this key (dotted path)', required: false },
    set: setArg,
  },
  async run({ args, common, emit, values }) {
    const resolved = await loadCommandConfig(common, parseSetFlags(values('set')))
    if (args.explain) {
      const prefix = args.key ? `${args.key}` : undefined
      emit(
        resolved
          .explain()
          .filter((k) => !prefix || k.key === prefix || k.key.startsWith(`${prefix}.`))
          .map((k) => ({ schema: 'prov.config.key/v1', ...k })),
      )
      return
    }
    if (args.key) {
      const value = args.key
        .split('.')
        .reduce<unknown>((node, part) => (node && typeof node === 'object' ? (node as Record<string, unknown>)[part] : undefined), resolved.config)
      if (value === undefined) {
        const { notFoundError, didYouMean } = await import('@prov/core')
        throw notFoundError(`no config key '${args.key}'`, {
          hint: didYouMean(
            args.key,
            resolved.explain().map((k) => k.key),
          ),
        })
      }
      emit(value)
      return
    }
    emit(resolved.config)
  },
})

const validate = defineProvCommand({
  meta: {
    name: 'validate',
    description: 'Load and validate every layer; exit 3 with file:line on the first problem',
    examples: ['prov config validate', 'prov config validate --env prod --infra web'],
    mutating: false,
    uses: ['infra'],
  },
  args: { set: setArg },
  async run({ common, emit, log, values }) {
    const resolved = await loadCommandConfig(common, parseSetFlags(values('set')))
    log.success('configuration is valid')
    emit({
      schema: 'prov.config.validation/v1',
      valid: true,
      workspace: resolved.workspace?.path ?? null,
      layers: resolved.layers.map((l) => ({ layer: l.name, source: l.source ?? null, keys: Object.keys(l.data).length })),
    })
  },
})

const path = defineProvCommand({
  meta: {
    name: 'path',
    description: 'The files of each layer, in priority order (lowest first)',
    examples: ['prov config path', 'prov config path --env prod --out yaml'],
    mutating: false,
  },
  async run({ common, emit }) {
    const resolved = await loadCommandConfig(common)
    emit(resolved.layers.map((l, i) => ({ schema: 'prov.config.layer/v1', priority: i + 1, layer: l.name, source: l.source ?? null })))
  },
})

export default {
  meta: { name: 'config', description: 'Show, explain and validate the layered configuration' },
  subCommands: { show, validate, path },
} satisfies CommandDef
