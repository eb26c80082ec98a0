import { chmodSync, closeSync, existsSync, mkdirSync, openSync, statSync } from 'node:fs'
import { basename } from 'node:path'

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
