import { join } from 'node:path'
import { afterAll, beforeAll, describe } from 'vitest'
import { OrchStore } from '../src/store/store'
import { tempDir } from './helpers'
import { engineSuite } from './suite'
import { securitySuite } from './suite-security'

describe('engine on SQLite', () => {
  const tmp = tempDir()
  let store: OrchStore
  beforeAll(async () => {
    store = await OrchStore.open(`sqlite:${join(tmp.dir, 'orch.db')}`)
  })
  afterAll(async () => {
    await store?.close()
    tmp.cleanup()
  })
  engineSuite({ stores: () => [store], dir: () => tmp.dir })
  securitySuite({ stores: () => [store], dir: () => tmp.dir })
})
