import type { CommandSpec, FlagSpec, PositionalSpec } from './spec'
import type { Span } from './values'

/**
 * Nushell signatures of the prov commands: flags with their short forms, types, defaults and
 * descriptions come straight from the command definitions (the ones `--help` prints).
 */

const noSpan: Span = { start: 0, end: 0 }

/** Output formats the plugin understands: `ndjson` streams records; the others return one value. */
export const pluginOutputs = ['json', 'ndjson', 'yaml', 'table', 'wide']

type SyntaxShape = string | Record<string, unknown>

function flagShape(flag: FlagSpec): SyntaxShape | null {
  if (flag.type === 'boolean') return null
  // The list shape comes first: Nushell tries the shapes in order, and a string shape would take
  // a bracket literal typed on the command line (`--set [a=1 b=2]`) as one string.
  if (flag.repeatable) return { OneOf: [{ List: 'String' }, 'String'] }
  return flag.integer ? 'Int' : 'String'
}

function flagCompletion(flag: FlagSpec): unknown {
  if (flag.options?.length) return { List: flag.options }
  if (flag.long === 'out') return { List: pluginOutputs }
  return null
}

/**
 * The plugin's flag for the words a command takes after `--`: Nushell keeps `--` for itself (0.108
 * refuses it in a plugin call, later versions drop it), so they come as a list or one string.
 */
export const commandFlag = 'command'

/** The definition's default, typed like the flag (switches have none: absent is off). */
function defaultOf(flag: FlagSpec): Record<string, unknown> | null {
  if (flag.default === undefined || flag.type !== 'string') return null
  const number = Number(flag.default)
  if (flag.integer && Number.isInteger(number)) return { Int: { val: number, span: noSpan } }
  return { String: { val: String(flag.default), span: noSpan } }
}

function namedOf(flags: FlagSpec[], dashCommand: CommandSpec['dashCommand']): Record<string, unknown>[] {
  const shorts = new Set<string>(['h'])
  const named: Record<string, unknown>[] = []
  if (dashCommand) {
    named.push({
      long: commandFlag,
      short: null,
      arg: { OneOf: [{ List: 'String' }, 'String'] },
      required: false,
      desc: `The command to run (what the binary takes after --): one string is a shell command line, a list keeps its words apart (words may start with -)${dashCommand === 'required' ? '; required' : ''}`,
      var_id: null,
      default_value: null,
      completion: null,
    })
  }
  for (const flag of flags) {
    const short = flag.short && !shorts.has(flag.short) ? flag.short : null
    if (short) shorts.add(short)
    const description =
      flag.long === 'out'
        ? 'ndjson: stream records as they arrive (a list stream); otherwise one value (the plugin returns data, never text)'
        : flag.long === 'log-format'
          ? 'Format of the log lines the command prints to stderr (errors always become Nushell errors)'
          : flag.description
    named.push({
      long: flag.long,
      short,
      arg: flagShape(flag),
      required: false,
      desc: description,
      var_id: null,
      default_value: defaultOf(flag),
      completion: flagCompletion(flag),
    })
  }
  named.push({
    long: 'help',
    short: 'h',
    arg: null,
    required: false,
    desc: 'Display the help message for this command',
    var_id: null,
    default_value: null,
    completion: null,
  })
  return named
}

function positionalOf(p: PositionalSpec): Record<string, unknown> {
  return {
    name: p.name,
    desc: p.description,
    shape: 'String',
    var_id: null,
    default_value: p.default !== undefined ? { String: { val: p.default, span: noSpan } } : null,
    completion: null,
  }
}

/** `prov-server list --out json` in a definition's examples becomes `prov server list`. */
export function nuExample(example: string): string {
  return example
    .replace(/^prov-(\w+)/, 'prov $1')
    .replace(/\s+(--out|-o)\s+json\b/g, '')
    .trim()
}

/** One command's PluginSignature (the JSON the engine expects for 0.108 … 0.115). */
export function signatureOf(spec: CommandSpec): Record<string, unknown> {
  const required = spec.positionals.filter((p) => p.required && !p.rest)
  const optional = spec.positionals.filter((p) => !p.required && !p.rest)
  const rest = spec.positionals.find((p) => p.rest)
  const notes: string[] = []
  if (spec.group) notes.push(`Subcommands: ${spec.subcommands.join(', ')}.`)
  else {
    notes.push(`Runs \`${[spec.program, ...spec.path].join(' ')}\` and returns its records as Nushell values; piped values become its stdin.`)
    if (spec.metadata.destructive) notes.push('Destructive: needs --yes (nobody can confirm inside a pipeline).')
  }
  return {
    sig: {
      name: spec.name,
      description: spec.description,
      extra_description: notes.join(' '),
      search_terms: ['prov', ...spec.path],
      required_positional: required.map(positionalOf),
      optional_positional: optional.map(positionalOf),
      rest_positional: rest ? positionalOf(rest) : null,
      named: namedOf(spec.flags, spec.dashCommand),
      input_output_types: [['Any', 'Any']],
      allow_variants_without_examples: true,
      is_filter: false,
      creates_scope: false,
      allows_unknown_args: false,
      complete: null,
      category: { Custom: 'prov' },
    },
    examples: (spec.metadata.examples ?? []).map((example) => ({ example: nuExample(example), description: '', result: null })),
  }
}
