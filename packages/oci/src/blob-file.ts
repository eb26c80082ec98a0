import { randomBytes } from 'node:crypto'
import { closeSync, createWriteStream, fsyncSync, mkdirSync, openSync, renameSync, rmSync, type WriteStream, writeSync } from 'node:fs'
import { dirname, join } from 'node:path'
import type { Readable } from 'node:stream'
import { pipeline } from 'node:stream/promises'
import { failedError, ProvError } from '@prov/core'

/**
 * Streams a blob into `path` from a verified source (one that ends with an error instead of its
 * end when the bytes do not verify). Same guarantees as writeBlobFile: nothing half-written or
 * unverified is ever visible under `path`.
 */
export async function writeBlobStream(path: string, source: Readable): Promise<void> {
  const dir = dirname(path)
  const temp = join(dir, `.tmp-${process.pid}-${randomBytes(6).toString('hex')}`)
  let sink: WriteStream | undefined
  try {
    mkdirSync(dir, { recursive: true })
    sink = createWriteStream(temp, { flags: 'wx', mode: 0o644 })
    await pipeline(source, sink)
    renameSync(temp, path)
  } catch (error) {
    source.destroy()
    // The file is opened asynchronously: a source that fails at once (a digest refused early) may
    // end the pipeline before the open did, and the file would appear after this removal.
    const opened = sink
    if (opened && !opened.closed) await new Promise<void>((settled) => opened.once('close', () => settled()))
    rmSync(temp, { force: true })
    const code = (error as NodeJS.ErrnoException).code
    if (code === 'ENOSPC' || code === 'EDQUOT') throw noSpaceError(path, dir, error)
    if (error instanceof ProvError) throw error
    throw failedError(`download broke off while writing ${path}: ${(error as Error).message}`, { location: dir, cause: error, details: { network: true } })
  }
}

/**
 * Writes a blob so no half-written file is ever visible under its final name:
 * a temp file in the same folder, fsync, rename. A full disk is a clear error and leaves nothing.
 */
export function writeBlobFile(path: string, bytes: Uint8Array): void {
  const dir = dirname(path)
  const temp = join(dir, `.tmp-${process.pid}-${randomBytes(6).toString('hex')}`)
  let fd: number | undefined
  try {
    mkdirSync(dir, { recursive: true })
    fd = openSync(temp, 'wx', 0o644)
    let offset = 0
    while (offset < bytes.length) offset += writeSync(fd, bytes, offset, bytes.length - offset)
    // Large blobs skip fsync: every read verifies the digest, so a blob torn by a power cut is
    // refused (and fetched again), never used. Small ones (manifests, configs) are synced.
    if (bytes.length < 1024 * 1024) fsyncSync(fd)
    closeSync(fd)
    fd = undefined
    renameSync(temp, path)
  } catch (error) {
    if (fd !== undefined) closeSync(fd)
    rmSync(temp, { force: true })
    const code = (error as NodeJS.ErrnoException).code
    if (code === 'ENOSPC' || code === 'EDQUOT') throw noSpaceError(path, dir, error)
    if (code === 'EACCES' || code === 'EROFS') throw failedError(`cannot write ${path}: ${code}`, { location: dir, cause: error })
    throw error
  }
}

/** A full disk while writing a blob: the temp file is already gone, so nothing was stored. */
function noSpaceError(path: string, dir: string, cause: unknown): ProvError {
  return failedError(`no space left on device while writing ${path}: nothing was stored`, {
    location: dir,
    hint: 'free space or point the cache elsewhere (PROV_OCI_CACHE)',
    cause,
  })
}
