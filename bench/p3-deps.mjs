// P3: dependency resolution in process: a 5,000-node graph (target <= 50 ms), and how the cost grows
// with the graph (500 / 5,000 / 50,000 nodes: linear or better, 50,000 <= 200 ms).
import { join } from 'node:path'
import { pathToFileURL } from 'node:url'
import { median, timeIt } from './lib.mjs'

const sizes = [500, 5000, 50000]

/** A graph of n nodes, each requiring up to 3 earlier ones with semver ranges (~3n edges). */
function graph(n) {
  const nodes = Array.from({ length: n }, (_, i) => ({
    name: `svc-${i}`,
    version: `1.${i % 10}.0`,
    requires: Object.fromEntries([i - 1, i - 13, i - 377].filter((j) => j >= 0).map((j) => [`svc-${j}`, '^1.0.0'])),
  }))
  const requests = [n - 1, Math.floor(n * 0.8), Math.floor(n / 2)].map((i) => `svc-${i}`)
  return { catalog: new Map(nodes.map((node) => [node.name, node])), requests }
}

/** Median ms of resolving each size (warmed up first), with the depth of the result. */
export async function resolveTimes(root, log) {
  const { resolveDependencies } = await import(pathToFileURL(join(root, 'packages/core/dist/index.mjs')).href)
  const times = new Map()
  for (const n of sizes) {
    const { catalog, requests } = graph(n)
    const runs = n > 10000 ? 7 : 30
    for (let i = 0; i < (n > 10000 ? 2 : 5); i++) resolveDependencies(requests, catalog)
    const samples = []
    let levels = 0
    for (let i = 0; i < runs; i++) samples.push(await timeIt(() => (levels = resolveDependencies(requests, catalog).levels.length)))
    times.set(n, median(samples))
    log(`${n.toLocaleString('en')} nodes, ${levels} levels: median ${median(samples).toFixed(2)} ms`)
  }
  return times
}

export default async function p3({ root, log }) {
  const times = await resolveTimes(root, log)
  // Growth exponent of the steeper decade (500 -> 5,000 or 5,000 -> 50,000): 1 is linear, below is better.
  const decade = (from, to) => Math.log(times.get(to) / times.get(from)) / Math.log(to / from)
  const exponent = Math.max(decade(500, 5000), decade(5000, 50000))
  return {
    id: 'P3',
    title: 'dependency resolution: 5,000 nodes; growth 500 -> 50,000',
    rows: [
      {
        metric: 'resolve 5,000-node graph',
        prov: times.get(5000),
        peer: null,
        unit: ' ms',
        ratio: times.get(5000) / 50,
        target: '<= 50 ms',
        pass: times.get(5000) <= 50,
      },
      {
        metric: 'resolve 50,000-node graph',
        prov: times.get(50000),
        peer: null,
        unit: ' ms',
        ratio: times.get(50000) / 200,
        target: '<= 200 ms',
        pass: times.get(50000) <= 200,
      },
      {
        metric: `growth exponent, steeper decade of 500 / 5,000 / 50,000 nodes (${times.get(500).toFixed(2)} / ${times.get(5000).toFixed(1)} / ${times.get(50000).toFixed(1)} ms)`,
        prov: exponent,
        peer: null,
        unit: '',
        ratio: null,
        target: '<= 1.1 (linear or better)',
        pass: exponent <= 1.1,
      },
    ],
  }
}

/** Cost curve: resolution time against graph size (no peer: the target is the shape). */
export async function curves({ root, log }) {
  const times = await resolveTimes(root, log)
  return [{ id: 'P3', title: 'P3 dependency resolution', x: 'nodes', y: 'ms', series: [{ name: 'prov', points: sizes.map((n) => [n, times.get(n)]) }] }]
}
