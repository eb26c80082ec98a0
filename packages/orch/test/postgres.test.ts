import { join } from 'node:path'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { Engine } from '../src/engine'
import { OrchStore } from '../src/store/store'
import { compileWorkflow } from '../src/workflow'
import { type Postgres, startPostgres, tempDir } from './helpers'
import { engineSuite, lines } from './suite'
import { securitySuite } from './suite-security'

describe('engine on PostgreSQL with two workers', () => {
  const tmp = tempDir()
  let pg: Postgres
  let stores: OrchStore[] = []
  beforeAll(async () => {
    pg = await startPostgres()
    stores = [await OrchStore.open(pg.url), await OrchStore.open(pg.url)]
  }, 120_000)
  afterAll(async () => {
    for (const s of stores) await s.close().catch(() => {})
    pg?.cleanup()
    tmp.cleanup()
  })
  engineSuite({ stores: () => stores, dir: () => tmp.dir })
  securitySuite({ stores: () => stores, dir: () => tmp.dir })

  it('store lost mid-run: the engine stops starting steps, keeps results, and resumes when the store returns', async () => {
    const [store] = stores
    const trace = join(tmp.dir, `lost-${Date.now()}`)
    const steps = Array.from({ length: 6 }, (_, i) => ({ id: `s${i}`, run: `echo s${i} >> ${trace}; sleep 0.3`, depends_on: i ? [`s${i - 1}`] : [] }))
    const id = await store.submit(compileWorkflow({ name: 'lost', steps }))
    const warnings: string[] = []
    const engine = new Engine(store, { until: { workflow: id }, pollMs: 20, leaseMs: 30_000, onWarn: (m) => warnings.push(m) })
    const running = engine.run()
    for (let i = 0; i < 200 && lines(trace).length < 2; i++) await new Promise((r) => setTimeout(r, 25))
    pg.stop()
    await new Promise((r) => setTimeout(r, 2500))
    const during = lines(trace).length
    pg.start()
    await running
    expect((await store.get(id)).status).toBe('succeeded')
    expect(during).toBeLessThanOrEqual(3)
    expect(lines(trace)).toEqual(['s0', 's1', 's2', 's3', 's4', 's5'])
    expect(warnings.some((w) => /store unreachable/.test(w))).toBe(true)
    expect(warnings.some((w) => /reachable again/.test(w))).toBe(true)
  }, 60_000)
})
