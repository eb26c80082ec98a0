import { createInterface } from 'node:readline/promises'
import { usageError } from '@prov/core'

/**
 * Asks on the terminal (stderr) unless --yes, after showing `preview` (what would change).
 * Without a terminal on stdin there is nobody to ask: refuse (exit 2) rather than act unconfirmed.
 */
export async function confirmOrRefuse(question: string, yes: boolean, what: string, preview?: string): Promise<boolean> {
  if (yes) return true
  if (!process.stdin.isTTY) {
    throw usageError(`refusing to ${what} without --yes (stdin is not a terminal, so nobody can confirm)`, {
      hint: 'add --yes, or run --check to see what would change',
    })
  }
  if (preview) process.stderr.write(`${preview}\n`)
  const rl = createInterface({ input: process.stdin, output: process.stderr })
  try {
    const answer = await rl.question(`${question} [y/N] `)
    return /^y(es)?$/i.test(answer.trim())
  } finally {
    rl.close()
  }
}
