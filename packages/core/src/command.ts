import { basename } from 'node:path'
import { type ArgsDef, type CommandDef, type ParsedArgs, renderUsage, runCommand } from 'citty'
import type { ConsolaInstance } from 'consola'
import { ExitCode, ProvError, toProvError, usageError } from './errors'
import { configureLogger, type LogFormat, log, loggerOptions } from './log'
import { emit, type OutputFormat, RecordWriter, resolveOutputFormat } from './output'
import { redactString, redactValue } from './redact'
import { type ParsedInput, readStdinRecords } from './stdin'
import { didYouMean } from './suggest'
import { runViaOrchestrator, viaOrchArgs } from './via-orch'

/** Flags every prov command accepts (PRODUCT.md §2). */
export const commonArgs = {
  workspace: { type: 'string', alias: 'w', description: 'Workspace name or path', valueHint: 'name|path' },
  infra: { type: 'string', alias: 'i', description: 'Infrastructure name (infra/<name>/)' },
  env: { type: 'string', alias: 'e', description: 'Environment overlay (config/<env>.*); default $PROV_ENV' },
  check: { type: 'boolean', alias: 'c', description: 'Plan only: change nothing anywhere, open no connection' },
  yes: { type: 'boolean', alias: 'y', description: 'Do not ask for confirmation' },
  wait: { type: 'boolean', description: 'Wait until the operation has finished' },
  parallel: { type: 'string', alias: 'p', description: 'How many targets at once', valueHint: 'N' },
  out: { type: 'string', alias: 'o', description: 'Output: json|ndjson|yaml|table (json off a TTY)' },
  quiet: { type: 'boolean', alias: 'q', description: 'No logs on stderr (errors still print)' },
  debug: { type: 'boolean', alias: 'x', description: 'Debug logs and stack traces' },
  'log-format': { type: 'string', description: 'stderr format: text|json' },
} as const satisfies ArgsDef

export type CommonArgs = typeof commonArgs

/** The common flags, parsed and typed. */
export interface CommonOptions {
  workspace?: string
  infra?: string
  env?: string
  check: boolean
  yes: boolean
  wait: boolean
  parallel?: number
  out: OutputFormat
  quiet: boolean
  debug: boolean
  logFormat: LogFormat
}

export interface ProvContext<T extends ArgsDef> {
  args: ParsedArgs<T & CommonArgs>
  /** Positional words (before `--`). */
  positionals: string[]
  /** Everything after a literal `--` (e.g. the command of `exec NAME -- CMD`). */
  dashArgs: string[]
  common: CommonOptions
  log: ConsolaInstance
  /** Piped records (JSON, NDJSON, YAML); undefined when stdin is a TTY or empty. Read once. */
  stdin(): Promise<ParsedInput | undefined>
  /** Prints a whole result on stdout in the chosen format. */
  emit(data: unknown): void
  /** A streaming writer for record lists (NDJSON streams as records arrive). */
  writer(): RecordWriter
}

export interface ProvCommandDef<T extends ArgsDef> {
  meta: { name: string; description: string; version?: string }
  args?: T
  /**
   * Operation name for the execution rules (`server.apply`): adds `--via-orch` / `--direct`, and
   * the command may be handed to a running orchestrator (via-orch.ts). Loads the config first.
   */
  orchestrated?: string
  /** Returns an exit code (default 0). Throw ProvError for failures. */
  run: (context: ProvContext<T>) => Promise<number | undefined | void> | number | undefined | void
}

let pendingExitCode: number = ExitCode.OK

function parseParallel(value: unknown): number | undefined {
  if (value === undefined || value === '' || value === true) return undefined
  const n = Number(value)
  if (!Number.isInteger(n) || n < 1) {
    throw usageError(`--parallel must be a whole number of at least 1, got '${String(value)}'`, { location: '--parallel' })
  }
  return n
}

function allowedFlagNames(def: ArgsDef): Set<string> {
  const names = new Set<string>(['_'])
  const camel = (s: string) => s.replace(/-([a-z])/g, (_, c: string) => c.toUpperCase())
  const kebab = (s: string) => s.replace(/[A-Z]/g, (c) => `-${c.toLowerCase()}`)
  for (const [name, arg] of Object.entries(def)) {
    for (const n of [name, ...(('alias' in arg && arg.alias ? [arg.alias].flat() : []) as string[])]) {
      names.add(n).add(camel(n)).add(kebab(n))
    }
  }
  return names
}

/** Builds a citty command with the common flags, strict flag checking, stdin and output helpers. */
export function defineProvCommand<T extends ArgsDef = ArgsDef>(def: ProvCommandDef<T>): CommandDef<T & CommonArgs> {
  const args = { ...(def.args ?? {}), ...(def.orchestrated ? viaOrchArgs : {}), ...commonArgs } as T & CommonArgs
  return {
    meta: def.meta,
    args,
    async run(citty) {
      const parsed = citty.args as ParsedArgs<T & CommonArgs>
      const allowed = allowedFlagNames(args)
      for (const key of Object.keys(parsed)) {
        if (!allowed.has(key)) {
          throw usageError(`unknown option '--${key}' for '${def.meta.name}'`, {
            hint: didYouMean(key, Object.keys(args)) ?? `see '${def.meta.name} --help'`,
          })
        }
      }
      for (const [name, arg] of Object.entries(args)) {
        const value = (parsed as Record<string, unknown>)[name]
        if (arg.type === 'string' && typeof value === 'boolean') {
          throw usageError(`option '--${name}' needs a value`, { location: `--${name}` })
        }
      }
      const dashIndex = citty.rawArgs.indexOf('--')
      const dashArgs = dashIndex >= 0 ? citty.rawArgs.slice(dashIndex + 1) : []
      const positionals = (parsed._ ?? []).slice(0, Math.max(0, (parsed._?.length ?? 0) - dashArgs.length))
      const logFormat = (parsed['log-format'] as string | undefined) ?? 'text'
      if (logFormat !== 'text' && logFormat !== 'json') {
        throw usageError(`unknown log format '${logFormat}'`, { location: '--log-format', hint: 'use text or json' })
      }
      const common: CommonOptions = {
        workspace: (parsed.workspace as string | undefined) ?? undefined,
        infra: (parsed.infra as string | undefined) ?? undefined,
        env: (parsed.env as string | undefined) ?? process.env.PROV_ENV ?? undefined,
        check: Boolean(parsed.check),
        yes: Boolean(parsed.yes),
        wait: Boolean(parsed.wait),
        parallel: parseParallel(parsed.parallel),
        out: resolveOutputFormat(parsed.out as string | undefined),
        quiet: Boolean(parsed.quiet),
        debug: Boolean(parsed.debug),
        logFormat,
      }
      let stdinPromise: Promise<ParsedInput | undefined> | undefined
      const context: ProvContext<T> = {
        args: parsed,
        positionals,
        dashArgs,
        common,
        get log() {
          return log()
        },
        stdin: () => {
          stdinPromise ??= readStdinRecords()
          return stdinPromise
        },
        emit: (data) => emit(data, common.out),
        writer: () => new RecordWriter(common.out),
      }
      if (def.orchestrated) {
        const relayed = await runViaOrchestrator({
          operation: def.orchestrated,
          common,
          viaOrch: Boolean((parsed as Record<string, unknown>)['via-orch']),
          direct: Boolean((parsed as Record<string, unknown>).direct),
        })
        if (relayed !== undefined) {
          pendingExitCode = relayed
          return
        }
      }
      const code = await def.run(context)
      pendingExitCode = typeof code === 'number' ? code : ExitCode.OK
    },
  }
}

/** Shorthand for a group of subcommands (lazy: each loads only when used). */
export function defineProvGroup(def: {
  meta: { name: string; description: string; version?: string }
  subCommands: Record<string, () => Promise<CommandDef<any>>>
}): CommandDef {
  return { meta: def.meta, subCommands: def.subCommands }
}

function scanLoggingFlags(argv: string[]): { quiet: boolean; debug: boolean; format: LogFormat } {
  const formatIndex = argv.findIndex((a) => a === '--log-format' || a.startsWith('--log-format='))
  const formatArg = formatIndex < 0 ? undefined : argv[formatIndex].includes('=') ? argv[formatIndex].split('=')[1] : argv[formatIndex + 1]
  const dash = argv.indexOf('--')
  const flags = dash >= 0 ? argv.slice(0, dash) : argv
  return {
    quiet: flags.includes('--quiet') || flags.includes('-q'),
    debug: flags.includes('--debug') || flags.includes('-x') || process.env.PROV_DEBUG === '1',
    format: formatArg === 'json' ? 'json' : 'text',
  }
}

async function resolveLeaf(cmd: CommandDef<any>, argv: string[]): Promise<[CommandDef<any>, CommandDef<any> | undefined]> {
  let current = cmd
  let parent: CommandDef<any> | undefined
  for (const word of argv) {
    if (word.startsWith('-')) continue
    const subs = typeof current.subCommands === 'function' ? await current.subCommands() : await current.subCommands
    const next = subs?.[word]
    if (!next) break
    parent = current
    current = typeof next === 'function' ? await next() : await next
  }
  return [current, parent]
}

/** Prints a failure as one line (NDJSON when --log-format json) and returns its exit code. */
export function reportError(error: unknown, debug: boolean): number {
  const provError = toProvError(error)
  if (debug && error instanceof Error && error.stack) log().debug(redactString(error.stack))
  if (loggerOptions().format === 'json') {
    process.stderr.write(`${JSON.stringify({ time: new Date().toISOString(), level: 'error', ...redactValue(provError.toJSON()) })}\n`)
  } else {
    const program = basename(process.argv[1] ?? 'prov')
    process.stderr.write(`${program}: error: ${redactString(provError.toLine())}\n`)
  }
  return provError.code
}

/**
 * Runs a binary's root command: `--version`, `--help`, subcommands, and the error → exit code
 * mapping of the JSON contract. Never throws; sets process.exitCode.
 */
export async function runProvMain(cmd: CommandDef<any>, argv: string[] = process.argv.slice(2)): Promise<number> {
  const flags = scanLoggingFlags(argv)
  configureLogger({ quiet: flags.quiet, debug: flags.debug, format: flags.format })
  let code: number
  try {
    const dash = argv.indexOf('--')
    const own = dash >= 0 ? argv.slice(0, dash) : argv
    if (own.length === 1 && (own[0] === '--version' || own[0] === '-v')) {
      const meta = typeof cmd.meta === 'function' ? await cmd.meta() : await cmd.meta
      process.stdout.write(`${meta?.version ?? '0.0.0'}\n`)
      code = ExitCode.OK
    } else if (own.includes('--help') || own.includes('-h') || own.length === 0) {
      const [leaf, parent] = await resolveLeaf(cmd, own)
      const usage = await renderUsage(leaf, parent)
      const stream = own.length === 0 && !leaf.run ? process.stderr : process.stdout
      stream.write(`${usage.replace(/\x1b\[[0-9;]*m/g, '')}\n`)
      code = own.length === 0 && !leaf.run ? ExitCode.USAGE : ExitCode.OK
      if (own.length === 0 && leaf.run) {
        pendingExitCode = ExitCode.OK
        await runCommand(cmd, { rawArgs: argv })
        code = pendingExitCode
      }
    } else {
      pendingExitCode = ExitCode.OK
      await runCommand(cmd, { rawArgs: argv })
      code = pendingExitCode
    }
  } catch (error) {
    const err = error as Error & { code?: string }
    if (err?.name === 'CLIError') {
      const message = err.message.replace(/\x1b\[[0-9;]*m/g, '')
      const [leaf] = await resolveLeaf(cmd, argv).catch(() => [cmd])
      const subs = typeof leaf.subCommands === 'function' ? await leaf.subCommands() : await leaf.subCommands
      const unknown = /Unknown command (\S+)/.exec(message)?.[1]
      const hint = (unknown && subs ? didYouMean(unknown, Object.keys(subs)) : undefined) ?? 'see --help'
      code = reportError(new ProvError(ExitCode.USAGE, message.replace(/\.$/, ''), { hint }), flags.debug)
    } else {
      code = reportError(error, flags.debug)
    }
  }
  process.exitCode = code
  return code
}
