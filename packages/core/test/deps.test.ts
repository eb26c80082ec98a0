import { describe, expect, it } from 'vitest'
import { type DependencyNode, dependencyTree, resolveDependencies, validateCatalog } from '../src/deps'
import { ProvError } from '../src/errors'
import { discoverExtensions } from '../src/extensions'

const seed: DependencyNode[] = [
  { name: 'kubernetes', version: '1.28.0', requires: { containerd: '>=1.7.0', etcd: '>=3.5.0' }, optional: { helm: '*' }, conflicts: ['docker', 'podman'] },
  { name: 'cilium', version: '1.14.0', requires: { kubernetes: '>=1.27.0' } },
  { name: 'containerd', version: '1.7.0', provides: ['container-runtime'] },
  { name: 'etcd', version: '3.5.0' },
  { name: 'postgres', version: '15.0.0' },
  { name: 'redis', version: '7.0.0' },
  { name: 'helm', version: '3.12.0' },
  { name: 'docker', version: '24.0.0', provides: ['container-runtime'] },
]

function fails(fn: () => unknown, code: number, message: RegExp): ProvError {
  try {
    fn()
  } catch (error) {
    expect(error).toBeInstanceOf(ProvError)
    expect((error as ProvError).code).toBe(code)
    expect((error as ProvError).message).toMatch(message)
    return error as ProvError
  }
  throw new Error('expected an error')
}

describe('resolveDependencies', () => {
  it('orders the seed example in levels (E10)', () => {
    const r = resolveDependencies(['kubernetes', 'cilium', 'containerd', 'etcd'], seed)
    expect(r.levels).toEqual([['containerd', 'etcd'], ['kubernetes'], ['cilium']])
  })

  it('pulls in hard requirements, not optional ones', () => {
    const r = resolveDependencies(['kubernetes'], seed)
    expect(r.levels).toEqual([['containerd', 'etcd'], ['kubernetes']])
    expect(r.added).toEqual(['containerd', 'etcd'])
  })

  it('orders an optional dependency when it is present', () => {
    expect(resolveDependencies(['kubernetes', 'helm'], seed).levels).toEqual([['containerd', 'etcd', 'helm'], ['kubernetes']])
  })

  it('reports a missing hard requirement (exit 5)', () => {
    fails(
      () =>
        resolveDependencies(
          ['kubernetes'],
          seed.filter((n) => n.name !== 'etcd'),
        ),
      5,
      /'kubernetes' requires 'etcd', which is not available/,
    )
  })

  it('reports an unknown name with the nearest one', () => {
    const error = fails(() => resolveDependencies(['kubernets'], seed), 5, /unknown extension 'kubernets'/)
    expect(error.hint).toMatch(/kubernetes/)
  })

  it('reports conflicts, also through provided virtual names and installed ones', () => {
    fails(() => resolveDependencies(['kubernetes', 'docker'], seed), 3, /conflict: 'kubernetes' conflicts with 'docker'/)
    fails(() => resolveDependencies(['kubernetes'], seed, { installed: [seed[7]] }), 3, /conflicts with 'docker' \(installed\)/)
  })

  it('reports unsatisfiable ranges', () => {
    fails(
      () =>
        resolveDependencies(
          ['cilium'],
          seed.map((n) => (n.name === 'kubernetes' ? { ...n, version: '1.20.0' } : n)),
        ),
      3,
      /unsatisfiable version: 'cilium' requires kubernetes >=1.27.0, but 1.20.0/,
    )
    fails(() => resolveDependencies(['redis@^8'], seed), 3, /requested redis \^8, but 7.0.0/)
  })

  it('reports the path of a cycle', () => {
    const cyclic: DependencyNode[] = [
      { name: 'a', version: '1.0.0', requires: { b: '*' } },
      { name: 'b', version: '1.0.0', requires: { c: '*' } },
      { name: 'c', version: '1.0.0', requires: { a: '*' } },
    ]
    fails(() => resolveDependencies(['a'], cyclic), 3, /^dependency cycle: a -> b -> c -> a$/)
  })

  it('checks min_prov_version', () => {
    fails(() => resolveDependencies(['x'], [{ name: 'x', version: '1.0.0', min_prov_version: '9.0.0' }], { provVersion: '0.1.0' }), 3, /needs prov >= 9.0.0/)
  })

  it('builds a tree and validates a catalog', () => {
    expect(dependencyTree('cilium', seed)).toMatchObject({
      name: 'cilium',
      requires: [{ name: 'kubernetes', requires: [{ name: 'containerd' }, { name: 'etcd' }] }],
    })
    expect(validateCatalog(seed)).toEqual([])
    expect(validateCatalog([...seed, { name: 'broken', version: '1.0.0', requires: { nothere: '*' } }])).toEqual([
      { extension: 'broken', problem: expect.stringMatching(/nothere/) },
    ])
  })

  it('resolves the bundled catalog', () => {
    const catalog = discoverExtensions('taskserv').map((e) => e.manifest)
    expect(resolveDependencies(['kubernetes', 'cilium'], catalog).levels).toEqual([['containerd', 'etcd'], ['kubernetes'], ['cilium']])
  })

  it('handles a 5,000-node graph', () => {
    const nodes: DependencyNode[] = Array.from({ length: 5000 }, (_, i) => ({
      name: `n${i}`,
      version: '1.0.0',
      requires: Object.fromEntries([i - 1, i - 7, i - 100].filter((j) => j >= 0).map((j) => [`n${j}`, '^1.0.0'])),
    }))
    const r = resolveDependencies(['n4999'], nodes)
    expect(r.order).toHaveLength(5000)
    expect(r.levels).toHaveLength(5000)
  })
})
