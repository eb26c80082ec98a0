import { createInterface } from 'node:readline/promises'
import { usageError } from '../errors'

export interface ConfirmOptions {
  /** `--yes` was given: no question. */
  yes: boolean
  /** What would be done, for the refusal (`delete servers`). */
  what: string
  /** The question asked on a terminal (default: `<what>?`). */
  question?: string
  /** stdin of the process (tests pass their own). */
  input?: NodeJS.ReadStream
}

/**
 * Confirmation of a destructive action: with `--yes` it proceeds; without a terminal on stdin there
 * is nobody to ask, so it refuses (exit 2) rather than act unconfirmed; on a terminal it asks on
 * stderr and resolves with the answer (only `y`/`yes` proceeds).
 */
export async function confirmOrRefuse(options: ConfirmOptions): Promise<boolean> {
  if (options.yes) return true
  const input = options.input ?? process.stdin
  if (!input.isTTY) {
    throw usageError(`refusing to ${options.what} without --yes (stdin is not a terminal, so nobody can confirm)`, {
      hint: 'add --yes, or run with --check to see what would change',
    })
  }
  const rl = createInterface({ input, output: process.stderr })
  try {
    const answer = await rl.question(`${options.question ?? `${options.what}?`} [y/N] `)
    return /^y(es)?$/i.test(answer.trim())
  } finally {
    rl.close()
  }
}
