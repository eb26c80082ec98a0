import { existsSync } from 'node:fs'
import { posix } from 'node:path'
import { failedError } from '@prov/core'
import type { HostBind } from './isolate'

const MAX_BINDS = 8
const reservedInside = ['/proc', '/sys', '/dev', '/run', '/tmp']
const reservedOnHost = ['/proc', '/sys', '/dev', '/run/prov']
const under = (path: string, prefixes: string[]) => prefixes.some((p) => path === p || path.startsWith(`${p}/`))

/**
 * `options.binds` of a local server: host paths it is explicitly given, read-only — a path or
 * `{ host, path }` (where it shows up inside; default the same path). Returns the binds, or throws
 * with what is wrong.
 */
export function parseBinds(options: Record<string, unknown> | undefined): HostBind[] {
  const raw = options?.binds
  if (raw === undefined) return []
  if (!Array.isArray(raw)) throw failedError('options.binds must be a list of host paths (or { host, path })')
  if (raw.length > MAX_BINDS) throw failedError(`options.binds: at most ${MAX_BINDS}`)
  return raw.map((item) => {
    const host = typeof item === 'string' ? item : (item as { host?: unknown })?.host
    const path = typeof item === 'string' ? item : ((item as { path?: unknown })?.path ?? host)
    if (typeof host !== 'string' || typeof path !== 'string') throw failedError('options.binds: each entry is a path or { host, path }')
    for (const [value, what] of [
      [host, 'host path'],
      [path, 'path inside'],
    ] as const) {
      if (!value.startsWith('/') || value === '/' || posix.normalize(value) !== value || value.endsWith('/') || /[,:\\\n\0]/.test(value)) {
        throw failedError(`options.binds: ${what} '${value}' must be absolute and normalised, not /, without , : or \\`)
      }
    }
    if (under(host, reservedOnHost)) throw failedError(`options.binds: '${host}' is not something a sandbox may be given`)
    if (under(path, reservedInside)) throw failedError(`options.binds: '${path}' is under a folder each sandbox mounts itself`)
    if (!existsSync(host)) throw failedError(`options.binds: '${host}' does not exist on this host`)
    return { host, path }
  })
}
