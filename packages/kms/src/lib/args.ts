/** Flags shared by several prov-kms commands. */
import { usageError } from '@prov/core'
import { type BackendName, backendNames } from './settings'

export const cryptArgs = {
  context: { type: 'string', description: 'Encryption context (AAD): k=v,k=v (repeatable); decrypt needs the same', valueHint: 'k=v,...' },
  backend: { type: 'string', description: 'age (default from kms.backend), vault or awskms', valueHint: 'age|vault|awskms' },
} as const

/**
 * A string flag that may be repeated and/or comma-separated. citty keeps only the last of a
 * repeated flag, so the occurrences are collected from argv when the flag name is given.
 */
export function listFlag(raw: unknown, name?: string, alias?: string, argv: string[] = process.argv.slice(2)): string[] {
  if (raw === undefined || raw === false) return []
  let values = [raw].flat() as unknown[]
  if (name) {
    const found: string[] = []
    const dash = argv.indexOf('--')
    const own = dash >= 0 ? argv.slice(0, dash) : argv
    for (let i = 0; i < own.length; i++) {
      const word = own[i]
      if (word === `--${name}` || (alias && word === `-${alias}`)) {
        if (i + 1 < own.length) found.push(own[++i])
      } else if (word.startsWith(`--${name}=`)) found.push(word.slice(name.length + 3))
    }
    if (found.length > 1) values = found
  }
  return values.flatMap((v) =>
    String(v)
      .split(',')
      .map((s) => s.trim())
      .filter(Boolean),
  )
}

export function backendFlag(raw: unknown, fallback: BackendName): BackendName {
  if (raw === undefined) return fallback
  const value = String(raw)
  if (!(backendNames as string[]).includes(value)) {
    throw usageError(`unknown backend '${value}'`, { location: '--backend', hint: `use one of ${backendNames.join(', ')}` })
  }
  return value as BackendName
}
