import { createDefu } from 'defu'
import { PROTOTYPE_KEYS } from '../util/structure'

/**
 * Deep merge of config layers: objects merge, arrays and scalars of the higher layer replace
 * the lower ones. Arguments go from highest to lowest priority, as with defu.
 */
export const mergeLayers = createDefu((target, key, value) => {
  if (Array.isArray(value)) {
    ;(target as Record<string, unknown>)[key as string] = value
    return true
  }
  return false
})

export function isPlainObject(value: unknown): value is Record<string, unknown> {
  return !!value && typeof value === 'object' && !Array.isArray(value) && Object.getPrototypeOf(value) === Object.prototype
}

/** Dotted paths of every leaf (scalars and arrays count as leaves). */
export function flattenLeaves(value: Record<string, unknown>, prefix = '', out = new Map<string, unknown>()): Map<string, unknown> {
  for (const [key, child] of Object.entries(value)) {
    const path = prefix ? `${prefix}.${key}` : key
    if (isPlainObject(child) && Object.keys(child).length) flattenLeaves(child, path, out)
    else out.set(path, child)
  }
  return out
}

/** The value at a dotted path; only own properties count (`constructor` is not a key of `{}`). */
export function getPath(root: unknown, path: string): unknown {
  let node = root
  for (const part of path.split('.')) {
    if (node === null || typeof node !== 'object' || !Object.hasOwn(node, part)) return undefined
    node = (node as Record<string, unknown>)[part]
  }
  return node
}

/** Sets a dotted path, creating objects on the way; a prototype key is a programming error here (callers validate input). */
export function setPath(root: Record<string, unknown>, path: string, value: unknown): void {
  const parts = path.split('.')
  if (parts.some((part) => PROTOTYPE_KEYS.has(part))) throw new TypeError(`refusing to set prototype key path '${path}'`)
  let node = root
  for (const part of parts.slice(0, -1)) {
    if (!isPlainObject(node[part])) node[part] = {}
    node = node[part] as Record<string, unknown>
  }
  node[parts[parts.length - 1]] = value
}
