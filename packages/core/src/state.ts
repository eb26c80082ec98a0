import { AsyncLocalStorage } from 'node:async_hooks'
import { randomBytes } from 'node:crypto'
import { closeSync, constants, fsyncSync, mkdirSync, openSync, readFileSync, renameSync, rmSync, unlinkSync, writeSync } from 'node:fs'
import { dirname } from 'node:path'
import { setTimeout as sleep } from 'node:timers/promises'
import { configError, failedError } from './errors'

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

function processAlive(pid: number): boolean {
  try {
    process.kill(pid, 0)
    return true
  } catch (error) {
    return (error as NodeJS.ErrnoException).code === 'EPERM'
  }
}

export interface LockOptions {
  /** How long to wait for another holder, in ms (default 30 s). */
  timeoutMs?: number
}

/** Lock paths held by the current async call chain (re-entrancy is per chain, not per process). */
const heldInContext = new AsyncLocalStorage<ReadonlySet<string>>()
/** In-process queue per lock path: parallel callers in one process wait for each other too. */
const localQueues = new Map<string, Promise<void>>()

/**
 * Runs `fn` holding an exclusive lock file `<path>.lock`. A lock left by a dead process
 * (kill -9) is taken over. Re-entrant for nested calls in the same async chain; concurrent
 * callers in one process are queued.
 */
export async function withLock<T>(path: string, fn: () => Promise<T> | T, options: LockOptions = {}): Promise<T> {
  const lockPath = `${path}.lock`
  const held = heldInContext.getStore()
  if (held?.has(lockPath)) return fn()
  const previous = localQueues.get(lockPath) ?? Promise.resolve()
  let release: () => void = () => {}
  const mine = new Promise<void>((resolve) => {
    release = resolve
  })
  const tail = previous.then(() => mine)
  localQueues.set(lockPath, tail)
  await previous
  try {
    await acquireLockFile(lockPath, options)
    try {
      return await heldInContext.run(new Set([...(held ?? []), lockPath]), fn)
    } finally {
      rmSync(lockPath, { force: true })
    }
  } finally {
    release()
    if (localQueues.get(lockPath) === tail) localQueues.delete(lockPath)
  }
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
      if (Number.isInteger(owner) && owner > 0 && !processAlive(owner)) {
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

export function readJsonFile<T>(path: string, fallback: T): T {
  let text: string
  try {
    text = readFileSync(path, 'utf8')
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === 'ENOENT') return fallback
    throw error
  }
  try {
    return JSON.parse(text) as T
  } catch (error) {
    throw configError(`state file is not valid JSON: ${(error as Error).message}`, {
      location: path,
      hint: 'state files are written by prov only; restore it from a backup or remove it',
    })
  }
}

/** Read-modify-write of a JSON state file under its lock: concurrent updaters never lose a write. */
export async function updateJsonFile<T>(path: string, fallback: T, update: (current: T) => T | Promise<T>, options: WriteOptions = {}): Promise<T> {
  return withLock(path, async () => {
    const next = await update(readJsonFile(path, fallback))
    writeFileAtomic(path, `${JSON.stringify(next, null, 2)}\n`, options)
    return next
  })
}
