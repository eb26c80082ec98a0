import {
  type CommandDef,
  configError,
  type DependencyNode,
  defineProvCommand,
  dependencyTree,
  discoverExtensions,
  drawDependencyTree,
  type ExtensionKind,
  extensionKinds,
  type ParsedInput,
  PROV_VERSION,
  resolveDependencies,
  resolveWorkspace,
  usageError,
  validateCatalog,
  writeStdout,
} from '@prov/core'

const kindArg = { type: 'enum' as const, options: [...extensionKinds] as string[], description: 'Extension kind', default: 'taskserv' }

function catalogFor(kind: string, workspace?: string, infra?: string): DependencyNode[] {
  if (!extensionKinds.includes(kind as ExtensionKind)) throw usageError(`unknown extension kind '${kind}'`, { hint: `use ${extensionKinds.join(', ')}` })
  return discoverExtensions(kind as ExtensionKind, { workspacePath: workspace, infra }).map((e) => e.manifest)
}

/** Names from piped records (`prov ext list | prov deps resolve`): each record's `name`. */
async function namesFromStdin(stdin: () => Promise<ParsedInput | undefined>): Promise<string[]> {
  const input = await stdin()
  if (!input) return []
  return input.records.map((record, index) => {
    const name = record && typeof record === 'object' ? (record as Record<string, unknown>).name : undefined
    if (typeof name !== 'string')
      throw usageError(`stdin record ${index + 1} has no 'name'`, { location: `stdin[${index}]`, hint: 'pipe prov ext list --out json records' })
    return name
  })
}

const resolve = defineProvCommand({
  meta: {
    name: 'resolve',
    description: 'Order a set of extensions (and their requirements) in levels; each level can run in parallel',
    usage: '[NAME...]',
    examples: ['prov deps resolve kubernetes cilium', 'prov ext list --kind taskserv --out json | prov deps resolve'],
    mutating: false,
    uses: ['infra'],
  },
  args: { kind: kindArg },
  async run({ args, positionals, common, emit, stdin }) {
    const names = positionals.length ? positionals : await namesFromStdin(stdin)
    if (!names.length) throw usageError('name at least one extension', { hint: 'prov deps resolve kubernetes cilium, or pipe prov ext list records' })
    const ws = resolveWorkspace(common.workspace)
    emit(resolveDependencies(names, catalogFor(args.kind, ws?.path, common.infra), { provVersion: PROV_VERSION }))
  },
})

const tree = defineProvCommand({
  meta: {
    name: 'tree',
    description: 'The requirement tree of extensions',
    usage: 'NAME...',
    examples: ['prov deps tree kubernetes', 'prov deps tree cilium --out json'],
    mutating: false,
    uses: ['infra'],
  },
  args: { kind: kindArg },
  run({ args, positionals, common, emit }) {
    if (!positionals.length) throw usageError('name at least one extension', { hint: 'prov deps tree kubernetes' })
    const ws = resolveWorkspace(common.workspace)
    const catalog = catalogFor(args.kind, ws?.path, common.infra)
    const trees = positionals.map((name) => ({ schema: 'prov.deps.tree/v1', ...dependencyTree(name, catalog) }))
    if (common.out === 'table') {
      // A person at a terminal: the tree drawn, ASCII-only where the terminal cannot draw lines.
      const ascii = process.env.TERM === 'dumb' || !/UTF-?8/i.test(`${process.env.LC_ALL ?? ''}${process.env.LC_CTYPE ?? ''}${process.env.LANG ?? ''}`)
      writeStdout(trees.map((t) => drawDependencyTree(t, { ascii })).join('\n'))
      return
    }
    emit(trees.length === 1 ? trees[0] : trees)
  },
})

const validate = defineProvCommand({
  meta: {
    name: 'validate',
    description: 'Check manifests: requirements exist and match, no cycles or conflicts (exit 3 if not)',
    usage: '[NAME...]',
    examples: ['prov deps validate', 'prov deps validate redis postgres'],
    mutating: false,
    uses: ['infra'],
  },
  args: { kind: kindArg },
  run({ args, positionals, common, emit, log }) {
    const ws = resolveWorkspace(common.workspace)
    const catalog = catalogFor(args.kind, ws?.path, common.infra)
    const selected = positionals.length ? catalog.filter((n) => positionals.includes(n.name)) : catalog
    if (positionals.length && selected.length < positionals.length) {
      resolveDependencies(positionals, catalog) // throws the precise "unknown" error
    }
    const problems = validateCatalog(catalog, PROV_VERSION).filter((p) => selected.some((s) => s.name === p.extension))
    emit({ schema: 'prov.deps.validation/v1', valid: problems.length === 0, checked: selected.map((s) => s.name), problems })
    if (problems.length) {
      throw configError(`${problems.length} extension(s) with dependency problems: ${problems[0].extension}: ${problems[0].problem}`)
    }
    log.success(`${selected.length} ${args.kind}(s) valid`)
  },
})

export default {
  meta: { name: 'deps', description: 'Dependency resolution of extensions' },
  subCommands: { resolve, tree, validate },
} satisfies CommandDef
