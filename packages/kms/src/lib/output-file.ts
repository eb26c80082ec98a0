/**
 * `--output-file FILE`: the whole output goes to a temporary file next to FILE (0600, created
 * exclusively) and replaces FILE by rename only once the source has ended without error. A
 * decryption that fails (wrong key, altered or truncated input) leaves FILE as it was and no
 * plaintext behind. Reading and writing the same file is safe: the input stays open on the old one.
 */
import { randomBytes } from 'node:crypto'
import { closeSync, constants, existsSync, fchmodSync, fsyncSync, openSync, renameSync, rmSync, statSync, writeSync } from 'node:fs'
import { basename, dirname, join, resolve } from 'node:path'
import { type CommonOptions, notFoundError, usageError } from '@prov/core'
import { previewed } from './check'
import type { ByteSource } from './io'

export const outputFileArg = {
  type: 'string',
  description: 'Write the result to FILE (replaced only when the whole input succeeded; new files 0600)',
  valueHint: 'FILE',
} as const

/** Under `--check` with `--output-file`: the file that would be written (nothing is read or written). */
export function previewOutputFile(common: CommonOptions, emit: (data: unknown) => void, target: unknown): boolean {
  if (target === undefined || target === '') return false
  const path = resolve(String(target))
  return previewed(common, emit, [{ action: existsSync(path) ? 'replace' : 'write', target: path }])
}

export async function writeAllToFile(source: ByteSource, target: string): Promise<void> {
  const path = resolve(target)
  const dir = dirname(path)
  let existingMode: number | undefined
  try {
    const stat = statSync(path)
    if (!stat.isFile()) throw usageError(`--output-file ${target} is not a regular file`, { location: '--output-file' })
    existingMode = stat.mode & 0o777
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code !== 'ENOENT') throw error
  }
  const temp = join(dir, `.${basename(path)}.prov-kms-${process.pid}-${randomBytes(4).toString('hex')}`)
  let fd: number
  try {
    fd = openSync(temp, constants.O_WRONLY | constants.O_CREAT | constants.O_EXCL, 0o600)
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === 'ENOENT') throw notFoundError(`no folder ${dir} for --output-file`, { location: '--output-file' })
    throw error
  }
  try {
    try {
      for await (const chunk of source) {
        let offset = 0
        while (offset < chunk.length) offset += writeSync(fd, chunk, offset, chunk.length - offset)
      }
      if (existingMode !== undefined) fchmodSync(fd, existingMode)
      fsyncSync(fd)
    } finally {
      closeSync(fd)
    }
  } catch (error) {
    rmSync(temp, { force: true })
    throw error
  }
  try {
    renameSync(temp, path)
  } catch (error) {
    rmSync(temp, { force: true })
    throw error
  }
}
