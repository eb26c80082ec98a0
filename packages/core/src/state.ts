import { AsyncLocalStorage } from 'node:async_hooks'
import { randomBytes } from 'node:crypto'
import { closeSync, constants, fsyncSync, mkdirSync, openSync, readFileSync, renameSync, rmSync, statSync, unlinkSync, writeSync } from 'node:fs'
import { mkdir, open, rename, rm } from 'node:fs/promises'
import { dirname } from 'node:path'
import { setTimeout as sleep } from 'node:timers/promises'
import { configError, ExitCode, failedError, isProvError } from './errors'
import { formatBytes, MAX_STATE_FILE_BYTES } from './limits'
import { pidAlive } from './util/process'
import { serialised } from './util/queue'
import { assertSafeStructure } from './util/structure'

export interface WriteOptions {
  /** File mode, e.g. 0o600 for keys and credentials. */
  mode?: number
}

/**
 * Writes a file so that readers see either the old or the new content, never a mix,
 * even after `kill -9` or a power cut: temp file + fsync + rename + fsync of the folder.
 */
export function writeFileAtomic(path: string, data: string | Uint8Array, options: WriteOptions = {}): void {
  const dir = dirname(path)
  mkdirSync(dir, { recursive: true })
  const temp = `${path}.tmp-${process.pid}-${randomBytes(4).toString('hex')}`
  const fd = openSync(temp, constants.O_WRONLY | constants.O_CREAT | constants.O_EXCL, options.mode ?? 0o644)
  try {
    const buffer = typeof data === 'string' ? Buffer.from(data) : data
    let offset = 0
    while (offset < buffer.length) offset += writeSync(fd, buffer, offset, buffer.length - offset)
    fsyncSync(fd)
  } catch (error) {
    closeSync(fd)
    rmSync(temp, { force: true })
    throw error
  }
  closeSync(fd)
  try {
    renameSync(temp, path)
  } catch (error) {
    rmSync(temp, { force: true })
    throw error
  }
  try {
    const dirFd = openSync(dir, constants.O_RDONLY)
    try {
      fsyncSync(dirFd)
    } finally {
      closeSync(dirFd)
    }
  } catch {
    // Some filesystems refuse fsync on a directory; the rename is still atomic.
  }
}

/**
 * writeFileAtomic with the same guarantees, whose writes and fsyncs run off the main thread: a
 * command saving state for many servers at once keeps starting the others meanwhile.
 */
export async function writeFileAtomicAsync(path: string, data: string | Uint8Array, options: WriteOptions = {}): Promise<void> {
  const dir = dirname(path)
  await mkdir(dir, { recursive: true })
  const temp = `${path}.tmp-${process.pid}-${randomBytes(4).toString('hex')}`
  const file = await open(temp, constants.O_WRONLY | constants.O_CREAT | constants.O_EXCL, options.mode ?? 0o644)
  try {
    await file.writeFile(data)
    await file.sync()
    await file.close()
    await rename(temp, path)
  } catch (error) {
    await file.close().catch(() => undefined)
    await rm(temp, { force: true })
    throw error
  }
  try {
    const folder = await open(dir, constants.O_RDONLY)
    try {
      await folder.sync()
    } finally {
      await folder.close()
    }
  } catch {
    // Some filesystems refuse fsync on a directory; the rename is still atomic.
  }
}

export interface LockOptions {
  /** How long to wait for another holder, in ms (default 30 s). */
  timeoutMs?: number
}

/** Lock paths held by the current async call chain (re-entrancy is per chain, not per process). */
const heldInContext = new AsyncLocalStorage<ReadonlySet<string>>()

/**
 * Runs `fn` holding an exclusive lock file `<path>.lock`. A lock left by a dead process
 * (kill -9) is taken over. Re-entrant for nested calls in the same async chain; concurrent
 * callers in one process are queued.
 */
export async function withLock<T>(path: string, fn: () => Promise<T> | T, options: LockOptions = {}): Promise<T> {
  const lockPath = `${path}.lock`
  const held = heldInContext.getStore()
  if (held?.has(lockPath)) return fn()
  // Parallel callers in one process queue here; the lock file orders the processes.
  return serialised(lockPath, async () => {
    await acquireLockFile(lockPath, options)
    try {
      return await heldInContext.run(new Set([...(held ?? []), lockPath]), fn)
    } finally {
      rmSync(lockPath, { force: true })
    }
  })
}

async function acquireLockFile(lockPath: string, options: LockOptions): Promise<void> {
  mkdirSync(dirname(lockPath), { recursive: true })
  const deadline = Date.now() + (options.timeoutMs ?? 30_000)
  let delay = 5
  for (;;) {
    try {
      const fd = openSync(lockPath, constants.O_WRONLY | constants.O_CREAT | constants.O_EXCL, 0o644)
      writeSync(fd, `${process.pid}\n`)
      closeSync(fd)
      return
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code !== 'EEXIST') throw error
      let owner = Number.NaN
      try {
        owner = Number.parseInt(readFileSync(lockPath, 'utf8'), 10)
      } catch {
        continue // released between our open and read
      }
      // No pid yet means the holder is between open and write: treat as alive.
      if (Number.isInteger(owner) && owner > 0 && !pidAlive(owner)) {
        try {
          // Rename first so two waiters cannot both remove a fresh lock.
          const stale = `${lockPath}.stale-${process.pid}`
          renameSync(lockPath, stale)
          unlinkSync(stale)
        } catch {
          // someone else took it over
        }
        continue
      }
      if (Date.now() > deadline) {
        throw failedError(`state is locked by another prov process (pid ${Number.isNaN(owner) ? '?' : owner})`, {
          location: lockPath,
          hint: 'wait for it to finish; a lock of a dead process is taken over automatically',
        })
      }
      await sleep(delay + Math.random() * delay)
      delay = Math.min(delay * 2, 100)
    }
  }
}

/**
 * Reads a JSON state file; a missing file gives `fallback`. State files are written by prov, but
 * anyone with the user's rights can edit them: a file over MAX_STATE_FILE_BYTES, nested deeper than
 * any state can be, or holding `__proto__` is refused like malformed JSON (exit 3).
 */
export function readJsonFile<T>(path: string, fallback: T): T {
  let text: string
  try {
    if (statSync(path).size > MAX_STATE_FILE_BYTES) {
      throw configError(`state file is larger than ${formatBytes(MAX_STATE_FILE_BYTES)}`, {
        location: path,
        hint: 'state files are written by prov only; restore it from a backup or remove it',
      })
    }
    text = readFileSync(path, 'utf8')
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === 'ENOENT') return fallback
    throw error
  }
  try {
    const value = JSON.parse(text) as T
    assertSafeStructure(value, { source: path, keyCode: ExitCode.CONFIG, forbiddenKeys: new Set(['__proto__']) })
    return value
  } catch (error) {
    if (isProvError(error)) throw error
    throw configError(`state file is not valid JSON: ${(error as Error).message}`, {
      location: path,
      hint: 'state files are written by prov only; restore it from a backup or remove it',
    })
  }
}

/**
 * Read-modify-write of a JSON state file under its lock: concurrent updaters never lose a write.
 * State may hold settings, addresses and provider ids: written 0600 unless told otherwise.
 */
export async function updateJsonFile<T>(path: string, fallback: T, update: (current: T) => T | Promise<T>, options: WriteOptions = {}): Promise<T> {
  return withLock(path, async () => {
    const next = await update(readJsonFile(path, fallback))
    await writeFileAtomicAsync(path, `${JSON.stringify(next, null, 2)}\n`, { mode: 0o600, ...options })
    return next
  })
}
