// The workspace record of what is installed where (.prov/taskservs.json): versions and the settings
// used, which later actions (status, health, restart...) reuse; secret references stay references.
import { mkdirSync, mkdtempSync, readFileSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { workspacePaths } from '@prov/core'
import { afterAll, describe, expect, it } from 'vitest'
import { TASKSERV_RESULT_SCHEMA, type TaskResult } from '../src/engine'
import { readState, recordResults, statePath } from '../src/lib/state'

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
})
