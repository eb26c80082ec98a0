import { existsSync, readFileSync, statSync } from 'node:fs'
import { dirname, join } from 'node:path'
import { fileURLToPath, pathToFileURL } from 'node:url'
import type { ArgsDef, CommandDef } from 'citty'

/**
 * The prov commands as one neutral model, read from the citty command trees of every binary (the
 * same definitions `--help` prints), for the Nushell plugin and the shell completions.
 */

/** The binaries and the words that name them under `prov` (`prov-server list` = `prov server list`). */
export const binaries = [
  { program: 'prov', pkg: 'prov', word: undefined },
  { program: 'prov-server', pkg: 'server', word: 'server' },
  { program: 'prov-taskserv', pkg: 'taskserv', word: 'taskserv' },
  { program: 'prov-kms', pkg: 'kms', word: 'kms' },
  { program: 'prov-oci', pkg: 'oci', word: 'oci' },
  { program: 'prov-orch', pkg: 'orch', word: 'orch' },
] as const

export type Binary = (typeof binaries)[number]

export interface PositionalSpec {
  name: string
  description: string
  required: boolean
  /** Takes every remaining word (`NAME...`). */
  rest: boolean
  default?: string
  /** Not declared by the command: any words, passed on for the command to check. */
  undeclared?: boolean
}

export interface FlagSpec {
  /** Long name without dashes (`workspace`). */
  long: string
  /** One-letter alias, if any (`w`). */
  short?: string
  /** Longer aliases (`output` for `out`). */
  aliases: string[]
  /** A switch, or a flag that takes a value. */
  type: 'boolean' | 'string'
  description: string
  default?: string | boolean
  /** The values the flag accepts, when the definition lists them. */
  options?: string[]
  /** May be given more than once (the definition says "repeatable"). */
  repeatable: boolean
  /** Takes a whole number (the definition's value hint is `N`). */
  integer?: boolean
  /** One of the flags every prov command has (`--workspace`, `--out`, …). */
  common: boolean
}

/** What the command definitions declare beyond citty's fields (optional until every command has it). */
export interface CommandMetadata {
  mutating?: boolean
  destructive?: boolean
  examples?: string[]
  hidden?: boolean
  usage?: string
}

export interface CommandSpec {
  /** The name under `prov`: `prov server list`. */
  name: string
  /** The binary that runs it: `prov-server`. */
  program: string
  /** Words after the binary: `['list']`. */
  path: string[]
  description: string
  /** A group only lists its subcommands. */
  group: boolean
  subcommands: string[]
  positionals: PositionalSpec[]
  flags: FlagSpec[]
  metadata: CommandMetadata
  /**
   * Takes a command to run after `--` (`prov-server exec all -- hostname`): `required` when every
   * example gives one, `optional` when only some do.
   */
  dashCommand?: 'required' | 'optional'
}

type Resolvable<T> = T | Promise<T> | (() => T | Promise<T>)

async function resolve<T>(value: Resolvable<T>): Promise<T> {
  return typeof value === 'function' ? await (value as () => T | Promise<T>)() : await value
}

let root: string | undefined
/** The prov installation this module belongs to (the folder with bin/ and packages/). */
export function installRoot(): string {
  if (root) return root
  let dir = dirname(fileURLToPath(import.meta.url))
  for (let i = 0; i < 6 && !(existsSync(join(dir, 'bin')) && existsSync(join(dir, 'packages'))); i++) dir = dirname(dir)
  root = dir
  return root
}

const treeCache = new Map<string, Promise<CommandDef<any>>>()

function treeFile(binary: Binary): string {
  return join(installRoot(), 'packages', binary.pkg, 'dist', 'tree.mjs')
}

/** A binary's command tree (`packages/<pkg>/dist/tree.mjs`; its subcommands still load lazily). */
export function loadTree(binary: Binary): Promise<CommandDef<any>> {
  let tree = treeCache.get(binary.pkg)
  if (!tree) {
    tree = (async () => {
      const built = treeFile(binary)
      if (!existsSync(built)) throw new Error(`${built} is missing: run 'npm run build'`)
      const module = (await import(pathToFileURL(built).href)) as { main: CommandDef<any> }
      return module.main
    })()
    treeCache.set(binary.pkg, tree)
  }
  return tree
}

const commonFlagNames = new Set(['workspace', 'infra', 'env', 'check', 'yes', 'wait', 'parallel', 'out', 'quiet', 'debug', 'log-format', 'via-orch', 'direct'])

/**
 * The flags of a command as its help shows them: its own, and of the common ones only those that
 * mean something for it (every prov command parses all common flags; `--wait` on `config show`
 * would be accepted and ignored, so it is not offered).
 */
function flagSpecs(args: ArgsDef, hiddenCommon: Set<string>): FlagSpec[] {
  const flags: FlagSpec[] = []
  for (const [long, arg] of Object.entries(args)) {
    if (arg.type === 'positional' || hiddenCommon.has(long)) continue
    const aliases = ('alias' in arg && arg.alias ? [arg.alias].flat() : []) as string[]
    const description = arg.description ?? ''
    const options = 'options' in arg && Array.isArray(arg.options) ? arg.options.map(String) : undefined
    if (arg.type === 'boolean' && arg.default === true) {
      // A switch that is on by default is only ever given to turn it off: `--no-NAME`.
      const negative = ('negativeDescription' in arg && typeof arg.negativeDescription === 'string' && arg.negativeDescription) || `Turn off: ${description}`
      flags.push({ long: `no-${long}`, aliases: [], type: 'boolean', description: negative, repeatable: false, common: false })
      continue
    }
    flags.push({
      long,
      short: aliases.find((a) => a.length === 1),
      aliases: aliases.filter((a) => a.length > 1),
      type: arg.type === 'boolean' ? 'boolean' : 'string',
      description,
      default: 'default' in arg && (typeof arg.default === 'string' || typeof arg.default === 'boolean') ? arg.default : undefined,
      options,
      repeatable: /\brepeat(able|ed)?\b/i.test(description),
      integer: 'valueHint' in arg && arg.valueHint === 'N' ? true : undefined,
      common: commonFlagNames.has(long),
    })
  }
  return flags
}

/** `<ID>`, `[FILE]`, `NAME...` words of a USAGE line. */
function positionalsFromUsage(usage: string): PositionalSpec[] {
  return usage
    .split(/\s+/)
    .filter((word) => word && !word.startsWith('-') && word !== '--')
    .map((word) => {
      const rest = word.includes('...')
      const required = word.startsWith('<')
      const name = word.replace(/[<>[\].]/g, '').toLowerCase() || 'args'
      return { name, description: '', required: required && !rest, rest }
    })
}

/** Whether the examples give the command words after `--`: in every one, in some, or in none. */
export function dashCommandOf(examples: string[], heads: string[][]): CommandSpec['dashCommand'] {
  const own = examples
    .map((example) => (example.split(/\s(?:\||&&|;|<|>)\s/)[0].match(/"[^"]*"|'[^']*'|\S+/g) ?? []) as string[])
    .filter((words) => heads.some((h) => h.every((word, i) => words[i] === word)))
  const given = own.filter((words) => words.includes('--')).length
  if (!given) return undefined
  return given === own.length ? 'required' : 'optional'
}

/**
 * Whether an example gives the command words that are neither options nor their values (the
 * command reads positionals it does not declare, like a workflow id). `heads` are the spellings
 * of the command (`prov-orch cancel`, `prov orch cancel`).
 */
export function examplesGiveWords(args: ArgsDef, examples: string[], heads: string[][]): boolean {
  const takesValue = new Set<string>()
  for (const [name, arg] of Object.entries(args)) {
    if (arg.type === 'positional' || arg.type === 'boolean') continue
    const aliases = ('alias' in arg && arg.alias ? [arg.alias].flat() : []) as string[]
    for (const word of [name, ...aliases]) takesValue.add(word.length === 1 ? `-${word}` : `--${word}`)
  }
  for (const example of examples) {
    const words = (example.split(/\s(?:\||&&|;|<|>)\s/)[0].match(/"[^"]*"|'[^']*'|\S+/g) ?? []) as string[]
    const head = heads.find((h) => h.every((word, i) => words[i] === word))
    if (!head) continue
    for (let i = head.length; i < words.length; i++) {
      const word = words[i]
      if (word === '--') break
      if (!word.startsWith('-')) return true
      if (!word.includes('=') && takesValue.has(word)) i++
    }
  }
  return false
}

function positionalSpecs(args: ArgsDef, metadata: CommandMetadata, heads: string[][]): PositionalSpec[] {
  const declared: PositionalSpec[] = []
  for (const [name, arg] of Object.entries(args)) {
    if (arg.type !== 'positional') continue
    const hint = ('valueHint' in arg && arg.valueHint) || ''
    declared.push({
      name,
      description: arg.description ?? '',
      required: arg.required !== false && arg.default === undefined,
      rest: hint.endsWith('...') || name === 'names',
      default: typeof arg.default === 'string' ? arg.default : undefined,
    })
  }
  if (!declared.length && metadata.usage) return positionalsFromUsage(metadata.usage)
  // A command described by the full metadata declares every word it takes, unless its examples
  // show words it does not declare; older definitions may read words they do not declare (`deps
  // resolve NAME...`): those accept any, the command checks.
  if (!declared.length && (metadata.mutating === undefined || examplesGiveWords(args, metadata.examples ?? [], heads))) {
    return [{ name: 'args', description: 'Arguments (see the command help)', required: false, rest: true, undeclared: true }]
  }
  // Only the last positional can take the remaining words; a required one after an optional is optional.
  let optionalSeen = false
  return declared.map((p, i) => {
    optionalSeen ||= !p.required
    return { ...p, required: p.required && !optionalSeen, rest: p.rest && i === declared.length - 1 }
  })
}

function metadataOf(meta: Record<string, unknown>): CommandMetadata {
  const pick = <T>(key: string, check: (v: unknown) => boolean) => (check(meta[key]) ? (meta[key] as T) : undefined)
  return {
    mutating: pick<boolean>('mutating', (v) => typeof v === 'boolean'),
    destructive: pick<boolean>('destructive', (v) => typeof v === 'boolean'),
    examples: pick<string[]>('examples', (v) => Array.isArray(v) && v.every((e) => typeof e === 'string')),
    hidden: pick<boolean>('hidden', (v) => typeof v === 'boolean'),
    usage: pick<string>('usage', (v) => typeof v === 'string'),
  }
}

async function hiddenCommonFlags(meta: Record<string, unknown>): Promise<Set<string>> {
  const { commonArgs, shownGlobals } = await import('@prov/core')
  const shown = new Set(shownGlobals(meta as unknown as Parameters<typeof shownGlobals>[0]))
  return new Set(Object.keys(commonArgs).filter((name) => !shown.has(name)))
}

async function specOf(binary: Binary, path: string[], command: CommandDef<any>): Promise<CommandSpec> {
  const meta = ((await resolve(command.meta as Resolvable<Record<string, unknown> | undefined>)) ?? {}) as Record<string, unknown>
  const args = ((await resolve(command.args as Resolvable<ArgsDef | undefined>)) ?? {}) as ArgsDef
  const subs = (await resolve(command.subCommands as Resolvable<Record<string, unknown> | undefined>)) ?? {}
  const metadata = metadataOf(meta)
  const group = !command.run && Object.keys(subs).length > 0
  const heads = [
    [binary.program, ...path],
    ['prov', ...(binary.word ? [binary.word] : []), ...path],
  ]
  const dashCommand = group ? undefined : dashCommandOf(metadata.examples ?? [], heads)
  return {
    name: ['prov', ...(binary.word ? [binary.word] : []), ...path].join(' '),
    program: binary.program,
    path,
    description: typeof meta.description === 'string' ? meta.description : '',
    group,
    subcommands: Object.keys(subs),
    positionals: group ? [] : positionalSpecs(args, metadata, heads),
    flags: group ? [] : flagSpecs(args, await hiddenCommonFlags(meta)),
    metadata,
    ...(dashCommand ? { dashCommand } : {}),
  }
}

async function subcommandOf(command: CommandDef<any>, word: string): Promise<CommandDef<any> | undefined> {
  const subs = (await resolve(command.subCommands as Resolvable<Record<string, Resolvable<CommandDef<any>>> | undefined>)) ?? {}
  return Object.hasOwn(subs, word) ? resolve(subs[word]) : undefined
}

/** Every command of one binary, groups included, depth first (loads every subcommand module). */
export async function binarySpecs(binary: Binary): Promise<CommandSpec[]> {
  const specs: CommandSpec[] = []
  const walk = async (path: string[], command: CommandDef<any>): Promise<boolean> => {
    const spec = await specOf(binary, path, command)
    if (spec.metadata.hidden) return false
    specs.push(spec)
    const shown: string[] = []
    for (const word of spec.subcommands) {
      const sub = await subcommandOf(command, word)
      if (sub && (await walk([...path, word], sub))) shown.push(word)
    }
    // Hidden subcommands (helpers for scripts) are neither listed nor completed.
    spec.subcommands = shown
    return true
  }
  await walk([], await loadTree(binary))
  return specs
}

/** Every prov command of every binary, as `prov …` names. */
export async function allSpecs(): Promise<CommandSpec[]> {
  const perBinary = await Promise.all(binaries.map(binarySpecs))
  const [prov, ...tools] = perBinary
  // `prov` lists the tools as its subcommands (it dispatches `prov server …` to prov-server).
  prov[0] = { ...prov[0], subcommands: [...prov[0].subcommands, ...binaries.flatMap((b) => (b.word ? [b.word] : []))] }
  return [...prov, ...tools.flat()]
}

/** The binary and the command a `prov …` name runs, loading only the modules on its path. */
export async function findCommand(name: string): Promise<{ binary: Binary; spec: CommandSpec } | undefined> {
  const words = name.split(' ').slice(1)
  const binary = binaries.find((b) => b.word !== undefined && b.word === words[0]) ?? binaries[0]
  const path = binary.word ? words.slice(1) : words
  let command: CommandDef<any> | undefined = await loadTree(binary)
  for (const word of path) {
    command = await subcommandOf(command, word)
    if (!command) return undefined
  }
  return { binary, spec: await specOf(binary, path, command) }
}

/** Where the build writes every command's spec, so that listing them needs no command module. */
export function commandIndexFile(): string {
  return join(installRoot(), 'packages', 'nu', 'dist', 'commands.json')
}

/** Identifies the built trees: the index is valid only for the build that wrote it. */
export function treesFingerprint(): string {
  return binaries
    .map((binary) => {
      try {
        const stat = statSync(treeFile(binary))
        return `${binary.pkg}:${stat.mtimeMs}:${stat.size}`
      } catch {
        return `${binary.pkg}:missing`
      }
    })
    .join(' ')
}

/**
 * Every command, from the index the build wrote when it matches the built trees (loading every
 * command module takes a second or more), else read from the trees themselves.
 */
export async function commandSpecs(): Promise<CommandSpec[]> {
  try {
    const index = JSON.parse(readFileSync(commandIndexFile(), 'utf8')) as { fingerprint?: string; commands?: CommandSpec[] }
    if (index.fingerprint === treesFingerprint() && Array.isArray(index.commands)) return index.commands
  } catch {
    // no index yet, or unreadable: read the trees
  }
  return allSpecs()
}
