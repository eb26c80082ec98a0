import type { ArgsDef, CommandDef } from 'citty'
import { alwaysGlobal, commonArgs, type OptionalGlobal } from './args'

/** The metadata prov commands carry beyond citty's (read by help, the conformance suite, plugins). */
export interface ProvCommandMeta {
  name: string
  description: string
  version?: string
  hidden?: boolean
  /** 1-3 command lines a user can copy, shown under EXAMPLES in `--help`. */
  examples?: string[]
  /** Changes state somewhere (files, servers, a registry, a store): `--check` must preview. */
  mutating?: boolean
  /** Deletes, stops, overwrites, rotates or cancels: refuses without `--yes` off a terminal, asks on one. */
  destructive?: boolean
  /**
   * The command confirms by itself (with confirmOrRefuse, after showing what it will do, or only
   * when there is something to do); otherwise the runner confirms a destructive command before `run`.
   */
  confirms?: boolean
  /** Common flags the command uses beyond the ones every command has (shown in its help). */
  uses?: OptionalGlobal[]
  /** The words after the command path in USAGE, when positionals are variadic (`NAME...`). */
  usage?: string
}

type Rows = [string, string][]

function columns(rows: Rows, indent = '  '): string {
  const width = Math.min(34, Math.max(0, ...rows.map(([left]) => left.length)))
  return rows
    .map(([left, right]) => (left.length > width ? `${indent}${left}\n${indent}${' '.repeat(width + 2)}${right}` : `${indent}${left.padEnd(width)}  ${right}`))
    .join('\n')
}

function flagLabel(name: string, arg: ArgsDef[string]): string {
  const aliases = ('alias' in arg && arg.alias ? [arg.alias].flat() : []) as string[]
  const spelled = [...aliases.filter((a) => a.length === 1).map((a) => `-${a}`), `--${name}`, ...aliases.filter((a) => a.length > 1).map((a) => `--${a}`)]
  let value = ''
  if (arg.type === 'enum' && arg.options?.length) value = ` <${arg.options.join('|')}>`
  else if (arg.type === 'string') value = ` <${('valueHint' in arg && arg.valueHint) || name}>`
  return `${spelled.join(', ')}${value}`
}

function flagDescription(arg: ArgsDef[string]): string {
  const parts = [arg.description ?? '']
  if ('default' in arg && arg.default !== undefined && arg.type !== 'boolean') parts.push(`(default: ${String(arg.default)})`)
  return parts.filter(Boolean).join(' ')
}

/** Which common flags this command's help shows (and the Nushell plugin's signature carries). */
export function shownGlobals(meta: ProvCommandMeta): string[] {
  const shown = new Set<string>(alwaysGlobal)
  if (meta.mutating || meta.destructive) shown.add('check')
  if (meta.destructive) shown.add('yes')
  for (const flag of meta.uses ?? []) shown.add(flag)
  return Object.keys(commonArgs).filter((name) => shown.has(name))
}

export interface HelpInput {
  /** The binary's name (`prov-server`). */
  program: string
  /** Command names under the binary (`['config', 'show']`). */
  path: string[]
  command: CommandDef<any>
  /** The subcommands of a group, loaded. */
  subCommands?: [string, ProvCommandMeta][]
  version?: string
}

/**
 * Help a person can learn from: the full command path and positionals in USAGE, the command's own
 * options apart from the common ones (only those that mean something for it), and examples.
 */
export function renderHelp(input: HelpInput, meta: ProvCommandMeta, args: ArgsDef = {}): string {
  const full = [input.program, ...input.path].join(' ')
  const lines: string[] = [`${full} — ${meta.description}${input.version ? ` (v${input.version})` : ''}`, '']
  const positionals = Object.entries(args).filter(([, arg]) => arg.type === 'positional')
  // A positional's value hint (`NAME...`) says more than its key (`names`).
  const shownName = (name: string, arg: ArgsDef[string]) => ('valueHint' in arg && arg.valueHint ? arg.valueHint : name.toUpperCase())
  const usageWords =
    meta.usage ??
    positionals.map(([name, arg]) => (arg.required === false || 'default' in arg ? `[${shownName(name, arg)}]` : `<${shownName(name, arg)}>`)).join(' ')
  if (input.subCommands) {
    lines.push('USAGE', `  ${full} <command> [OPTIONS]`, '', 'COMMANDS')
    lines.push(columns(input.subCommands.map(([name, sub]) => [name, sub.description])), '')
    lines.push(`Run '${full} <command> --help' for a command's options and examples.`)
    if (input.path.length === 0) lines.push(`'${input.program} help <command>' does the same; '${input.program} version' prints the version.`)
    return `${lines.join('\n')}\n`
  }
  lines.push('USAGE', `  ${full}${usageWords ? ` ${usageWords}` : ''} [OPTIONS]`, '')
  if (positionals.length) {
    lines.push('ARGUMENTS')
    lines.push(columns(positionals.map(([name, arg]) => [shownName(name, arg), arg.description ?? ''])), '')
  }
  const common = new Set(Object.keys(commonArgs))
  const own = Object.entries(args).filter(([name, arg]) => arg.type !== 'positional' && !common.has(name))
  if (own.length) {
    lines.push('OPTIONS')
    lines.push(columns(own.map(([name, arg]) => [flagLabel(name, arg), flagDescription(arg)])), '')
  }
  lines.push('GLOBAL OPTIONS')
  lines.push(
    columns(
      shownGlobals(meta).map((name) => [
        flagLabel(name, commonArgs[name as keyof typeof commonArgs]),
        flagDescription(commonArgs[name as keyof typeof commonArgs]),
      ]),
    ),
    '',
  )
  if (meta.examples?.length) {
    lines.push('EXAMPLES')
    lines.push(...meta.examples.map((example) => `  ${example}`), '')
  }
  return `${lines.join('\n').trimEnd()}\n`
}
