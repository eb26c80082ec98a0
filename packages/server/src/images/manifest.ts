import { createHash } from 'node:crypto'
import { type BigIntStats, closeSync, lstatSync, openSync, readdirSync, readlinkSync, readSync } from 'node:fs'
import { join } from 'node:path'

/**
 * The manifest of an image: every entry of its root filesystem with type, mode, owner, size and
 * content hash (files), target (symlinks) or device number (overlay whiteouts). It is written when
 * the image is built and checked before the image is used.
 *
 * Hashing hundreds of megabytes before every server start would be slow, so the check has two
 * levels, as git does for its index: after a full check the stat data of every entry (inode, size,
 * mtime, ctime) is kept, and a use compares only that. Any write to a file changes its ctime, which
 * nothing but the kernel can set, so a changed entry is noticed and then hashed against the manifest.
 */
export type EntryType = 'f' | 'd' | 'l' | 'c' | 'b' | 'p' | 's'

/** [path, type, mode, uid, gid, size, hash | link target | device number] */
export type ManifestEntry = [string, EntryType, number, number, number, number, string]

export interface Manifest {
  entries: ManifestEntry[]
  bytes: number
}

function typeOf(st: ReturnType<typeof lstatSync>): EntryType {
  if (!st) return 'f'
  if (st.isFile()) return 'f'
  if (st.isDirectory()) return 'd'
  if (st.isSymbolicLink()) return 'l'
  if (st.isCharacterDevice()) return 'c'
  if (st.isBlockDevice()) return 'b'
  if (st.isFIFO()) return 'p'
  return 's'
}

const chunk = Buffer.allocUnsafe(1 << 20)

export function hashFile(path: string): string {
  const hash = createHash('sha256')
  const fd = openSync(path, 'r')
  try {
    for (;;) {
      const n = readSync(fd, chunk, 0, chunk.length, null)
      if (n <= 0) break
      hash.update(chunk.subarray(0, n))
    }
  } finally {
    closeSync(fd)
  }
  return hash.digest('hex')
}

function entryOf(root: string, rel: string): { entry: ManifestEntry; stat: string } {
  const path = rel ? join(root, rel) : root
  const st = lstatSync(path, { bigint: true })
  const plain = lstatSync(path)
  const type = typeOf(plain)
  let extra = ''
  if (type === 'f') extra = hashFile(path)
  else if (type === 'l') extra = readlinkSync(path)
  else if (type === 'c' || type === 'b') extra = String(plain.rdev)
  const entry: ManifestEntry = [rel || '.', type, plain.mode & 0o7777, plain.uid, plain.gid, type === 'f' ? plain.size : 0, extra]
  return { entry, stat: statSignature(st) }
}

function statSignature(st: BigIntStats | undefined): string {
  if (!st) return ''
  return `${st.ino}:${st.size}:${st.mtimeNs}:${st.ctimeNs}:${st.mode}:${st.uid}:${st.gid}`
}

/** Relative paths of a tree, parents before children, sorted for a stable manifest. */
function walk(root: string, visit: (rel: string, isDir: boolean) => void): void {
  const recurse = (rel: string) => {
    const dir = rel ? join(root, rel) : root
    const entries = readdirSync(dir, { withFileTypes: true }).sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0))
    for (const entry of entries) {
      const child = rel ? `${rel}/${entry.name}` : entry.name
      visit(child, entry.isDirectory())
      if (entry.isDirectory()) recurse(child)
    }
  }
  visit('', true)
  recurse('')
}

/** Builds the manifest of a tree and the stat data that vouches for it. */
export function createManifest(root: string): { manifest: Manifest; stats: Record<string, string> } {
  const entries: ManifestEntry[] = []
  const stats: Record<string, string> = {}
  let bytes = 0
  walk(root, (rel) => {
    const { entry, stat } = entryOf(root, rel)
    entries.push(entry)
    stats[entry[0]] = stat
    bytes += entry[5]
  })
  return { manifest: { entries, bytes }, stats }
}

export interface VerifyResult {
  ok: boolean
  /** What differs (first few), for the message. */
  problems: string[]
  /** Fresh stat data when the tree matches (to store for the next quick check). */
  stats?: Record<string, string>
  /** Entries that had to be hashed. */
  hashed: number
}

const sameEntry = (a: ManifestEntry, b: ManifestEntry) => a.every((value, i) => value === b[i])

/**
 * Checks a tree against its manifest. With `known` stat data only changed entries are hashed
 * (quick); without it every file is (full).
 */
export function verifyTree(root: string, manifest: Manifest, known?: Record<string, string>): VerifyResult {
  const expected = new Map(manifest.entries.map((e) => [e[0], e]))
  const problems: string[] = []
  const stats: Record<string, string> = {}
  const seen = new Set<string>()
  let hashed = 0
  try {
    walk(root, (relRaw) => {
      const rel = relRaw || '.'
      seen.add(rel)
      const want = expected.get(rel)
      if (!want) {
        if (problems.length < 5) problems.push(`unexpected ${rel}`)
        return
      }
      const path = relRaw ? join(root, relRaw) : root
      const signature = statSignature(lstatSync(path, { bigint: true }))
      if (known && known[rel] === signature) {
        stats[rel] = signature
        return
      }
      hashed++
      const { entry, stat } = entryOf(root, relRaw)
      if (!sameEntry(entry, want)) {
        if (problems.length < 5) problems.push(`changed ${rel}`)
        return
      }
      stats[rel] = stat
    })
  } catch (error) {
    problems.push(`unreadable: ${(error as Error).message}`)
  }
  for (const rel of expected.keys()) {
    if (!seen.has(rel)) {
      if (problems.length < 5) problems.push(`missing ${rel}`)
      if (problems.length >= 5) break
    }
  }
  return problems.length ? { ok: false, problems, hashed } : { ok: true, problems, stats, hashed }
}
