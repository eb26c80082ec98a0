import fc from 'fast-check'
import { describe, expect, it } from 'vitest'
import { type DependencyNode, dependencyTree, resolveDependencies, validateCatalog } from '../src/deps'
import { boundedErrorText, ProvError } from '../src/errors'
import { discoverExtensions } from '../src/extensions'
import { referenceResolve } from './deps-reference'

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

/** What a resolution call gives: the result (with the key order of `versions`) or the error. */
function outcome(resolve: () => ReturnType<typeof resolveDependencies>): unknown {
  try {
    const r = resolve()
    return { ...r, versionKeys: Object.keys(r.versions) }
  } catch (error) {
    return { code: (error as ProvError).code, message: (error as Error).message, hint: (error as ProvError).hint }
  }
}

describe('resolveDependencies agrees with the reference resolver', () => {
  const names = ['a', 'b', 'c', 'd', 'e', 'f', 'g', 'h', 'web', 'db']
  // Mostly resolvable graphs (so levels and order are compared, not only the first error), with
  // every kind of failure now and then.
  const version = fc.oneof({ weight: 19, arbitrary: fc.constantFrom('1.0.0', '1.2.0', '1.5.0-rc.1') }, { weight: 1, arbitrary: fc.constant('2.0.0') })
  const range = fc.oneof(
    { weight: 19, arbitrary: fc.constantFrom('*', '^1.0.0', '>=1.0.0', '') },
    { weight: 1, arbitrary: fc.constantFrom('>=1.2.0', '<2.0.0') },
  )
  const rarely = <T>(arbitrary: fc.Arbitrary<T>) => fc.oneof({ weight: 9, arbitrary: fc.constant(undefined) }, { weight: 1, arbitrary })
  const seldom = <T>(arbitrary: fc.Arbitrary<T>) => fc.oneof({ weight: 39, arbitrary: fc.constant(undefined) }, { weight: 1, arbitrary })
  // Requirements point to earlier names (a graph without cycles), now and then to any name.
  const table = (i: number) =>
    fc
      .tuple(i ? fc.dictionary(fc.constantFrom(...names.slice(0, i)), range, { maxKeys: 3 }) : fc.constant({}), seldom(fc.constantFrom(...names)), range)
      .map(([earlier, any, anyRange]) => (any === undefined ? earlier : { ...earlier, [any]: anyRange }))
  const node = (name: string, i: number) =>
    fc
      .record({
        name: fc.constant(name),
        version,
        requires: table(i),
        optional: table(i),
        conflicts: seldom(fc.constantFrom(['virtual'], ['a'])),
        provides: rarely(fc.constant(['virtual'])),
        min_prov_version: seldom(fc.constant('9.0.0')),
      })
      .map(
        ({ conflicts, provides, min_prov_version, ...always }): DependencyNode => ({
          ...always,
          ...(conflicts ? { conflicts: [...conflicts] } : {}),
          ...(provides ? { provides: [...provides] } : {}),
          ...(min_prov_version ? { min_prov_version } : {}),
        }),
      )
  // The catalog in a random order, now and then without one of the names.
  const catalog = fc
    .tuple(...names.map((name, i) => fc.oneof({ weight: 9, arbitrary: node(name, i) }, { weight: 1, arbitrary: fc.constant(undefined) })))
    .map((nodes) => nodes.filter((n) => n !== undefined))
    .chain((nodes) => fc.shuffledSubarray(nodes, { minLength: nodes.length }))
  const requests = fc.array(
    fc.oneof({ weight: 9, arbitrary: fc.constantFrom(...names) }, { weight: 1, arbitrary: fc.constantFrom('a@^1.0.0', 'b@>=2.0.0', 'zzz') }),
    {
      minLength: 1,
      maxLength: 4,
    },
  )
  const options = fc.record(
    {
      installed: fc.tuple(node('db', 0), node('web', 3), node('i', 5)).chain((nodes) => fc.subarray(nodes, { maxLength: 2 })),
      provVersion: fc.constantFrom('0.1.0', '1.0.0'),
      expand: rarely(fc.constant(false)),
    },
    { requiredKeys: [] },
  )

  it('on random small graphs: same levels, order, added, versions, or the same error', () => {
    fc.assert(
      fc.property(catalog, requests, options, (nodes, wanted, opts) => {
        const expected = outcome(() => referenceResolve(wanted, nodes, opts))
        expect(outcome(() => resolveDependencies(wanted, nodes, opts))).toEqual(expected)
      }),
      { numRuns: 1000 },
    )
  })

  it('on the bundled catalog and the seed example', () => {
    const bundled = discoverExtensions('taskserv').map((e) => e.manifest)
    for (const wanted of [bundled.map((n) => n.name), ['kubernetes', 'cilium']]) {
      expect(outcome(() => resolveDependencies(wanted, bundled))).toEqual(outcome(() => referenceResolve(wanted, bundled)))
    }
    for (const wanted of [['kubernetes', 'helm'], ['cilium'], ['kubernetes', 'docker'], seed.map((n) => n.name)]) {
      expect(outcome(() => resolveDependencies(wanted, seed))).toEqual(outcome(() => referenceResolve(wanted, seed)))
    }
  })
})

describe('resolveDependencies on large graphs', () => {
  /** A chain of n extensions where each also requires the ones 13 and 377 before it (a fan-out). */
  function chain(n: number): DependencyNode[] {
    return Array.from({ length: n }, (_, i) => ({
      name: `svc-${i}`,
      version: `1.${i % 10}.0`,
      requires: Object.fromEntries([i - 1, i - 13, i - 377].filter((j) => j >= 0).map((j) => [`svc-${j}`, '^1.0.0'])),
      ...(i % 7 === 3 && i > 5 ? { optional: { [`svc-${i - 5}`]: '*', [`svc-${i - 1}`]: '*' } } : {}),
    }))
  }

  it('agrees with the reference resolver on a small one', () => {
    const nodes = chain(1500)
    const wanted = ['svc-1499', 'svc-1200', 'svc-750', 'svc-3']
    expect(outcome(() => resolveDependencies(wanted, nodes))).toEqual(outcome(() => referenceResolve(wanted, nodes)))
  })

  it('resolves 50,000 extensions in the order their depths give', () => {
    const nodes = chain(50_000)
    const r = resolveDependencies(['svc-49999', 'svc-40000', 'svc-25000'], nodes)
    // Each extension's level is one past its deepest requirement; every level is sorted by name.
    const depth = new Map<string, number>()
    for (const node of nodes) {
      const deps = [...Object.keys(node.requires ?? {}), ...Object.keys(node.optional ?? {})]
      depth.set(node.name, Math.max(-1, ...deps.map((d) => depth.get(d) as number)) + 1)
    }
    const expected: string[][] = []
    for (const node of nodes) (expected[depth.get(node.name) as number] ??= []).push(node.name)
    expect(r.levels).toEqual(expected.map((level) => level.sort()))
    expect(r.order).toEqual(r.levels.flat())
    expect(r.added).toEqual(
      nodes
        .map((n) => n.name)
        .filter((n) => !['svc-49999', 'svc-40000', 'svc-25000'].includes(n))
        .sort(),
    )
    expect(Object.keys(r.versions)).toHaveLength(50_000)
    expect(r.versions['svc-12345']).toBe('1.5.0')
  })

  it('reports the path of a cycle through 30,000 extensions', () => {
    const nodes = Array.from({ length: 30_000 }, (_, i) => ({ name: `n${i}`, version: '1.0.0', requires: { [`n${(i + 1) % 30_000}`]: '*' } }))
    const error = fails(() => resolveDependencies(['n0'], nodes), 3, /^dependency cycle: n0 -> n1 -> n2 -> /)
    // The whole path, as far as an error line shows it.
    expect(error.message).toBe(boundedErrorText(`dependency cycle: ${[...nodes.map((n) => n.name), 'n0'].join(' -> ')}`))
  })

  it('draws the tree of a 30,000-deep chain', () => {
    const nodes = Array.from({ length: 30_000 }, (_, i) => ({ name: `n${i}`, version: '1.0.0', requires: i ? { [`n${i - 1}`]: '*' } : {} }))
    let tree = dependencyTree('n29999', nodes)
    let depth = 1
    while (tree.requires.length) {
      tree = tree.requires[0]
      depth++
    }
    expect(depth).toBe(30_000)
    expect(tree.name).toBe('n0')
  })
})
