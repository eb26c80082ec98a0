import type { ArgsDef, CommandDef, ParsedArgs } from 'citty'
import type { ConsolaInstance } from 'consola'
import { allowedFlagNames, type CommonArgs, commonArgs, optionValues, parseParallel, unknownOptionError } from './cli/args'
import { exitState } from './cli/exit'
import type { ProvCommandMeta } from './cli/help'
import { configError, ExitCode, failedError } from './errors'
import { inputLimitConfigured } from './limits'
import { configureLogger, type LogFormat, log, loggerOptions } from './log'
import { emit, type OutputFormat, outputFormats, RecordWriter, resolveOutputFormat } from './output'
import { type ParsedInput, readStdinRecords } from './stdin'
import { confirmOrCancel } from './util/confirm'
import { setUnattended } from './util/interaction'
import { runViaOrchestrator, viaOrchArgs } from './via-orch'

export { alwaysGlobal, type CommonArgs, commonArgs, type OptionalGlobal, type ResolvedArgv, resolveArgv, valueOptionOf } from './cli/args'
export { type HelpInput, type ProvCommandMeta, renderHelp, shownGlobals } from './cli/help'
export { configureFromArgv, presentableError, reportError, runProvMain } from './cli/main'

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
  /** Every value of a repeatable option, in order (`--set a=1 --set b=2`). */
  values(name: keyof T & string): string[]
}

/** A leaf command's metadata: examples and whether it changes state are required (the conformance suite reads them). */
export type LeafCommandMeta = ProvCommandMeta & Required<Pick<ProvCommandMeta, 'examples' | 'mutating'>>

export interface ProvCommandDef<T extends ArgsDef> {
  meta: LeafCommandMeta
  args?: T
  /**
   * Operation name for the execution rules (`server.apply`): adds `--via-orch` / `--direct`, and
   * the command may be handed to a running orchestrator (via-orch.ts). Loads the config first.
   */
  orchestrated?: string
  /** Returns an exit code (default 0). Throw ProvError for failures. */
  run: (context: ProvContext<T>) => Promise<number | undefined | void> | number | undefined | void
}

/** `PROV_OUTPUT__FORMAT`, read directly (it applies before and without any config file). */
function outputFormatFromEnv(): string | undefined {
  const value = process.env.PROV_OUTPUT__FORMAT?.trim()
  if (!value || value === 'auto') return undefined
  if (!(outputFormats as readonly string[]).includes(value)) {
    throw configError(`invalid PROV_OUTPUT__FORMAT '${value}'`, { location: 'env:PROV_OUTPUT__FORMAT', hint: `use auto or one of ${outputFormats.join(', ')}` })
  }
  return value
}

/** `output.format` from the config files; an unknown value is the config error it is everywhere else. */
async function configuredOutputFormat(where: Pick<CommonOptions, 'workspace' | 'env' | 'infra'>): Promise<string | undefined> {
  const { outputFormat, outputFormatSource } = await probeSettings(where)
  if (outputFormat !== undefined && !(outputFormats as readonly string[]).includes(outputFormat)) {
    throw configError(`invalid config value for 'output.format': '${outputFormat}'`, {
      location: outputFormatSource,
      hint: `use auto or one of ${outputFormats.join(', ')}`,
    })
  }
  return outputFormat
}

/**
 * The settings a command needs before it runs (`output.format`) or before it reads stdin
 * (`limits.input_bytes`), read from the configuration files without validating them. A broken
 * configuration is reported by the command when it loads it; here it only means the defaults.
 */
async function probeSettings(common: Pick<CommonOptions, 'workspace' | 'env' | 'infra'>): Promise<import('./config/probe').ProbedSettings> {
  try {
    const { probeConfigSettings } = await import('./config/probe')
    return await probeConfigSettings(common)
  } catch {
    return {}
  }
}

/** Builds a citty command with the common flags, strict flag checking, stdin and output helpers. */
export function defineProvCommand<T extends ArgsDef = ArgsDef>(def: ProvCommandDef<T>): CommandDef<T & CommonArgs> {
  const args = { ...(def.args ?? {}), ...(def.orchestrated ? viaOrchArgs : {}), ...commonArgs } as T & CommonArgs
  return {
    meta: def.meta,
    args,
    async run(citty) {
      const parsed = citty.args as ParsedArgs<T & CommonArgs>
      // runProvMain checks options before parsing; this also covers commands run another way.
      const allowed = allowedFlagNames(args)
      for (const key of Object.keys(parsed)) if (!allowed.has(key)) throw unknownOptionError(key, args, def.meta.name)
      const dashIndex = citty.rawArgs.indexOf('--')
      const dashArgs = dashIndex >= 0 ? citty.rawArgs.slice(dashIndex + 1) : []
      const positionals = (parsed._ ?? []).slice(0, Math.max(0, (parsed._?.length ?? 0) - dashArgs.length))
      const where = {
        workspace: (parsed.workspace as string | undefined) || undefined,
        infra: (parsed.infra as string | undefined) || undefined,
        env: (parsed.env as string | undefined) || process.env.PROV_ENV || undefined,
      }
      // Mode ci: nobody watches or answers. JSON logs unless --log-format says otherwise, no
      // colours or animation, no questions, and --wait wherever a command can wait.
      const unattended = (await probeSettings(where)).mode === 'ci'
      setUnattended(unattended)
      const logFormatFlag = parsed['log-format'] as LogFormat | undefined
      const logFormat: LogFormat = logFormatFlag ?? (unattended ? 'json' : 'text')
      if (unattended && !logFormatFlag) configureLogger({ ...loggerOptions(), format: 'json' })
      const requestedOut = (parsed.out as string | undefined) || outputFormatFromEnv() || (await configuredOutputFormat(where))
      const common: CommonOptions = {
        ...where,
        check: Boolean(parsed.check),
        yes: Boolean(parsed.yes),
        wait: Boolean(parsed.wait) || unattended,
        parallel: parseParallel(parsed.parallel),
        out: resolveOutputFormat(requestedOut),
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
          stdinPromise ??= (async () => {
            // limits.input_bytes from the config files, unless the command has loaded them already.
            if (!inputLimitConfigured()) await probeSettings(where)
            return readStdinRecords()
          })()
          return stdinPromise
        },
        emit: (data) => emit(data, common.out),
        writer: () => new RecordWriter(common.out),
        values: (name) => optionValues(citty.rawArgs, name, args),
      }
      if (def.meta.destructive && !def.meta.confirms && !common.check) {
        const command = exitState.command || def.meta.name
        await confirmOrCancel({ yes: common.yes, what: `run '${command}'`, question: `${command}: ${def.meta.description}. Proceed?` })
      }
      if (def.orchestrated) {
        const relayed = await runViaOrchestrator({
          operation: def.orchestrated,
          common,
          viaOrch: Boolean((parsed as Record<string, unknown>)['via-orch']),
          direct: Boolean((parsed as Record<string, unknown>).direct),
        })
        if (relayed !== undefined) {
          exitState.code = relayed
          return
        }
      }
      const code = await def.run(context)
      exitState.code = typeof code === 'number' ? code : ExitCode.OK
    },
  }
}
