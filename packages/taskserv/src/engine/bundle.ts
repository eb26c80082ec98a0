/** The files uploaded with every run of a taskserv: its folder plus the shared script library. */
import { createHash } from 'node:crypto'
import { readdirSync, readFileSync, statSync } from 'node:fs'
import { join } from 'node:path'
import { configError } from '@prov/core'

/**
 * File and folder names a taskserv folder may hold: they are written on the target under the
 * taskserv's folder, so they stay plain words (no quotes, spaces or control characters) and never
 * `.` or `..` (which would write beside or above it).
 */
export const BUNDLE_NAME_PATTERN = /^(?!\.\.?$)[A-Za-z0-9_.][A-Za-z0-9_.@+-]*$/

export interface BundleFile {
  path: string
  mode: number
  base64: string
}

export interface TaskservBundle {
  files: BundleFile[]
  /** Short content hash of the files (paths, modes and contents). */
  hash: string
}

const bundleCache = new Map<string, TaskservBundle>()

function collectFiles(root: string, prefix: string, out: BundleFile[]): void {
  for (const entry of readdirSync(root, { withFileTypes: true }).sort((a, b) => a.name.localeCompare(b.name))) {
    const full = join(root, entry.name)
    if (!BUNDLE_NAME_PATTERN.test(entry.name)) {
      throw configError(`unsupported file name '${prefix}${entry.name}' in a taskserv folder`, {
        location: full,
        hint: 'use letters, digits and _ . @ + - (not starting with -)',
      })
    }
    if (entry.isDirectory()) collectFiles(full, `${prefix}${entry.name}/`, out)
    else if (entry.isFile()) {
      out.push({ path: `${prefix}${entry.name}`, mode: statSync(full).mode & 0o777, base64: readFileSync(full).toString('base64') })
    }
  }
}

/** The files of a taskserv folder plus the shared library (under _lib/), read once per process. */
export function taskservBundle(dir: string, libDir?: string): TaskservBundle {
  const key = `${dir}\0${libDir ?? ''}`
  const cached = bundleCache.get(key)
  if (cached) return cached
  const files: BundleFile[] = []
  collectFiles(dir, '', files)
  if (libDir) collectFiles(libDir, '_lib/', files)
  const hash = createHash('sha256')
  for (const f of files) hash.update(`${f.path}\0${f.mode}\0${f.base64}\0`)
  const bundle = { files, hash: hash.digest('hex').slice(0, 16) }
  bundleCache.set(key, bundle)
  return bundle
}
