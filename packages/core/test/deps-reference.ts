// The resolver as first written: names in maps, a fresh array per edge, recursive cycle search.
// Kept as the reference the linear resolver must agree with, result and error alike.
import semver from 'semver'
import type { DependencyNode, Resolution, ResolveOptions } from '../src/deps'
import { parseRequest, RESOLUTION_SCHEMA } from '../src/deps'
import { configError, notFoundError } from '../src/errors'
import { didYouMean } from '../src/suggest'

function satisfies(version: string, range: string): boolean {
  if (range === '*' || range === '') return true
  return new semver.Range(range, { includePrerelease: true }).test(version)
}

const semverLib = () => semver

export function referenceResolve(requests: string[], catalog: Map<string, DependencyNode> | DependencyNode[], options: ResolveOptions = {}): Resolution {
  const byName = catalog instanceof Map ? catalog : new Map(catalog.map((n) => [n.name, n]))
  const installed = new Map((options.installed ?? []).map((n) => [n.name, n]))
  const selected = new Map<string, DependencyNode>()
  const requested: string[] = []
  const added: string[] = []

  const lookup = (depName: string, range: string, by: string): DependencyNode => {
    const node = byName.get(depName) ?? installed.get(depName)
    if (!node) {
      const detail = by ? `'${by}' requires '${depName}', which is not available` : `unknown extension '${depName}'`
      throw notFoundError(detail, { hint: didYouMean(depName, byName.keys()) ?? (by ? 'add it to a workspace or install it from a registry' : undefined) })
    }
    if (!satisfies(node.version, range)) {
      throw configError(`unsatisfiable version: ${by ? `'${by}' requires` : 'requested'} ${depName} ${range}, but ${node.version} is available`, {
        hint: 'install a matching version of the extension or relax the range',
      })
    }
    return node
  }

  const stack: string[] = []
  for (const request of requests) {
    const { name, range } = parseRequest(request)
    const root = lookup(name, range, '')
    requested.push(root.name)
    stack.push(root.name)
    selected.set(root.name, root)
  }
  if (options.expand !== false) {
    while (stack.length) {
      const current = selected.get(stack.pop() as string) as DependencyNode
      for (const [dep, range] of Object.entries(current.requires ?? {})) {
        if (dep === current.name) throw configError(`dependency cycle: ${dep} -> ${dep}`, { hint: `'${dep}' requires itself` })
        const node = lookup(dep, range, current.name)
        if (!selected.has(dep)) {
          selected.set(dep, node)
          if (!installed.has(dep) || byName.has(dep)) added.push(dep)
          stack.push(dep)
        }
      }
    }
  }
  // Versions of requirements among the selection must hold.
  for (const node of selected.values()) {
    for (const [dep, range] of [...Object.entries(node.requires ?? {}), ...Object.entries(node.optional ?? {})]) {
      const target = selected.get(dep) ?? installed.get(dep)
      if (target && !satisfies(target.version, range)) {
        throw configError(`unsatisfiable version: '${node.name}' needs ${dep} ${range}, but ${target.version} is selected`, { hint: 'align the versions' })
      }
      if (!target && options.expand === false && node.requires?.[dep] !== undefined) {
        throw notFoundError(`'${node.name}' requires '${dep}', which is not in the set`, { hint: didYouMean(dep, byName.keys()) })
      }
    }
    if (node.min_prov_version && options.provVersion && !semverLib().satisfies(options.provVersion, `>=${node.min_prov_version}`)) {
      throw configError(`'${node.name}' needs prov >= ${node.min_prov_version}; this is ${options.provVersion}`, {
        hint: 'upgrade prov or use an older version of the extension',
      })
    }
  }
  checkConflicts(selected, installed)

  // Kahn's algorithm in levels over hard edges and optional edges whose target is selected.
  const dependents = new Map<string, string[]>()
  const indegree = new Map<string, number>()
  for (const name of selected.keys()) indegree.set(name, 0)
  for (const node of selected.values()) {
    const deps = [...Object.keys(node.requires ?? {}), ...Object.keys(node.optional ?? {}).filter((d) => selected.has(d))]
    for (const dep of new Set(deps)) {
      if (!selected.has(dep)) continue // satisfied by an installed one
      indegree.set(node.name, (indegree.get(node.name) ?? 0) + 1)
      const list = dependents.get(dep)
      if (list) list.push(node.name)
      else dependents.set(dep, [node.name])
    }
  }
  const levels: string[][] = []
  let ready = [...indegree].filter(([, d]) => d === 0).map(([n]) => n)
  let placed = 0
  while (ready.length) {
    ready.sort()
    levels.push(ready)
    placed += ready.length
    const next: string[] = []
    for (const name of ready) {
      for (const dependent of dependents.get(name) ?? []) {
        const d = (indegree.get(dependent) ?? 0) - 1
        indegree.set(dependent, d)
        if (d === 0) next.push(dependent)
      }
    }
    ready = next
  }
  if (placed < selected.size) {
    const remaining = new Set([...indegree].filter(([, d]) => d > 0).map(([n]) => n))
    const cycle = findCycle(remaining, selected)
    throw configError(`dependency cycle: ${cycle.join(' -> ')}`, { hint: 'remove one of these requirements' })
  }
  return {
    schema: RESOLUTION_SCHEMA,
    requested,
    levels,
    order: levels.flat(),
    added: added.sort(),
    versions: Object.fromEntries([...selected].map(([n, node]) => [n, node.version])),
  }
}

function checkConflicts(selected: Map<string, DependencyNode>, installed: Map<string, DependencyNode>): void {
  const providers = new Map<string, string>()
  for (const node of [...installed.values(), ...selected.values()]) {
    providers.set(node.name, node.name)
    for (const virtual of node.provides ?? []) providers.set(virtual, node.name)
  }
  for (const node of selected.values()) {
    for (const conflict of node.conflicts ?? []) {
      const holder = providers.get(conflict)
      if (holder && holder !== node.name) {
        const where = installed.has(holder) && !selected.has(holder) ? ' (installed)' : ''
        throw configError(`conflict: '${node.name}' conflicts with '${holder}'${where}`, { hint: `install only one of ${node.name} and ${holder}` })
      }
    }
  }
  for (const node of installed.values()) {
    for (const conflict of node.conflicts ?? []) {
      const holder = providers.get(conflict)
      if (holder && selected.has(holder) && holder !== node.name) {
        throw configError(`conflict: '${holder}' conflicts with installed '${node.name}'`, { hint: `remove ${node.name} first` })
      }
    }
  }
}

function findCycle(remaining: Set<string>, selected: Map<string, DependencyNode>): string[] {
  const color = new Map<string, number>()
  const path: string[] = []
  const visit = (name: string): string[] | undefined => {
    color.set(name, 1)
    path.push(name)
    const node = selected.get(name) as DependencyNode
    const deps = [...Object.keys(node.requires ?? {}), ...Object.keys(node.optional ?? {})].filter((d) => remaining.has(d)).sort()
    for (const dep of deps) {
      if (color.get(dep) === 1) return [...path.slice(path.indexOf(dep)), dep]
      if (!color.has(dep)) {
        const found = visit(dep)
        if (found) return found
      }
    }
    path.pop()
    color.set(name, 2)
    return undefined
  }
  for (const name of [...remaining].sort()) {
    if (!color.has(name)) {
      const found = visit(name)
      if (found) return found
    }
  }
  return [...remaining]
}
