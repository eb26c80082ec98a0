import { afterAll, beforeAll, describe } from 'vitest'
import { OrchStore } from '../src/store/store'
import { type Postgres, startPostgres, tempDir } from './helpers'
import { engineSuite } from './suite'

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
})
