import type { ArgsDef, CommandDef } from 'citty'
import { usageError } from '../errors'
import { outputFormats } from '../output'
import { didYouMean } from '../suggest'

/** Flags every prov command accepts (the JSON contract's common flags). */
export const commonArgs = {
  workspace: { type: 'string', alias: 'w', description: 'Workspace name or path', valueHint: 'name|path' },
  infra: { type: 'string', alias: 'i', description: 'Infrastructure name (infra/<name>/)' },
  env: { type: 'string', alias: 'e', description: 'Environment overlay (config/<env>.*); default $PROV_ENV' },
  check: { type: 'boolean', alias: 'c', description: 'Preview only: change nothing anywhere, open no connection' },
  yes: { type: 'boolean', alias: 'y', description: 'Do not ask for confirmation (required off a terminal)' },
  wait: { type: 'boolean', description: 'Wait until the operation has finished' },
  parallel: { type: 'string', alias: 'p', description: 'How many targets at once', valueHint: 'N' },
  out: {
    type: 'enum',
    alias: ['o', 'output'],
    options: [...outputFormats],
    description: 'Output format (default: output.format, else json off a TTY, table on one)',
  },
  quiet: { type: 'boolean', alias: 'q', description: 'No logs on stderr (errors still print)' },
  debug: { type: 'boolean', alias: 'x', description: 'Debug logs and stack traces' },
  'log-format': { type: 'enum', options: ['text', 'json'], description: 'stderr format' },
} as const satisfies ArgsDef

export type CommonArgs = typeof commonArgs

/** Common flags shown in every command's help; the others only where the command uses them. */
export const alwaysGlobal = ['workspace', 'env', 'out', 'quiet', 'debug', 'log-format'] as const
/** Common flags a command shows in its help only when it declares (or implies) them. */
export type OptionalGlobal = 'infra' | 'check' | 'yes' | 'wait' | 'parallel'

const aliasesOf = (arg: ArgsDef[string]): string[] => ('alias' in arg && arg.alias ? [arg.alias].flat() : []) as string[]
const camel = (s: string) => s.replace(/-([a-z])/g, (_, c: string) => c.toUpperCase())
const kebab = (s: string) => s.replace(/[A-Z]/g, (c) => `-${c.toLowerCase()}`)
const spell = (name: string) => (name.length === 1 ? `-${name}` : `--${name}`)

/** Every key the parser may produce for these args (names, aliases, camel and kebab forms). */
export function allowedFlagNames(def: ArgsDef): Set<string> {
  const names = new Set<string>(['_'])
  for (const [name, arg] of Object.entries(def)) {
    for (const n of [name, ...aliasesOf(arg)]) names.add(n).add(camel(n)).add(kebab(n))
  }
  return names
}

/** "did you mean '--out'?" for a mistyped flag, from every name and alias the command accepts. */
export function unknownOptionError(key: string, args: ArgsDef, command: string) {
  const spelled = spell(key)
  const candidates = Object.entries(args).flatMap(([name, arg]) => (arg.type === 'positional' ? [] : [`--${name}`, ...aliasesOf(arg).map(spell)]))
  return usageError(`unknown option '${spelled}' for '${command}'`, {
    location: spelled,
    hint: didYouMean(spelled, candidates) ?? `see '${command} --help'`,
  })
}

/** The long name of the value-taking option a raw word (`-o`, `--out`, `--output`) names, if any. */
export function valueOptionOf(word: string, args: ArgsDef): string | undefined {
  const long = word.startsWith('--')
  const name = word.replace(/^--?/, '')
  for (const [key, arg] of Object.entries(args)) {
    if (arg.type !== 'string' && arg.type !== 'enum') continue
    const aliases = aliasesOf(arg)
    if (long ? name === key || name === camel(key) || aliases.includes(name) : aliases.includes(name)) return key
  }
  return undefined
}

function describeValues(arg: ArgsDef[string]): string {
  if (arg.type === 'enum' && arg.options?.length) return `one of ${arg.options.join(', ')}`
  return `e.g. ${'valueHint' in arg && arg.valueHint ? arg.valueHint : 'a value'}`
}

/**
 * Checks the raw words of a leaf command before the parser sees them: a value-taking option at
 * the end of the line or followed by another option (`-o`, `-o -q`) needs a value (the parser would
 * take the next flag as its value, or an empty string), and a fixed-choice option gets one of its
 * choices. Only words before a literal `--` are options.
 */
export function assertOptionValues(rawArgs: string[], args: ArgsDef): void {
  for (let i = 0; i < rawArgs.length; i++) {
    const word = rawArgs[i]
    if (word === '--') return
    if (!word.startsWith('-') || word === '-' || /^-\d/.test(word)) continue
    const eq = word.indexOf('=')
    const flag = eq >= 0 ? word.slice(0, eq) : word
    const option = valueOptionOf(flag, args)
    if (!option) continue
    let value: string | undefined
    if (eq >= 0) value = word.slice(eq + 1)
    else {
      const next = rawArgs[i + 1]
      if (next === undefined || next === '--' || (next.startsWith('-') && next !== '-' && !/^-\d/.test(next))) value = undefined
      else value = next
      i++
    }
    const arg = args[option]
    if (value === undefined || (value === '' && arg.type === 'enum')) {
      throw usageError(`option '${flag}' needs a value`, { location: flag, hint: describeValues(arg) })
    }
    if (arg.type === 'enum' && arg.options?.length && !arg.options.includes(value)) {
      throw usageError(`invalid value for '${flag}': '${value}'`, { location: flag, hint: `${describeValues(arg)}${suggestValue(value, arg.options)}` })
    }
  }
}

function suggestValue(value: string, options: string[]): string {
  const close = didYouMean(value, options)
  return close ? ` (${close})` : ''
}

/** Parses `--parallel N` (a whole number of at least 1). */
export function parseParallel(value: unknown): number | undefined {
  if (value === undefined || value === '' || value === true) return undefined
  const n = Number(value)
  if (!Number.isInteger(n) || n < 1) {
    throw usageError(`--parallel must be a whole number of at least 1, got '${String(value)}'`, { location: '--parallel' })
  }
  return n
}

async function subCommandsOf(cmd: CommandDef<any>): Promise<Record<string, CommandDef<any>> | undefined> {
  const subs = typeof cmd.subCommands === 'function' ? await cmd.subCommands() : await cmd.subCommands
  if (!subs) return undefined
  return subs as Record<string, CommandDef<any>>
}

async function load(entry: unknown): Promise<CommandDef<any>> {
  return (typeof entry === 'function' ? await (entry as () => Promise<CommandDef<any>>)() : await entry) as CommandDef<any>
}

export interface ResolvedArgv {
  /** Command names from the root to the deepest command reached (`['config', 'show']`). */
  path: string[]
  /** The commands along `path`, the root first. */
  chain: CommandDef<any>[]
  /** The deepest command reached (a leaf when it has `run`). */
  command: CommandDef<any>
  /** The words for the parser: the command path first, every option after it. */
  argv: string[]
  /** The leaf's own words (options and positionals), in the order the user typed them. */
  rest: string[]
}

/**
 * Finds the command a line names, letting common options stand anywhere: `prov -w NAME config
 * show` is `prov config show -w NAME`. Options met before the command path is complete move behind
 * it (with their values), so the parser of every level sees only command words in front.
 */
export async function resolveArgv(root: CommandDef<any>, argv: string[]): Promise<ResolvedArgv> {
  const path: string[] = []
  const chain: CommandDef<any>[] = [root]
  const moved: string[] = []
  let command = root
  let i = 0
  for (; i < argv.length; i++) {
    const word = argv[i]
    if (word === '--') break
    if (word.startsWith('-') && word !== '-') {
      moved.push(word)
      if (!word.includes('=') && valueOptionOf(word, commonArgs) && i + 1 < argv.length) moved.push(argv[++i])
      continue
    }
    const subs = await subCommandsOf(command)
    if (!subs || !(word in subs)) break
    command = await load(subs[word])
    path.push(word)
    chain.push(command)
  }
  const rest = [...moved, ...argv.slice(i)]
  return { path, chain, command, argv: [...path, ...rest], rest }
}

/** The subcommand names of a command (for "did you mean" on an unknown command). */
export async function subCommandNames(cmd: CommandDef<any>): Promise<string[]> {
  const subs = await subCommandsOf(cmd)
  if (!subs) return []
  const names: string[] = []
  for (const [name, entry] of Object.entries(subs)) {
    const meta = await (await load(entry)).meta
    if (!(meta as { hidden?: boolean } | undefined)?.hidden) names.push(name)
  }
  return names
}

/**
 * Every value given to a repeatable option, in order (`--set a=1 --set b=2`): the parser keeps only
 * the last one. Words after a literal `--` are not options.
 */
export function optionValues(rawArgs: readonly string[], name: string, args: ArgsDef): string[] {
  const values: string[] = []
  for (let i = 0; i < rawArgs.length; i++) {
    const word = rawArgs[i]
    if (word === '--') break
    if (!word.startsWith('-')) continue
    const eq = word.indexOf('=')
    const flag = eq >= 0 ? word.slice(0, eq) : word
    if (valueOptionOf(flag, args) !== name) continue
    if (eq >= 0) values.push(word.slice(eq + 1))
    else if (i + 1 < rawArgs.length) values.push(rawArgs[++i])
  }
  return values
}
