import { basename } from 'node:path'
import { type ArgsDef, type CommandDef, runCommand } from 'citty'
import { ExitCode, ProvError, toProvError, usageError } from '../errors'
import { configureLogger, type LogFormat, log, loggerOptions } from '../log'
import { writeStdout } from '../output'
import { redactSecretValues, redactString, redactValue } from '../redact'
import { didYouMean } from '../suggest'
import { printable } from '../util/printable'
import { allowedFlagNames, assertOptionValues, resolveArgv, unknownOptionError, valueOptionOf } from './args'
import { exitState } from './exit'
import { type ProvCommandMeta, renderHelp } from './help'

function scanLoggingFlags(argv: string[]): { quiet: boolean; debug: boolean; format: LogFormat } {
  const dash = argv.indexOf('--')
  const flags = dash >= 0 ? argv.slice(0, dash) : argv
  const formatIndex = flags.findIndex((a) => a === '--log-format' || a.startsWith('--log-format='))
  const formatArg = formatIndex < 0 ? undefined : flags[formatIndex].includes('=') ? flags[formatIndex].split('=')[1] : flags[formatIndex + 1]
  return {
    quiet: flags.includes('--quiet') || flags.includes('-q'),
    debug: flags.includes('--debug') || flags.includes('-x') || process.env.PROV_DEBUG === '1',
    format: formatArg === 'json' ? 'json' : 'text',
  }
}

/**
 * Newlines and runs of blanks inside a message become one space: an error is always one line, and
 * its control characters are shown escaped (messages quote names and answers from remote systems).
 */
const singleLine = (text: string) => printable(text.replace(/\s*[\r\n]+\s*/g, ' ').trim())

/**
 * The error as it may be shown: message and hint redacted like log lines, the location only of
 * secret values (a location such as `secret.yaml: steps[0].env.PW` names a place, not a value).
 */
export function presentableError(error: unknown): ProvError {
  const provError = toProvError(error)
  return new ProvError(provError.code, singleLine(redactString(provError.message)), {
    location: provError.location === undefined ? undefined : singleLine(redactSecretValues(provError.location)),
    hint: provError.hint === undefined ? undefined : singleLine(redactString(provError.hint)),
    details: provError.details === undefined ? undefined : redactValue(provError.details),
  })
}

/** The program name errors are prefixed with (`prov-server`). */
const programName = () => basename(process.argv[1] ?? 'prov')

/** Prints a failure as one line (NDJSON when --log-format json) and returns its exit code. */
export function reportError(error: unknown, debug: boolean): number {
  const shown = presentableError(error)
  if (debug && error instanceof Error && error.stack) log().debug(redactString(error.stack))
  if (loggerOptions().format === 'json') {
    process.stderr.write(`${JSON.stringify({ time: new Date().toISOString(), level: 'error', ...shown.toJSON() })}\n`)
  } else {
    process.stderr.write(`${programName()}: error: ${shown.toLine()}\n`)
  }
  return shown.code
}

/**
 * Sets up stderr the way a command line asks for (`--quiet`, `--debug`, `--log-format`) before
 * anything can fail, so even an unknown command reports in the chosen format.
 */
export function configureFromArgv(argv: string[]): { debug: boolean } {
  const flags = scanLoggingFlags(argv)
  configureLogger({ quiet: flags.quiet, debug: flags.debug, format: flags.format })
  return { debug: flags.debug }
}

let crashHandlersInstalled = false
/** A failure outside the command's own promise (a stray callback) still ends as one error line. */
function installCrashHandlers(debug: boolean): void {
  if (crashHandlersInstalled) return
  crashHandlersInstalled = true
  const crash = (error: unknown) => {
    process.exitCode = reportError(error, debug)
    process.exit()
  }
  process.on('uncaughtException', crash)
  process.on('unhandledRejection', crash)
}

const metaOf = async (cmd: CommandDef<any>): Promise<ProvCommandMeta> =>
  ((typeof cmd.meta === 'function' ? await cmd.meta() : await cmd.meta) ?? { name: '', description: '' }) as ProvCommandMeta
const argsOf = async (cmd: CommandDef<any>): Promise<ArgsDef> => ((typeof cmd.args === 'function' ? await cmd.args() : await cmd.args) ?? {}) as ArgsDef

async function helpText(root: CommandDef<any>, path: string[], command: CommandDef<any>): Promise<string> {
  const rootMeta = await metaOf(root)
  const meta = await metaOf(command)
  const subs = typeof command.subCommands === 'function' ? await command.subCommands() : await command.subCommands
  let subCommands: [string, ProvCommandMeta][] | undefined
  if (subs && !command.run) {
    subCommands = []
    for (const [name, entry] of Object.entries(subs)) {
      const sub = (typeof entry === 'function' ? await (entry as () => Promise<CommandDef<any>>)() : await entry) as CommandDef<any>
      const subMeta = await metaOf(sub)
      if (!subMeta.hidden) subCommands.push([name, subMeta])
    }
  }
  return renderHelp(
    { program: rootMeta.name || programName(), path, command, subCommands, version: path.length ? undefined : rootMeta.version },
    meta,
    await argsOf(command),
  )
}

/** citty's own usage errors, said the prov way (one line, exit 2, a hint to the command's help). */
function fromCittyError(error: Error, full: string): ProvError {
  const message = error.message.replace(/\x1b\[[0-9;]*m/g, '').replace(/\.$/, '')
  const missing = /Missing required positional argument: (\S+)/.exec(message)
  if (missing) return usageError(`missing argument ${missing[1]} for '${full}'`, { hint: `see '${full} --help'` })
  return usageError(message.charAt(0).toLowerCase() + message.slice(1), { hint: `see '${full} --help'` })
}

/**
 * Runs a binary's root command: `--version`, `version`, `--help`, `help [COMMAND]`, subcommands
 * with common options anywhere on the line, and the error -> exit code mapping of the JSON
 * contract. Never throws; sets process.exitCode.
 */
export async function runProvMain(root: CommandDef<any>, argv: string[] = process.argv.slice(2)): Promise<number> {
  const { debug } = configureFromArgv(argv)
  installCrashHandlers(debug)
  let code: number
  const rootMeta = await metaOf(root)
  const program = rootMeta.name || programName()
  let full = program
  try {
    const dash = argv.indexOf('--')
    const own = dash >= 0 ? argv.slice(0, dash) : argv
    const rootSubs = typeof root.subCommands === 'function' ? await root.subCommands() : await root.subCommands
    const builtin = (name: string) => own[0] === name && !(rootSubs && name in rootSubs)
    if ((own.length === 1 && own[0] === '--version') || builtin('version')) {
      if (builtin('version') && own.length > 1) throw usageError(`'${program} version' takes no arguments`, { hint: `${program} version` })
      writeStdout(`${rootMeta.version ?? '0.0.0'}\n`)
      code = ExitCode.OK
    } else if (builtin('help')) {
      const resolved = await resolveArgv(root, own.slice(1))
      const stray = resolved.rest.find((w) => !w.startsWith('-'))
      if (stray) throw unknownCommandError(stray, program, resolved.path, await subNames(resolved.command))
      writeStdout(await helpText(root, resolved.path, resolved.command))
      code = ExitCode.OK
    } else {
      const resolved = await resolveArgv(root, argv)
      full = [program, ...resolved.path].join(' ')
      const leafDash = resolved.rest.indexOf('--')
      const leafOwn = leafDash >= 0 ? resolved.rest.slice(0, leafDash) : resolved.rest
      if (leafOwn.includes('--help') || leafOwn.includes('-h')) {
        writeStdout(await helpText(root, resolved.path, resolved.command))
        code = ExitCode.OK
      } else if (!resolved.command.run) {
        const stray = resolved.rest.find((w) => !w.startsWith('-'))
        if (stray) throw unknownCommandError(stray, program, resolved.path, await subNames(resolved.command))
        if (resolved.rest.length) {
          throw usageError(`'${full}' needs a command`, { hint: `see '${full} --help'` })
        }
        process.stderr.write(await helpText(root, resolved.path, resolved.command))
        code = ExitCode.USAGE
      } else {
        const args = await argsOf(resolved.command)
        precheck(resolved.rest, args, full)
        exitState.code = ExitCode.OK
        exitState.command = full
        await runCommand(root, { rawArgs: resolved.argv })
        code = exitState.code
      }
    }
  } catch (error) {
    const err = error as Error
    code = reportError(err?.name === 'CLIError' ? fromCittyError(err, full) : error, debug)
  }
  process.exitCode = code
  return code
}

async function subNames(cmd: CommandDef<any>): Promise<string[]> {
  const subs = typeof cmd.subCommands === 'function' ? await cmd.subCommands() : await cmd.subCommands
  return subs ? Object.keys(subs) : []
}

function unknownCommandError(word: string, program: string, path: string[], names: string[]): ProvError {
  const where = [program, ...path].join(' ')
  const builtins = path.length === 0 ? ['help', 'version'] : []
  return usageError(`unknown command '${word}' for '${where}'`, {
    hint: didYouMean(word, [...names, ...builtins]) ?? `commands: ${[...names, ...builtins].join(', ')}`,
  })
}

/** Option checks that must run before the parser: unknown flags (with a suggestion) and missing values. */
function precheck(rest: string[], args: ArgsDef, full: string): void {
  const allowed = allowedFlagNames(args)
  for (const word of rest) {
    if (word === '--') break
    if (!word.startsWith('-') || word === '-' || /^-\d/.test(word)) continue
    const name = word.replace(/^--?/, '').split('=')[0]
    if (word.startsWith('--')) {
      const bare = name.startsWith('no-') && allowed.has(name.slice(3)) ? name.slice(3) : name
      if (!allowed.has(bare)) throw unknownOptionError(name, args, full)
    } else {
      // -abc is -a -b -c for booleans; a value option takes the rest of the cluster as its value.
      for (const letter of name) {
        if (!allowed.has(letter)) throw unknownOptionError(letter, args, full)
        if (valueOptionOf(`-${letter}`, args)) break
      }
    }
  }
  assertOptionValues(rest, args)
}
