// P3: dependency resolution of a 5,000-node graph, in process (target <= 50 ms).
import { join } from 'node:path'
import { pathToFileURL } from 'node:url'
import { median, timeIt } from './lib.mjs'

export default async function p3({ root, log }) {
  const { resolveDependencies } = await import(pathToFileURL(join(root, 'packages/core/dist/index.mjs')).href)
  // Each node requires up to 3 earlier ones with semver ranges: ~15,000 edges.
  const nodes = Array.from({ length: 5000 }, (_, i) => ({
    name: `svc-${i}`,
    version: `1.${i % 10}.0`,
    requires: Object.fromEntries([i - 1, i - 13, i - 377].filter((j) => j >= 0).map((j) => [`svc-${j}`, '^1.0.0'])),
  }))
  const catalog = new Map(nodes.map((n) => [n.name, n]))
  const requests = ['svc-4999', 'svc-4000', 'svc-2500']
  for (let i = 0; i < 5; i++) resolveDependencies(requests, catalog)
  const samples = []
  let levels = 0
  for (let i = 0; i < 30; i++) samples.push(await timeIt(() => (levels = resolveDependencies(requests, catalog).levels.length)))
  const ms = median(samples)
  log(`5,000 nodes, ${levels} levels: median ${ms.toFixed(2)} ms`)
  return {
    id: 'P3',
    title: 'dependency resolution, 5,000 nodes',
    rows: [{ metric: 'resolve 5,000-node graph', prov: ms, peer: null, unit: ' ms', ratio: ms / 50, target: '<= 50 ms', pass: ms <= 50 }],
  }
}
