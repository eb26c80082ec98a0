/**
 * Exit codes shared by every prov binary (docs/json-contract.md).
 * Scripts rely on these numbers: never renumber them.
 */
export const ExitCode = {
  OK: 0,
  FAILED: 1,
  USAGE: 2,
  CONFIG: 3,
  DENIED: 4,
  NOT_FOUND: 5,
  PARTIAL: 6,
} as const
export type ExitCode = (typeof ExitCode)[keyof typeof ExitCode]

export const exitCodeNames: Record<ExitCode, string> = {
  0: 'ok',
  1: 'failed',
  2: 'usage',
  3: 'config',
  4: 'denied',
  5: 'not_found',
  6: 'partial',
}

export interface ProvErrorOptions {
  /** Where the problem is: `file:line`, a field path, a server name. */
  location?: string
  /** What the user can do about it. */
  hint?: string
  cause?: unknown
  /** Extra machine-readable detail (never secrets). */
  details?: Record<string, unknown>
}

/** How much of one quoted value an error line shows; a whole megabyte argument helps nobody. */
const quotedValueLimit = 200
/** How long one part of an error (message, location, hint) may be at most. */
const errorPartLimit = 2000

function clip(text: string, limit: number): string {
  return text.length > limit ? `${text.slice(0, limit)}…` : text
}

/**
 * An error text with every quoted value (`'…'`, `"…"`, `` `…` ``) cut to its first 200
 * characters and the whole text to 2000: error lines quote what the user gave, which may be huge.
 */
export function boundedErrorText(text: string): string {
  const quoted = text.replace(/(['"`])([^'"`\n]{201,})\1/g, (_all, quote: string, value: string) => `${quote}${clip(value, quotedValueLimit)}${quote}`)
  return clip(quoted, errorPartLimit)
}

/** The one error type binaries throw; the runner turns it into one stderr line and an exit code. */
export class ProvError extends Error {
  readonly code: ExitCode
  readonly location?: string
  readonly hint?: string
  readonly details?: Record<string, unknown>

  constructor(code: ExitCode, message: string, options: ProvErrorOptions = {}) {
    super(boundedErrorText(message), options.cause === undefined ? undefined : { cause: options.cause })
    this.name = 'ProvError'
    this.code = code
    this.location = options.location === undefined ? undefined : boundedErrorText(options.location)
    this.hint = options.hint === undefined ? undefined : boundedErrorText(options.hint)
    this.details = options.details
  }

  /** One line: `message (at location) — hint`. */
  toLine(): string {
    let line = this.message
    if (this.location) line += ` (at ${this.location})`
    if (this.hint) line += `; hint: ${this.hint}`
    return line
  }

  toJSON(): Record<string, unknown> {
    return {
      code: this.code,
      kind: exitCodeNames[this.code],
      message: this.message,
      ...(this.location ? { location: this.location } : {}),
      ...(this.hint ? { hint: this.hint } : {}),
      ...(this.details ? { details: this.details } : {}),
    }
  }
}

export const usageError = (message: string, options?: ProvErrorOptions) => new ProvError(ExitCode.USAGE, message, options)
export const configError = (message: string, options?: ProvErrorOptions) => new ProvError(ExitCode.CONFIG, message, options)
export const notFoundError = (message: string, options?: ProvErrorOptions) => new ProvError(ExitCode.NOT_FOUND, message, options)
export const deniedError = (message: string, options?: ProvErrorOptions) => new ProvError(ExitCode.DENIED, message, options)
export const failedError = (message: string, options?: ProvErrorOptions) => new ProvError(ExitCode.FAILED, message, options)

export function isProvError(error: unknown): error is ProvError {
  return error instanceof ProvError
}

/** Maps node system errors to the contract's exit codes. */
export function toProvError(error: unknown): ProvError {
  if (error instanceof ProvError) return error
  const err = error as NodeJS.ErrnoException
  const message = err?.message ?? String(error)
  switch (err?.code) {
    case 'ENOENT':
      return new ProvError(ExitCode.NOT_FOUND, message, { location: err.path, cause: error })
    case 'EACCES':
    case 'EPERM':
      return new ProvError(ExitCode.DENIED, message, { location: err.path, cause: error })
    case 'ENOSPC':
      return new ProvError(ExitCode.FAILED, `no space left on device${err.path ? ` writing ${err.path}` : ''}`, {
        cause: error,
        hint: 'free disk space and retry',
      })
    default:
      return new ProvError(ExitCode.FAILED, message, { cause: error })
  }
}
