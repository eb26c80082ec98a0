import { chmodSync, closeSync, existsSync, lstatSync, mkdirSync, openSync, type Stats, statSync } from 'node:fs'
import { basename, dirname } from 'node:path'
import { deniedError } from '@prov/core'

const ownedByMe = (uid: number) => uid === process.getuid?.()

/**
 * Creates `dir` (and missing parents) for the orchestrator's state: new folders are 0700. The
 * workspace state folder `.prov` is tightened to 0700 too when we own it (it holds the store,
 * the socket and the token); other existing folders (say, /tmp for a store there) are left alone.
 */
export function ensurePrivateDir(dir: string): void {
  mkdirSync(dir, { recursive: true, mode: 0o700 })
  if (basename(dir) !== '.prov') return
  const st = statSync(dir)
  if (st.mode & 0o077 && ownedByMe(st.uid)) chmodSync(dir, 0o700)
}

/** Creates `file` empty with mode 0600 if it is missing; makes an existing file of ours 0600. */
export function ensurePrivateFile(file: string): void {
  if (!existsSync(file)) {
    closeSync(openSync(file, 'a', 0o600))
    return
  }
  restrictFile(file)
}

/** chmod 0600 when group or others have any access and the file is ours (no-op if missing). */
export function restrictFile(file: string): void {
  try {
    const st = statSync(file)
    if (st.mode & 0o077 && ownedByMe(st.uid)) chmodSync(file, 0o600)
  } catch {
    // not there (yet)
  }
}

const mode = (st: Stats) => (st.mode & 0o7777).toString(8)

/**
 * A SQLite store is trusted as code: queued steps are read back from it and run as this user. So
 * its folder must be this user's (or root's) and writable by nobody else, and the database with
 * its -wal, -shm and -journal files must be this user's and not writable by group or others;
 * otherwise another local user could have planted or edit them. Refused (exit 4), never repaired,
 * except that our own files are tightened to 0600.
 */
export function assertPrivateStore(path: string): void {
  const me = process.getuid?.()
  if (me === undefined) return
  const dir = dirname(path)
  const refuse = (what: string, hint: string) => deniedError(`SQLite store ${what}; refusing to open it`, { location: path, hint })
  for (const st of [lstatSync(dir), statSync(dir)]) {
    if ((st.uid !== me && st.uid !== 0) || st.mode & 0o022)
      throw refuse(
        `folder ${dir} is owned by uid ${st.uid} with mode ${mode(st)}: another user can replace the database`,
        `keep the store in a folder of yours that only you can write (chmod 700 ${dir}), not in a shared folder such as /tmp`,
      )
  }
  for (const file of [path, `${path}-wal`, `${path}-shm`, `${path}-journal`]) {
    let link: Stats
    try {
      link = lstatSync(file)
    } catch {
      continue
    }
    const target = link.isSymbolicLink() ? statSync(file, { throwIfNoEntry: false }) : link
    for (const st of [link, target]) {
      if (!st) continue
      if (st.uid !== me)
        throw refuse(`file ${file} is owned by uid ${st.uid}, not by you (uid ${me})`, `remove ${file} if you did not create it, or run as its owner`)
    }
    if (target && target.mode & 0o022) {
      if (target.isFile()) restrictFile(file)
      else throw refuse(`file ${file} is not a regular file`, `remove ${file}`)
    }
  }
}
