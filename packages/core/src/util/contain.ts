import { existsSync, lstatSync, mkdirSync, realpathSync, rmSync } from 'node:fs'
import { basename, dirname, isAbsolute, join, relative, resolve, sep } from 'node:path'
import { deniedError, usageError } from '../errors'

/**
 * Every filesystem write or delete prov does on behalf of input (a plan, a name, a reference, a
 * tar entry) goes through these helpers: the path is resolved, symlinks of the part that exists
 * are followed, and anything that lands outside the directory owning it is refused. A hostile
 * name such as `../../etc` or a symlinked folder can then never move a write or a delete.
 */

/** True when `child` is `parent` itself or lies below it (both absolute, normalised). */
export function isInside(parent: string, child: string): boolean {
  const rel = relative(parent, child)
  return rel === '' || (!rel.startsWith(`..${sep}`) && rel !== '..' && !isAbsolute(rel))
}

/** The real path of `path`, or of its deepest existing ancestor joined with the rest. */
function realPathOfPossiblyMissing(path: string): string {
  const missing: string[] = []
  let current = path
  for (;;) {
    try {
      const real = realpathSync(current)
      return missing.length ? resolve(real, ...missing.reverse()) : real
    } catch (error) {
      const code = (error as NodeJS.ErrnoException).code
      if (code !== 'ENOENT' && code !== 'ENOTDIR') throw error
      const parent = dirname(current)
      if (parent === current) return path
      missing.push(current.slice(parent.length).replace(/^[/\\]+/, ''))
      current = parent
    }
  }
}

export interface ContainOptions {
  /** Names the owner in the error message, e.g. `the workspace state`. */
  what?: string
  /** The final component may be a symlink (it is removed or replaced, never followed). */
  allowFinalSymlink?: boolean
}

/**
 * Resolves `segments` under `root` and returns the absolute path, or throws (exit 4) when the
 * result, after following existing symlinks, is not inside `root`. `root` itself may not exist yet.
 */
export function containedPath(root: string, segments: string | string[], options: ContainOptions = {}): string {
  const parts = typeof segments === 'string' ? [segments] : segments
  for (const part of parts) {
    if (part.includes('\0')) throw usageError(`path contains a NUL byte: ${JSON.stringify(part)}`)
  }
  const absRoot = resolve(root)
  const target = resolve(absRoot, ...parts)
  const what = options.what ?? absRoot
  if (!isInside(absRoot, target)) {
    throw deniedError(`refusing a path outside ${what}: ${target}`, { location: target, hint: 'names and references may not contain .. or absolute paths' })
  }
  const realRoot = realPathOfPossiblyMissing(absRoot)
  let finalIsLink = false
  try {
    finalIsLink = lstatSync(target).isSymbolicLink()
  } catch {
    // does not exist yet
  }
  const checked =
    finalIsLink && options.allowFinalSymlink ? join(realPathOfPossiblyMissing(dirname(target)), basename(target)) : realPathOfPossiblyMissing(target)
  if (!isInside(realRoot, checked)) {
    throw deniedError(`refusing a path outside ${what}: ${target} resolves to ${checked}`, {
      location: target,
      hint: 'a symlink inside the directory points outside it; remove the link',
    })
  }
  return target
}

/** A single path component taken from input (a name, a tag): no separators, no `.`/`..`, no NUL. */
export function assertPathSegment(value: string, what: string): string {
  if (!value || value === '.' || value === '..' || /[/\\\0]/.test(value)) {
    throw usageError(`${what} must be a single name without '/', '..' or NUL: ${JSON.stringify(value)}`, { location: what })
  }
  return value
}

/** `mkdir -p` of a path contained in `root`; returns it. */
export function mkdirContained(root: string, segments: string | string[], options: ContainOptions & { mode?: number } = {}): string {
  const path = containedPath(root, segments, options)
  mkdirSync(path, { recursive: true, ...(options.mode === undefined ? {} : { mode: options.mode }) })
  // A symlink swapped in while creating would show up here.
  containedPath(root, segments, options)
  return path
}

/** `rm -rf` of a path contained in `root` (a symlink is removed, never followed). Missing is fine. */
export function removeContained(root: string, segments: string | string[], options: ContainOptions = {}): void {
  const path = containedPath(root, segments, { ...options, allowFinalSymlink: true })
  if (resolve(path) === resolve(root)) throw deniedError(`refusing to remove ${options.what ?? root} itself`, { location: path })
  if (!existsSync(path) && !isSymlink(path)) return
  rmSync(path, { recursive: true, force: true })
}

function isSymlink(path: string): boolean {
  try {
    return lstatSync(path).isSymbolicLink()
  } catch {
    return false
  }
}
