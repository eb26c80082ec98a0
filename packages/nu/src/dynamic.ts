import { existsSync, readdirSync } from 'node:fs'
import { join } from 'node:path'
import type { CommandSpec } from './spec'

/**
 * Values that completions offer for arguments, read cheaply from local files (no network, no
 * SSH): server names from the workspace state, taskserv names from the catalog, workspace and
 * infrastructure names.
 */

export const dynamicKinds = ['servers', 'taskservs', 'clusters', 'workspaces', 'infras'] as const
export type DynamicKind = (typeof dynamicKinds)[number]

/** Which values an argument takes, judged by its binary and name; undefined when none apply. */
export function dynamicKindOf(spec: Pick<CommandSpec, 'program' | 'path'>, argument: string, isFlag: boolean): DynamicKind | undefined {
  if (isFlag) {
    if (argument === 'workspace') return 'workspaces'
    if (argument === 'infra') return 'infras'
    if (argument === 'servers') return 'servers'
    return undefined
  }
  const verb = spec.path[0]
  if (spec.program === 'prov-server' && ['name', 'names', 'server', 'servers'].includes(argument)) return 'servers'
  if (spec.program === 'prov-taskserv') {
    if (verb === 'cluster') return argument === 'name' ? 'clusters' : undefined
    if (['name', 'names'].includes(argument) && verb !== 'generate') return 'taskservs'
  }
  if (spec.program === 'prov' && verb === 'workspace' && argument === 'name' && spec.path[1] !== 'init') return 'workspaces'
  if (spec.program === 'prov' && verb === 'deps' && argument === 'args') return 'taskservs'
  return undefined
}

function quietly<T>(read: () => T[]): T[] {
  try {
    return read()
  } catch {
    return []
  }
}

/**
 * Extension names as their manifests accept them. Folder and state names are read from disk
 * before anything validated them, so every kind keeps only names valid for it: a folder named
 * `$(…)` or holding a control character must never reach a shell script or a terminal.
 */
const extensionNamePattern = /^[a-z0-9][a-z0-9_.-]{0,127}$/

/** The values of one kind, for the workspace the command would use (flag, env, cwd, active). */
export async function dynamicValues(kind: DynamicKind, options: { workspace?: string; cwd?: string } = {}): Promise<string[]> {
  const { infraNamePattern, serverNamePattern, isWorkspaceName } = await import('@prov/core')
  const valid: Record<DynamicKind, (name: string) => boolean> = {
    servers: (name) => serverNamePattern.test(name),
    infras: (name) => infraNamePattern.test(name),
    workspaces: isWorkspaceName,
    taskservs: (name) => extensionNamePattern.test(name),
    clusters: (name) => extensionNamePattern.test(name),
  }
  const names = await readValues(kind, options)
  return [...new Set(names.filter((name) => typeof name === 'string' && valid[kind](name)))]
}

async function readValues(kind: DynamicKind, options: { workspace?: string; cwd?: string }): Promise<string[]> {
  const { discoverExtensions, listServers, readRegistry, resolveWorkspace } = await import('@prov/core')
  const workspace = () => resolveWorkspace(options.workspace, options.cwd ?? process.cwd())
  switch (kind) {
    case 'workspaces':
      return quietly(() => readRegistry().workspaces.map((w) => w.name))
    case 'servers':
      return quietly(() => {
        const ws = workspace()
        return ws ? listServers(ws.path).map((s) => s.name) : []
      })
    case 'taskservs':
    case 'clusters':
      return quietly(() => {
        const ws = workspace()
        return discoverExtensions(kind === 'taskservs' ? 'taskserv' : 'cluster', { workspacePath: ws?.path }).map((e) => e.manifest.name)
      })
    case 'infras':
      return quietly(() => {
        const ws = workspace()
        const dir = ws ? join(ws.path, 'infra') : undefined
        if (!dir || !existsSync(dir)) return []
        return readdirSync(dir, { withFileTypes: true })
          .filter((e) => e.isDirectory())
          .map((e) => e.name)
      })
  }
}
