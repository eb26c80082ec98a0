import { chmodSync, lchownSync, lstatSync, readdirSync } from 'node:fs'
import { join } from 'node:path'

/**
 * Root inside a sandbox is host uid SANDBOX_ID_BASE, uid N inside is SANDBOX_ID_BASE + N, for the
 * 65536 ids a Debian system uses (the same for gids). No host account lives in that range, so a
 * sandbox process that somehow reached a host file would only have "other" permissions on it.
 * Images are stored with their owners already shifted into the range (the user-namespace remapping
 * model of Docker's `userns-remap`): the kernel then shows them as root-owned inside.
 */
export const SANDBOX_ID_BASE = 2_000_000_000
export const SANDBOX_ID_COUNT = 65536

export const mapLine = `0 ${SANDBOX_ID_BASE} ${SANDBOX_ID_COUNT}\n`

/** Host id of an id inside a sandbox. */
export const hostId = (inside: number) => SANDBOX_ID_BASE + inside

/**
 * Moves the owners of a tree built by host root (ids 0-65535) into the sandbox range. Entries
 * already in the range are left alone, so a layer built inside a sandbox over shifted files stays
 * consistent. chown clears set-id bits, so the mode is written again afterwards.
 */
export function shiftOwnership(root: string): number {
  let count = 0
  const walk = (path: string) => {
    const st = lstatSync(path)
    const uid = st.uid < SANDBOX_ID_COUNT ? hostId(st.uid) : st.uid
    const gid = st.gid < SANDBOX_ID_COUNT ? hostId(st.gid) : st.gid
    if (uid !== st.uid || gid !== st.gid) {
      lchownSync(path, uid, gid)
      if (!st.isSymbolicLink()) chmodSync(path, st.mode & 0o7777)
    }
    count++
    if (st.isDirectory()) for (const entry of readdirSync(path)) walk(join(path, entry))
  }
  walk(root)
  return count
}
