// The selection graph of a resolution and the two walks over it (levels, cycle path): ids and
// typed arrays, no per-edge allocation, no recursion.
import type { DependencyNode } from './deps'

/** A growable list of 32-bit integers (no boxed numbers, one buffer). */
class IntList {
  private data = new Int32Array(64)
  length = 0
  push(value: number): void {
    if (this.length === this.data.length) {
      const grown = new Int32Array(this.length * 2)
      grown.set(this.data)
      this.data = grown
    }
    this.data[this.length++] = value
  }
  at(index: number): number {
    return this.data[index]
  }
  set(index: number, value: number): void {
    this.data[index] = value
  }
}

/**
 * The selected extensions, each with a dense id in selection order, and the requirement edges
 * between them (dependent -> requirement). The hard edges of an expanded extension are contiguous.
 */
export class SelectionGraph {
  readonly ids = new Map<string, number>()
  readonly names: string[] = []
  readonly nodes: DependencyNode[] = []
  readonly edgeDependent = new IntList()
  readonly edgeRequirement = new IntList()
  private readonly hardStart = new IntList()
  private readonly hardEnd = new IntList()
  /** 1 when the catalog's extension under the selected name is the selected one. */
  private readonly catalogMatch = new IntList()

  /** The id of `name`, selecting it first if needed. */
  select(name: string, node: DependencyNode, sameAsCatalog: boolean): number {
    let id = this.ids.get(name)
    if (id === undefined) {
      id = this.names.length
      this.ids.set(name, id)
      this.names.push(name)
      this.nodes.push(node)
      this.hardStart.push(-1)
      this.hardEnd.push(-1)
      this.catalogMatch.push(sameAsCatalog ? 1 : 0)
    }
    return id
  }
  sameAsCatalog(id: number): boolean {
    return this.catalogMatch.at(id) === 1
  }
  expanded(id: number): boolean {
    return this.hardStart.at(id) >= 0
  }
  beginHardEdges(id: number): void {
    this.hardStart.set(id, this.edgeDependent.length)
  }
  endHardEdges(id: number): void {
    this.hardEnd.set(id, this.edgeDependent.length)
  }
  /** The first hard edge of an expanded extension. */
  firstHardEdge(id: number): number {
    return this.hardStart.at(id)
  }
  /** One past the last hard edge of an expanded extension. */
  endOfHardEdges(id: number): number {
    return this.hardEnd.at(id)
  }
  addEdge(dependent: number, requirement: number): void {
    this.edgeDependent.push(dependent)
    this.edgeRequirement.push(requirement)
  }
}

/**
 * Kahn's algorithm in levels over the edges (hard ones, and optional ones whose target is
 * selected; a requirement satisfied by an installed extension is no edge). Each level is sorted
 * by name and can run in parallel. Edges are grouped by requirement in one typed array (offsets
 * per extension) and the queue is one typed array, so the walk allocates only the levels it
 * returns. `indegree` keeps, for extensions a cycle left out, a count above zero.
 */
export function orderInLevels(graph: SelectionGraph): { levels: string[][]; order: string[]; indegree: Int32Array } {
  const { names, edgeDependent, edgeRequirement } = graph
  const count = names.length
  const edges = edgeDependent.length
  const indegree = new Int32Array(count)
  const start = new Int32Array(count + 1)
  for (let edge = 0; edge < edges; edge++) {
    indegree[edgeDependent.at(edge)]++
    start[edgeRequirement.at(edge) + 1]++
  }
  for (let id = 0; id < count; id++) start[id + 1] += start[id]
  const dependents = new Int32Array(edges)
  const cursor = start.slice(0, count)
  for (let edge = 0; edge < edges; edge++) dependents[cursor[edgeRequirement.at(edge)]++] = edgeDependent.at(edge)

  const levels: string[][] = []
  const order: string[] = []
  const queue = new Int32Array(count)
  let tail = 0
  for (let id = 0; id < count; id++) if (indegree[id] === 0) queue[tail++] = id
  let head = 0
  while (head < tail) {
    const levelEnd = tail
    const level: string[] = new Array(levelEnd - head)
    for (let i = head; i < levelEnd; i++) level[i - head] = names[queue[i]]
    level.sort()
    levels.push(level)
    for (const name of level) order.push(name)
    for (; head < levelEnd; head++) {
      const id = queue[head]
      for (let edge = start[id]; edge < start[id + 1]; edge++) {
        const dependent = dependents[edge]
        if (--indegree[dependent] === 0) queue[tail++] = dependent
      }
    }
  }
  return { levels, order, indegree }
}

/**
 * The path of one cycle among the nodes a cycle kept out of the order: depth first from the first
 * such node by name, requirements in name order. Iterative, so a cycle through tens of thousands
 * of nodes does not exhaust the call stack.
 */
export function findCycle(selection: SelectionGraph, indegree: Int32Array): string[] {
  const { ids, names, nodes } = selection
  const remaining = (name: string): boolean => {
    const id = ids.get(name)
    return id !== undefined && indegree[id] > 0
  }
  const color = new Uint8Array(names.length) // 0 not visited, 1 on the current path, 2 done
  const path: number[] = []
  // Per path entry: its requirements still to visit, last in name order first (popped).
  const pending: string[][] = []
  const enter = (id: number): void => {
    color[id] = 1
    path.push(id)
    const node = nodes[id]
    const deps = [...Object.keys(node.requires ?? {}), ...Object.keys(node.optional ?? {})].filter(remaining)
    pending.push(deps.sort().reverse())
  }
  const stuck = names.filter((_, id) => indegree[id] > 0)
  for (const root of [...stuck].sort()) {
    const rootId = ids.get(root) as number
    if (color[rootId] !== 0) continue
    enter(rootId)
    while (path.length) {
      const dep = pending[pending.length - 1].pop()
      if (dep === undefined) {
        color[path.pop() as number] = 2
        pending.pop()
        continue
      }
      const depId = ids.get(dep) as number
      if (color[depId] === 1) return [...path.slice(path.indexOf(depId)).map((id) => names[id]), dep]
      if (color[depId] === 0) enter(depId)
    }
  }
  return stuck
}
