import { createInterface } from 'node:readline/promises'
import { failedError, usageError } from '../errors'
import { isUnattended } from './interaction'

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
 * Confirmation of a destructive action: with `--yes` it proceeds; in mode `ci`, or without a
 * terminal on stdin, there is nobody to ask, so it refuses (exit 2) rather than act unconfirmed; on a terminal it asks on
 * stderr and resolves with the answer (only `y`/`yes` proceeds).
 */
export async function confirmOrRefuse(options: ConfirmOptions): Promise<boolean> {
  if (options.yes) return true
  if (isUnattended()) {
    throw usageError(`mode ci never asks: refusing to ${options.what} without --yes`, {
      location: 'mode',
      hint: 'add --yes, or run with --check to see what would change',
    })
  }
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

/**
 * `confirmOrRefuse`, with "no" ending the command the way the contract says: exit 1, one line
 * saying what was cancelled and that nothing changed.
 */
export async function confirmOrCancel(options: ConfirmOptions): Promise<void> {
  if (!(await confirmOrRefuse(options))) throw failedError(`${options.what}: cancelled, nothing was changed`, { hint: 'answer y to proceed, or pass --yes' })
}
