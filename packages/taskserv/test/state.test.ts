// The workspace record of what is installed where (.prov/taskservs.json): versions and the settings
// used, which later actions (status, health, restart...) reuse; secret references stay references.
import { mkdirSync, mkdtempSync, readFileSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { workspacePaths } from '@prov/core'
import { afterAll, describe, expect, it } from 'vitest'
import { TASKSERV_RESULT_SCHEMA, type TaskResult } from '../src/engine'
import { loadCatalog } from '../src/lib/catalog'
import { buildPlan } from '../src/lib/plan'
import { readState, recordResults, statePath } from '../src/lib/state'
import { serverRecord } from './records'

const root = mkdtempSync(join(tmpdir(), 'prov-ts-state-'))
afterAll(() => rmSync(root, { recursive: true, force: true }))
const paths = workspacePaths(root)
mkdirSync(paths.state, { recursive: true })

const result = (fields: Partial<TaskResult>): TaskResult => ({
  schema: TASKSERV_RESULT_SCHEMA,
  server: 'web-01',
  taskserv: 'redis',
  action: 'install',
  status: 'changed',
  version: '7.0.0',
  duration_ms: 1,
  output: '',
  ...fields,
})

describe('taskserv state', () => {
  it('records the settings an install used; a failed update keeps them; remove forgets the entry', async () => {
    const settings = { port: 6380, admin_token: { secret: 'redis/token' } }
    await recordResults(paths, [result({})], undefined, (server, name) => (server === 'web-01' && name === 'redis' ? settings : undefined))
    expect(readState(paths).servers['web-01'].redis).toMatchObject({ version: '7.0.0', settings })
    await recordResults(paths, [result({ action: 'update', status: 'failed', rolled_back: true, version: '7.0.0' })], undefined, () => ({ port: 1 }))
    expect(readState(paths).servers['web-01'].redis.settings).toEqual(settings)
    expect(readFileSync(statePath(paths), 'utf8')).toContain('"secret": "redis/token"')
    await recordResults(paths, [result({ action: 'remove', status: 'changed' })])
    expect(readState(paths).servers).toEqual({})
  })

  it('later actions use the recorded settings under what is given now, placement references resolved and checked', () => {
    const server = (name: string, ip: string) => serverRecord(name, { ip_address: ip })
    const [db, web] = [server('db-01', '10.0.0.5'), server('web-01', '10.0.0.6')]
    const state = {
      schema: 'prov.taskserv.state/v1' as const,
      servers: { 'web-01': { webapp: { version: '1.0.0', updated_at: 'x', settings: { db_host: '10.0.0.9', port: 8081, db_password: { secret: 'db/pw' } } } } },
    }
    const placements = [
      { name: 'postgres', servers: [db] },
      { name: 'webapp', servers: [web], settings: { db_host: '{{host.postgres}}' } },
    ]
    const built = buildPlan({ catalog: loadCatalog(), action: 'status', requests: [], placements, state, expand: false, check: true }, (s) => s.name)
    const webapp = built.levels.flat().find((i) => i.unit.name === 'webapp')
    expect(webapp?.unit.settings).toMatchObject({ db_host: '10.0.0.5', port: 8081, db_password: { secret: 'db/pw' } })
    state.servers['web-01'].webapp.settings.port = '80; id' as unknown as number
    expect(() => buildPlan({ catalog: loadCatalog(), action: 'status', requests: [], placements, state, expand: false, check: true }, (s) => s.name)).toThrow(
      /setting 'port' of webapp must be a port/,
    )
  })
})
