import { usageError } from '../errors'

/** Words that need no quoting in any POSIX shell position (no `=`, `~`, `%`, `@`, globs or blanks). */
const plainWord = /^[A-Za-z0-9_+:,./-]+$/

/**
 * Quotes one value as exactly one POSIX shell word: plain words stay as they are (readable in
 * logs), anything else is single-quoted with `'` written as `'\''`. The shell then passes the value
 * through unchanged, whatever it holds: `$(...)`, backquotes, `;`, newlines, globs. A NUL byte
 * cannot be passed to a program at all and is refused.
 */
export function shellQuote(value: string): string {
  if (value.includes('\0')) throw usageError('a shell argument cannot contain a NUL byte', { hint: 'remove the NUL byte from the value' })
  return plainWord.test(value) ? value : `'${value.replace(/'/g, `'\\''`)}'`
}

/** An argv as one shell command line, each element one word. */
export function shellJoin(argv: readonly string[]): string {
  return argv.map(shellQuote).join(' ')
}
