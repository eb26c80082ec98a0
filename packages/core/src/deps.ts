import { findCycle, orderInLevels, SelectionGraph } from './deps-graph'
import { configError, notFoundError, usageError } from './errors'
import { semverLib } from './lazy'
import { didYouMean } from './suggest'

/** The parts of a manifest the resolver needs. */
export interface DependencyNode {
  name: string
  version: string
  /** name -> semver range (hard). */
  requires?: Record<string, string>
  /** name -> semver range (used when present). */
  optional?: Record<string, string>
  conflicts?: string[]
  provides?: string[]
  min_prov_version?: string
}

export interface ResolveOptions {
  /** Names already installed on the target (checked for conflicts, satisfy requirements). */
  installed?: DependencyNode[]
  /** The running prov version, checked against min_prov_version. */
  provVersion?: string
  /** Add missing hard requirements automatically (default true). */
  expand?: boolean
}

export const RESOLUTION_SCHEMA = 'prov.deps.resolution/v1'

export interface Resolution {
  schema: typeof RESOLUTION_SCHEMA
  requested: string[]
  /** Levels of the topological order: each level can run in parallel. */
  levels: string[][]
  order: string[]
  /** Requirements pulled in that were not requested. */
  added: string[]
  versions: Record<string, string>
}

/** Parses `name` or `name@range`. */
export function parseRequest(request: string): { name: string; range: string } {
  const at = request.indexOf('@', 1)
  if (at < 0) return { name: request, range: '*' }
  const range = request.slice(at + 1)
  if (!semverLib().validRange(range)) throw usageError(`invalid version range '${range}' in '${request}'`, { hint: 'for example redis@^7 or postgres@>=15' })
  return { name: request.slice(0, at), range }
}

// Ranges are parsed once and answers memoised per range: a large graph repeats the same few ranges
// and versions, so each edge costs two map lookups and no allocation (no key string per edge).
// Both caches are bounded: a long-lived process may see many distinct hostile ranges.
const MEMO_LIMIT = 10_000
const rangeAnswers = new Map<string, { range: import('semver').Range; answers: Map<string, boolean> }>()
function satisfies(version: string, range: string): boolean {
  if (range === '*' || range === '') return true
  let memo = rangeAnswers.get(range)
  if (!memo) {
    const semver = semverLib()
    if (rangeAnswers.size >= MEMO_LIMIT) rangeAnswers.clear()
    memo = { range: new semver.Range(range, { includePrerelease: true }), answers: new Map() }
    rangeAnswers.set(range, memo)
  }
  let answer = memo.answers.get(version)
  if (answer === undefined) {
    answer = memo.range.test(version)
    if (memo.answers.size >= MEMO_LIMIT) memo.answers.clear()
    memo.answers.set(version, answer)
  }
  return answer
}

/**
 * Resolves a set of requested extensions against a catalog: expands hard requirements,
 * orders by requirements and present optional ones, and reports cycles (with their path),
 * conflicts, unsatisfiable ranges and too-old prov versions.
 *
 * Linear in the selected extensions and their edges. Each selected extension gets a dense id (in
 * selection order); the edges found while expanding are kept as ids in typed arrays, so the checks
 * and the ordering after the expansion neither look names up again nor allocate per edge.
 * `versions` is built when first read: an object of one key per extension is the largest single
 * cost of a big resolution, and most callers only need the order.
 */
export function resolveDependencies(requests: string[], catalog: Map<string, DependencyNode> | DependencyNode[], options: ResolveOptions = {}): Resolution {
  const byName = catalog instanceof Map ? catalog : new Map(catalog.map((n) => [n.name, n]))
  const installed = new Map((options.installed ?? []).map((n) => [n.name, n]))
  const graph = new SelectionGraph()
  const requested: string[] = []
  const added: string[] = []

  const find = (depName: string, by: string): DependencyNode => {
    const node = byName.get(depName) ?? installed.get(depName)
    if (!node) {
      const detail = by ? `'${by}' requires '${depName}', which is not available` : `unknown extension '${depName}'`
      throw notFoundError(detail, { hint: didYouMean(depName, byName.keys()) ?? (by ? 'add it to a workspace or install it from a registry' : undefined) })
    }
    return node
  }
  const checkRange = (node: DependencyNode, depName: string, range: string, by: string): DependencyNode => {
    if (!satisfies(node.version, range)) {
      throw configError(`unsatisfiable version: ${by ? `'${by}' requires` : 'requested'} ${depName} ${range}, but ${node.version} is available`, {
        hint: 'install a matching version of the extension or relax the range',
      })
    }
    return node
  }
  const lookup = (depName: string, range: string, by: string): DependencyNode => checkRange(find(depName, by), depName, range, by)

  // Depth first (last pushed, first expanded): the selection order decides which error is reported
  // first and the key order of `versions`. A name requested twice is pushed twice, expanded once.
  const stack: number[] = []
  for (const request of requests) {
    const { name, range } = parseRequest(request)
    const root = lookup(name, range, '')
    requested.push(root.name)
    stack.push(graph.select(root.name, root, (byName.get(root.name) ?? installed.get(root.name)) === root))
  }
  if (options.expand !== false) {
    while (stack.length) {
      const id = stack.pop() as number
      if (graph.expanded(id)) continue
      graph.beginHardEdges(id)
      const current = graph.nodes[id]
      const requires = current.requires ?? {}
      for (const dep of Object.keys(requires)) {
        if (dep === current.name) throw configError(`dependency cycle: ${dep} -> ${dep}`, { hint: `'${dep}' requires itself` })
        let depId = graph.ids.get(dep)
        if (depId !== undefined && graph.sameAsCatalog(depId)) {
          // Already selected under this name: the catalog would answer with the same extension.
          checkRange(graph.nodes[depId], dep, requires[dep], current.name)
        } else {
          const node = lookup(dep, requires[dep], current.name)
          if (depId === undefined) {
            if (!installed.has(dep) || byName.has(dep)) added.push(dep)
            depId = graph.select(dep, node, true)
            stack.push(depId)
          }
        }
        graph.addEdge(id, depId)
      }
      graph.endHardEdges(id)
    }
  }
  // Versions of requirements among the selection must hold (hard ones first, then optional ones
  // whose target is selected or installed). Only optional edges are new here. A hard edge was
  // checked by the expansion against the extension the catalog has under that name, which is the
  // selected one unless a requested extension's own name leads elsewhere in the catalog.
  const { ids, names, nodes } = graph
  const lastSeenBy = new Int32Array(nodes.length).fill(-1)
  for (let id = 0; id < nodes.length; id++) {
    const node = nodes[id]
    if (graph.expanded(id)) {
      let checked = true
      for (let edge = graph.firstHardEdge(id), end = graph.endOfHardEdges(id); edge < end; edge++) {
        const dep = graph.edgeRequirement.at(edge)
        lastSeenBy[dep] = id
        checked &&= graph.sameAsCatalog(dep)
      }
      if (!checked) {
        const requires = node.requires ?? {}
        for (const dep of Object.keys(requires)) {
          const target = nodes[ids.get(dep) as number]
          if (!satisfies(target.version, requires[dep])) throw unsatisfiedAmongSelection(node, dep, requires[dep], target)
        }
      }
    } else if (node.requires) {
      // Not expanded (expand: false): the hard requirements must already be in the set.
      for (const dep of Object.keys(node.requires)) {
        const range = node.requires[dep]
        const depId = ids.get(dep)
        const target = depId === undefined ? installed.get(dep) : nodes[depId]
        if (target && !satisfies(target.version, range)) throw unsatisfiedAmongSelection(node, dep, range, target)
        if (!target && range !== undefined) {
          throw notFoundError(`'${node.name}' requires '${dep}', which is not in the set`, { hint: didYouMean(dep, byName.keys()) })
        }
        if (depId !== undefined && lastSeenBy[depId] !== id) {
          lastSeenBy[depId] = id
          graph.addEdge(id, depId)
        }
      }
    }
    if (node.optional) {
      for (const dep of Object.keys(node.optional)) {
        const range = node.optional[dep]
        const depId = ids.get(dep)
        const target = depId === undefined ? installed.get(dep) : nodes[depId]
        if (target && !satisfies(target.version, range)) throw unsatisfiedAmongSelection(node, dep, range, target)
        // Listed both as hard and optional: one edge.
        if (depId !== undefined && lastSeenBy[depId] !== id) {
          lastSeenBy[depId] = id
          graph.addEdge(id, depId)
        }
      }
    }
    if (node.min_prov_version && options.provVersion && !semverLib().satisfies(options.provVersion, `>=${node.min_prov_version}`)) {
      throw configError(`'${node.name}' needs prov >= ${node.min_prov_version}; this is ${options.provVersion}`, {
        hint: 'upgrade prov or use an older version of the extension',
      })
    }
  }
  checkConflicts(graph, installed)

  const { levels, order, indegree } = orderInLevels(graph)
  if (order.length < names.length) {
    throw configError(`dependency cycle: ${findCycle(graph, indegree).join(' -> ')}`, { hint: 'remove one of these requirements' })
  }
  const resolution = { schema: RESOLUTION_SCHEMA, requested, levels, order, added: added.sort() } as Resolution
  const materialise = (value: Record<string, string>) => {
    Object.defineProperty(resolution, 'versions', { value, writable: true, enumerable: true, configurable: true })
    return value
  }
  Object.defineProperty(resolution, 'versions', {
    enumerable: true,
    configurable: true,
    // Own data properties whatever the names (an assignment loop would treat `__proto__` specially).
    get: () => materialise(Object.fromEntries(names.map((name, id) => [name, nodes[id].version]))),
    set: materialise,
  })
  return resolution
}

function unsatisfiedAmongSelection(node: DependencyNode, dep: string, range: string, target: DependencyNode): Error {
  return configError(`unsatisfiable version: '${node.name}' needs ${dep} ${range}, but ${target.version} is selected`, { hint: 'align the versions' })
}

function checkConflicts(selection: SelectionGraph, installed: Map<string, DependencyNode>): void {
  const declares = (node: DependencyNode) => node.conflicts !== undefined && node.conflicts.length > 0
  // Most graphs declare no conflicts: skip building the provider table for all of them.
  if (!selection.nodes.some(declares) && ![...installed.values()].some(declares)) return
  const providers = new Map<string, string>()
  const provide = (node: DependencyNode) => {
    providers.set(node.name, node.name)
    for (const virtual of node.provides ?? []) providers.set(virtual, node.name)
  }
  for (const node of installed.values()) provide(node)
  for (const node of selection.nodes) provide(node)
  for (const node of selection.nodes) {
    for (const conflict of node.conflicts ?? []) {
      const holder = providers.get(conflict)
      if (holder && holder !== node.name) {
        const where = installed.has(holder) && !selection.ids.has(holder) ? ' (installed)' : ''
        throw configError(`conflict: '${node.name}' conflicts with '${holder}'${where}`, { hint: `install only one of ${node.name} and ${holder}` })
      }
    }
  }
  for (const node of installed.values()) {
    for (const conflict of node.conflicts ?? []) {
      const holder = providers.get(conflict)
      if (holder && selection.ids.has(holder) && holder !== node.name) {
        throw configError(`conflict: '${holder}' conflicts with installed '${node.name}'`, { hint: `remove ${node.name} first` })
      }
    }
  }
}

export interface DependencyTree {
  name: string
  version: string
  requires: DependencyTree[]
  optional: string[]
}

/** The requirement tree of one extension (a repeated node is shown once, then by name). */
export function dependencyTree(root: string, catalog: Map<string, DependencyNode> | DependencyNode[]): DependencyTree {
  const byName = catalog instanceof Map ? catalog : new Map(catalog.map((n) => [n.name, n]))
  resolveDependencies([root], byName) // fails on cycles and missing requirements
  const make = (name: string): { tree: DependencyTree; pending: string[]; entry: string } => {
    const node = byName.get(name) as DependencyNode
    const tree: DependencyTree = { name, version: node.version, requires: [], optional: Object.keys(node.optional ?? {}).sort() }
    // Last in name order first: popped, so children are built in name order.
    return {
      tree,
      pending: Object.keys(node.requires ?? {})
        .sort()
        .reverse(),
      entry: name,
    }
  }
  // Depth first with an explicit stack and the path in a set: a requirement chain tens of
  // thousands deep neither exhausts the call stack nor rescans the path at every step.
  const top = { ...make(parseRequest(root).name), entry: root }
  const trail = new Set([root])
  const stack = [top]
  while (stack.length) {
    const frame = stack[stack.length - 1]
    const dep = frame.pending.pop()
    if (dep === undefined) {
      trail.delete(frame.entry)
      stack.pop()
    } else if (!trail.has(dep)) {
      const child = make(dep)
      frame.tree.requires.push(child.tree)
      trail.add(dep)
      stack.push(child)
    }
  }
  return top.tree
}

/**
 * A requirement tree drawn for a terminal, one extension per line:
 *
 *     kubernetes 1.30.0
 *     ├── containerd 1.7.0
 *     └── etcd 3.5.0 (optional: tls)
 *
 * `ascii` uses only ASCII (for terminals that cannot show box-drawing characters).
 */
export function drawDependencyTree(tree: DependencyTree, options: { ascii?: boolean } = {}): string {
  const [branch, last, pipe] = options.ascii ? ['|-- ', '`-- ', '|   '] : ['├── ', '└── ', '│   ']
  const label = (node: DependencyTree) => `${node.name} ${node.version}${node.optional.length ? ` (optional: ${node.optional.join(', ')})` : ''}`
  const lines = [label(tree)]
  const stack: { node: DependencyTree; prefix: string; isLast: boolean }[] = tree.requires
    .map((node, index) => ({ node, prefix: '', isLast: index === tree.requires.length - 1 }))
    .reverse()
  while (stack.length) {
    const { node, prefix, isLast } = stack.pop() as { node: DependencyTree; prefix: string; isLast: boolean }
    lines.push(`${prefix}${isLast ? last : branch}${label(node)}`)
    const childPrefix = `${prefix}${isLast ? '    ' : pipe}`
    for (let i = node.requires.length - 1; i >= 0; i--) stack.push({ node: node.requires[i], prefix: childPrefix, isLast: i === node.requires.length - 1 })
  }
  return `${lines.join('\n')}\n`
}

export interface ValidationProblem {
  extension: string
  problem: string
}

/** Checks a whole catalog: requirements exist and satisfy, no cycles, no conflicting requirements. */
export function validateCatalog(catalog: DependencyNode[], provVersion?: string): ValidationProblem[] {
  const byName = new Map(catalog.map((n) => [n.name, n]))
  const problems: ValidationProblem[] = []
  for (const node of catalog) {
    try {
      resolveDependencies([node.name], byName, { provVersion })
    } catch (error) {
      problems.push({ extension: node.name, problem: (error as Error).message })
    }
  }
  return problems
}
