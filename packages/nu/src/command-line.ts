// A Nushell call as the binary's command line: positional values and flags become words, each
// checked for what a process can be given (no NUL byte, bounded length) before anything runs.
import { commandFlag } from './signatures'
import type { CommandSpec } from './spec'
import { type NuValue, type Span, ValueError, valueToWords } from './values'

export interface EvaluatedCall {
  head: Span
  positional: NuValue[]
  /** Flags by long name: a spanned name (`{item, span}`) in the engine versions covered, a bare string in older ones. */
  named: [string | { item: string; span?: Span }, NuValue | null][]
}

export function flagName(name: string | { item: string }): string {
  return typeof name === 'string' ? name : String(name?.item ?? '')
}

/**
 * The longest single argument a process may be given (Linux refuses longer ones with E2BIG), and
 * a bound for all of them together with the environment (well below the usual 2 MiB).
 */
const argumentLimit = 128 * 1024 - 1
const commandLineLimit = 1536 * 1024

/** Refuses a word no process can be given: a NUL byte ends it early, an oversized one fails to start. */
function checkWord(word: string, span: Span, what: string): void {
  if (word.includes('\0')) throw new ValueError(`${what} holds a NUL byte, which a command line cannot carry; pass such data on stdin`, span)
  if (Buffer.byteLength(word) > argumentLimit) {
    throw new ValueError(`${what} is longer than a command line allows (${argumentLimit} bytes); pass large data on stdin`, span)
  }
}

function spanOf(value: NuValue | null, fallback: Span): Span {
  return (value && (Object.values(value)[0]?.span as Span | undefined)) ?? fallback
}

/**
 * The binary's command line for a Nushell call: its command path, the positional values, the
 * flags by their long names (`--name=value`, so values starting with `-` stay values), and the
 * output and log formats the plugin reads.
 */
export function commandLine(
  spec: CommandSpec,
  call: EvaluatedCall,
  env: Record<string, string> = {},
): { argv: string[]; streaming: boolean; logFormat: 'text' | 'json' } {
  const words: string[] = []
  let largest = { bytes: 0, span: call.head }
  const note = (word: string, span: Span) => {
    const bytes = Buffer.byteLength(word)
    if (bytes > largest.bytes) largest = { bytes, span }
  }
  for (const value of call.positional) {
    const span = spanOf(value, call.head)
    for (const word of valueToWords(value)) {
      if (word.startsWith('-')) {
        const shown = word.length > 200 ? `${word.slice(0, 200)}…` : word
        throw new ValueError(`'${shown}' looks like a flag; pass values that start with '-' on stdin or as a flag value`, span)
      }
      checkWord(word, span, 'this argument')
      note(word, span)
      words.push(word)
    }
  }
  const flags: string[] = []
  const afterDashes: string[] = []
  let commandGiven = false
  let streaming = false
  let logFormat: 'text' | 'json' = 'text'
  for (const [spanned, value] of call.named) {
    const name = flagName(spanned)
    if (name === commandFlag && spec.dashCommand) {
      if (value === null) continue
      const span = spanOf(value, call.head)
      // Words after -- are the remote command's own: a leading - is an option of that command.
      for (const word of valueToWords(value)) {
        checkWord(word, span, `the value of --${commandFlag}`)
        note(word, span)
        afterDashes.push(word)
      }
      commandGiven = afterDashes.length > 0
      continue
    }
    const flag = spec.flags.find((f) => f.long === name)
    if (!flag) continue
    // A fixed-choice flag gets one of its choices, as the binary's parser demands (--out and
    // --log-format are read here and never reach it, so the plugin checks for both).
    if (flag.options?.length && value !== null) {
      for (const word of valueToWords(value)) {
        if (flag.options.includes(word)) continue
        const shown = word.length > 200 ? `${word.slice(0, 200)}…` : word
        throw new ValueError(`invalid value for '--${name}': '${shown}' (one of ${flag.options.join(', ')})`, spanOf(value, call.head))
      }
    }
    if (name === 'out') {
      streaming = value !== null && valueToWords(value)[0] === 'ndjson'
      continue
    }
    if (name === 'log-format') {
      // The plugin always reads the command's JSON log lines; this only chooses how it relays them.
      logFormat = value !== null && valueToWords(value)[0] === 'json' ? 'json' : 'text'
      continue
    }
    if (flag.type === 'boolean') {
      if (value === null || Object.values(value)[0]?.val !== false) flags.push(`--${name}`)
      continue
    }
    if (value === null) continue
    const span = spanOf(value, call.head)
    for (const word of valueToWords(value)) {
      checkWord(word, span, `the value of --${name}`)
      note(word, span)
      flags.push(`--${name}=${word}`)
    }
  }
  if (spec.dashCommand === 'required' && !commandGiven) {
    throw new ValueError(
      `${spec.name} needs the command to run: --${commandFlag} WORDS (Nushell keeps -- for itself); e.g. ${spec.name} all --${commandFlag} hostname`,
      call.head,
    )
  }
  const argv = [
    ...spec.path,
    ...words,
    ...flags,
    `--out=${streaming ? 'ndjson' : 'json'}`,
    '--log-format=json',
    ...(afterDashes.length ? ['--', ...afterDashes] : []),
  ]
  const environment = Object.entries(env).reduce((sum, [k, v]) => sum + Buffer.byteLength(k) + Buffer.byteLength(v) + 2, 0)
  const total = argv.reduce((sum, word) => sum + Buffer.byteLength(word) + 1, environment)
  if (total > commandLineLimit) {
    throw new ValueError(
      `the arguments are longer than a command line allows (${commandLineLimit} bytes with the environment); pass large data on stdin`,
      largest.span,
    )
  }
  return { argv, streaming, logFormat }
}
