import type { ConsolaInstance, ConsolaReporter, LogObject } from 'consola'
import { consolaLib } from './lazy'
import { redactString, redactValue } from './redact'
import { colourAllowed } from './util/interaction'
import { printable } from './util/printable'

export type LogFormat = 'text' | 'json'

export interface LoggerOptions {
  /** Only errors. */
  quiet?: boolean
  /** Debug detail and stack traces. */
  debug?: boolean
  /** `json` makes stderr NDJSON, one object per log line. */
  format?: LogFormat
  /** Also append every (redacted) line to this stream, e.g. a per-run log file. */
  tee?: NodeJS.WritableStream
}

function redactArgs(args: unknown[]): unknown[] {
  return args.map((arg) => {
    if (typeof arg === 'string') return printable(redactString(arg), { colours: true })
    if (arg instanceof Error) {
      const copy = new Error(printable(redactString(arg.message), { colours: true }))
      copy.stack = arg.stack ? redactString(arg.stack) : undefined
      return copy
    }
    return redactValue(arg)
  })
}

function jsonReporter(stream: NodeJS.WritableStream): ConsolaReporter {
  return {
    log(logObj: LogObject) {
      const [first, ...rest] = logObj.args
      const message = first instanceof Error ? first.message : typeof first === 'string' ? first : JSON.stringify(first)
      const record: Record<string, unknown> = {
        time: logObj.date.toISOString(),
        level: logObj.type,
        ...(logObj.tag ? { tag: logObj.tag } : {}),
        message: [message, ...rest.map((r) => (typeof r === 'string' ? r : JSON.stringify(r)))].join(' '),
      }
      stream.write(`${JSON.stringify(record)}\n`)
    },
  }
}

/**
 * The stderr logger. Every line passes through redaction first; stdout is never touched.
 */
export function createLogger(options: LoggerOptions = {}): ConsolaInstance {
  const level = options.quiet ? 0 : options.debug ? 5 : 3
  const logger = consolaLib().createConsola({
    level,
    stdout: process.stderr,
    stderr: process.stderr,
    formatOptions: { date: false, colors: colourAllowed(process.stderr) },
  })
  if (options.format === 'json') logger.setReporters([jsonReporter(process.stderr)])
  const reporters = [...logger.options.reporters]
  if (options.tee) reporters.push(jsonReporter(options.tee))
  logger.setReporters(
    reporters.map((reporter) => ({
      log(logObj, ctx) {
        reporter.log({ ...logObj, args: redactArgs(logObj.args) } as LogObject, ctx)
      },
    })),
  )
  return logger
}

let current: ConsolaInstance | undefined
let currentOptions: LoggerOptions = {}

/** consola's level of each logging method; the logger prints a call only up to its own level. */
const methodLevels: Partial<Record<string | symbol, number>> = {
  fatal: 0,
  error: 0,
  warn: 1,
  log: 2,
  info: 3,
  success: 3,
  fail: 3,
  ready: 3,
  start: 3,
  box: 3,
  debug: 4,
  trace: 5,
  verbose: 5,
}

const levelOf = (options: LoggerOptions) => (options.quiet ? 0 : options.debug ? 5 : 3)

function realLogger(): ConsolaInstance {
  current ??= createLogger(currentOptions)
  return current
}

/**
 * The process-wide logger as a facade: consola is loaded on the first call that prints (loading
 * it costs a short command ~40 ms), so a quiet command, or one that logs nothing, never loads it.
 */
const facade = new Proxy({} as ConsolaInstance, {
  get(_, prop) {
    const level = methodLevels[prop]
    if (level === undefined) {
      const value = Reflect.get(realLogger(), prop)
      return typeof value === 'function' ? value.bind(realLogger()) : value
    }
    return (...args: unknown[]) => {
      if (level > levelOf(currentOptions)) return
      return (Reflect.get(realLogger(), prop) as (...values: unknown[]) => unknown).apply(realLogger(), args)
    }
  },
  set(_, prop, value) {
    return Reflect.set(realLogger(), prop, value)
  },
})

/** The process-wide logger (configured by the command runner from --quiet/--debug/--log-format). */
export function log(): ConsolaInstance {
  return facade
}

/** Sets the options of the process-wide logger; it is created on first use (consola loads lazily). */
export function configureLogger(options: LoggerOptions): void {
  currentOptions = options
  current = undefined
}

export function loggerOptions(): LoggerOptions {
  return currentOptions
}
