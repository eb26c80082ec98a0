// A create killed with SIGKILL after UpCloud made the server is adopted by the next
// `plan | apply`, never made twice, and `delete` then removes it with its storages; all against
// the recorded session of createdeleteserverandstorage.yaml (helpers/upcloud-replay.ts refuses
// any request it does not hold, so a second POST /server would fail the test).
//
// The kill falls after the state write that keeps the server's UUID (prov's first save of a
// create): the replay holds the first poll of the new server until prov-server is dead. A kill
// before that write leaves only the labels to find the server by, and no recording holds a
// server carrying prov's labels, so that path is not replayed here.
import { spawn } from 'node:child_process'
import { readFileSync } from 'node:fs'
import { join } from 'node:path'
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest'
import { binDir, type CliResult, runCli, setProviderConfig, tempWorkspace, writeInfra } from '../../../tests/helpers/cli'
import { startUpcloudReplay, type UpcloudReplay } from './helpers/upcloud-replay'

/** The server and disk createdeleteserverandstorage.yaml recorded. */
const UUID = '005e48a7-dc8a-409e-be63-9fcc536f292e'
const TEMPLATE = '01000000-0000-4000-8000-000020060100'

let replay: UpcloudReplay
let ws: Awaited<ReturnType<typeof tempWorkspace>>
let env: Record<string, string | undefined>

const cli = (args: string[], input?: string): Promise<CliResult> => runCli('prov-server', args, { env, cwd: ws.path, input, timeoutMs: 120_000 })
const writes = () => replay.served.filter((s) => s.method !== 'GET').map((s) => `${s.method} ${s.path}`)
const state = () => readFileSync(join(ws.path, '.prov', 'servers.json'), 'utf8')

beforeAll(async () => {
  replay = await startUpcloudReplay()
  ws = await tempWorkspace('upcloud-adopt', 'full')
  env = { ...ws.env, UPCLOUD_USERNAME: replay.username, UPCLOUD_PASSWORD: replay.password, UPCLOUD_TOKEN: undefined }
  setProviderConfig(ws.path, 'upcloud', { endpoint: replay.url, zone: 'fi-hel2', ready: 'running', ready_timeout: 30, retries: 2 })
  writeInfra(ws.path, 'cloud', [{ name: 'up-adopt', provider: 'upcloud', image: TEMPLATE, disk_gb: 10, labels: { role: 'web' } }])
  replay.play(['createdeleteserverandstorage'], ['getzones', 'getplans', 'getserverswithfilters'])
})

afterEach(() => {
  expect(replay.violations.splice(0)).toEqual([])
})

afterAll(async () => {
  await replay?.close()
  ws?.cleanup()
})

describe('upcloud: interrupted create adopted, then deleted with its storages (createdeleteserverandstorage)', () => {
  it('a create killed with SIGKILL while waiting for the new server is adopted by the next plan | apply', async () => {
    const poll = replay.hold('GET', new RegExp(`^/server/${UUID}$`))
    const child = spawn(process.execPath, [join(binDir, 'prov-server'), 'create', 'up-adopt', '--infra', 'cloud'], {
      cwd: ws.path,
      env: Object.fromEntries(Object.entries({ ...process.env, ...env }).filter(([, v]) => v !== undefined)) as NodeJS.ProcessEnv,
      stdio: 'ignore',
    })
    const exited = new Promise((resolve) => child.once('exit', resolve))
    try {
      await Promise.race([poll.reached, exited.then(() => Promise.reject(new Error('prov-server exited before polling the new server')))])
    } finally {
      child.kill('SIGKILL')
      await exited
      poll.release()
    }
    expect(writes()).toEqual(['POST /1.3/server'])
    expect(JSON.parse(state()).servers['up-adopt']).toMatchObject({ status: 'creating', provider: 'upcloud' })

    const planned = await cli(['plan', '--infra', 'cloud'])
    expect(planned.code, planned.stderr).toBe(0)
    expect(planned.json().actions).toEqual([
      expect.objectContaining({ action: 'create', server: 'up-adopt', reason: "left 'creating' by an interrupted or failed apply; created again" }),
    ])
    const applied = await cli(['apply', '--yes', '--out', 'json'], planned.stdout)
    expect(applied.code, applied.stderr).toBe(0)
    expect(applied.stderr).toMatch(new RegExp(`up-adopt already exists \\(uuid ${UUID}, labelled by this workspace\\): adopting it`))
    expect(applied.json()).toEqual([expect.objectContaining({ name: 'up-adopt', status: 'running', ip_address: '94.237.9.189' })])
    // Adopted, not made again: the one create is still the only write.
    expect(writes()).toEqual(['POST /1.3/server'])
    expect(JSON.parse(state()).servers['up-adopt']).toMatchObject({ status: 'running' })
  })

  it('delete stops the server, deletes it with its storages, and finds none of its disks left', async () => {
    const deleted = await cli(['delete', 'up-adopt', '--yes'])
    expect(deleted.code, deleted.stderr).toBe(0)
    expect(writes()).toEqual(['POST /1.3/server', `POST /1.3/server/${UUID}/stop`, `DELETE /1.3/server/${UUID}/?storages=1`])
    // The recorded storage list after the delete holds no disk of the server: nothing is left to delete or bill.
    expect(replay.served.at(-1)).toMatchObject({ method: 'GET', path: '/1.3/storage/private' })
    expect(JSON.parse(state()).servers).not.toHaveProperty('up-adopt')
  })
})
