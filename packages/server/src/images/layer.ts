/**
 * Writing into a sandbox's upper layer from the host: every directory on the way is checked in
 * the layer and in the image below it, so a symlink the sandbox planted never redirects a write.
 */
import { chmodSync, chownSync, lstatSync, mkdirSync, rmSync, writeFileSync } from 'node:fs'
import { join } from 'node:path'
import { failedError } from '@prov/core'
import { hostId } from './idmap'

/** lstat that answers undefined for a missing path. */
function lstatOrNothing(path: string) {
  try {
    return lstatSync(path)
  } catch {
    return undefined
  }
}

/**
 * Creates the directories of `relDir` in a layer directory (an image layer, or a sandbox's upper
 * layer) that are missing there, with the owner and mode they have in the layers below (so the
 * merged view does not change), else root 0755. The layer may hold content a sandbox (or a
 * package) wrote: a component that is a symlink, here or below, is refused, so a host-side write
 * can never be steered out of the layer.
 */
export function ensureLayerDirs(layer: string, lowers: string[], relDir: string): string {
  let rel = ''
  for (const part of relDir.split('/').filter(Boolean)) {
    if (part === '.' || part === '..') throw failedError(`invalid path ${relDir}`)
    rel = `${rel}/${part}`
    const target = join(layer, rel)
    const here = lstatOrNothing(target)
    const below = lowers.map((l) => lstatOrNothing(join(l, rel))).find(Boolean)
    for (const st of [here, below]) {
      if (st && !st.isDirectory()) throw failedError(`${rel} is ${st.isSymbolicLink() ? 'a symlink' : 'not a directory'} in the image; cannot write below it`)
    }
    if (here) continue
    mkdirSync(target, { mode: below ? below.mode & 0o7777 : 0o755 })
    chownSync(target, below?.uid ?? hostId(0), below?.gid ?? hostId(0))
    chmodSync(target, below ? below.mode & 0o7777 : 0o755)
  }
  return join(layer, rel)
}

/** Writes a file (owned by `uid` inside the sandbox) into a layer directory; see ensureLayerDirs. */
export function writeLayerFile(layer: string, lowers: string[], path: string, content: Buffer | string, mode: number, uid = 0): void {
  const parts = path.split('/').filter(Boolean)
  const name = parts.pop()
  if (!name || name === '.' || name === '..') throw failedError(`invalid path ${path}`)
  const file = join(ensureLayerDirs(layer, lowers, parts.join('/')), name)
  const existing = lstatOrNothing(file)
  if (existing?.isDirectory()) throw failedError(`${path} is a directory in the image`)
  if (existing) rmSync(file, { force: true })
  writeFileSync(file, content, { mode, flag: 'wx' })
  chownSync(file, hostId(uid), hostId(uid))
  chmodSync(file, mode)
}
