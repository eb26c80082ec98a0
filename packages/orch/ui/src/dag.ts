import dagre from '@dagrejs/dagre'
import type { Step } from './api'

export const NODE_WIDTH = 190
export const NODE_HEIGHT = 48

export interface NodeBox {
  step: Step
  x: number
  y: number
}

export interface GroupBox {
  id: string
  label: string
  x: number
  y: number
  width: number
  height: number
}

export interface Layout {
  nodes: NodeBox[]
  edges: { from: string; to: string; points: { x: number; y: number }[] }[]
  groups: GroupBox[]
  width: number
  height: number
}

/**
 * Rolling and canary updates name their steps `<strategy>:<target>`; the targets of one batch
 * share the same dependencies (the previous batch). Each such batch is a group (a box around its
 * steps); with max_unavailable the lanes of a batch differ and show as single steps.
 */
function batchesOf(steps: Step[]): Map<string, { label: string; members: string[] }> {
  const byKey = new Map<string, { strategy: string; members: string[] }>()
  for (const s of steps) {
    const colon = s.id.indexOf(':')
    if (colon <= 0 || s.kind !== 'main' || s.id.endsWith(':observe')) continue
    const strategy = s.id.slice(0, colon)
    const key = `${strategy}\u0000${[...s.depends_on].sort().join(',')}`
    const entry = byKey.get(key) ?? { strategy, members: [] }
    entry.members.push(s.id)
    byKey.set(key, entry)
  }
  const groups = new Map<string, { label: string; members: string[] }>()
  const counter = new Map<string, number>()
  for (const [, g] of byKey) {
    if (g.members.length < 2) continue
    const n = (counter.get(g.strategy) ?? 0) + 1
    counter.set(g.strategy, n)
    groups.set(`group:${g.strategy}:${n}`, { label: `${g.strategy} batch ${n}`, members: g.members })
  }
  return groups
}

/** Lays the main steps out top to bottom with dagre; rollback steps are listed, not drawn. */
export function layoutSteps(all: Step[]): Layout {
  const steps = all.filter((s) => s.kind === 'main')
  const g = new dagre.graphlib.Graph({ compound: true, multigraph: false })
  g.setGraph({ rankdir: 'TB', nodesep: 24, ranksep: 48, marginx: 16, marginy: 16 })
  g.setDefaultEdgeLabel(() => ({}))
  const ids = new Set(steps.map((s) => s.id))
  for (const s of steps) g.setNode(s.id, { width: NODE_WIDTH, height: NODE_HEIGHT })
  const batches = batchesOf(steps)
  for (const [id, batch] of batches) {
    g.setNode(id, { label: batch.label, paddingTop: 22 })
    for (const member of batch.members) g.setParent(member, id)
  }
  for (const s of steps) for (const d of s.depends_on) if (ids.has(d)) g.setEdge(d, s.id)
  dagre.layout(g)
  const graph = g.graph()
  return {
    nodes: steps.map((step) => {
      const n = g.node(step.id)
      return { step, x: n.x - NODE_WIDTH / 2, y: n.y - NODE_HEIGHT / 2 }
    }),
    edges: g.edges().map((e) => ({ from: e.v, to: e.w, points: g.edge(e).points ?? [] })),
    groups: [...batches].map(([id, batch]) => {
      const n = g.node(id)
      return { id, label: batch.label, x: n.x - n.width / 2, y: n.y - n.height / 2, width: n.width, height: n.height }
    }),
    width: graph.width ?? 0,
    height: graph.height ?? 0,
  }
}
