import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest'
import { type CliResult, runCli, setProviderConfig, tempWorkspace, writeInfra } from '../../../tests/helpers/cli'
import { startUpcloudReplay, type UpcloudReplay } from './helpers/upcloud-replay'

let replay: UpcloudReplay
let ws: Awaited<ReturnType<typeof tempWorkspace>>
let env: Record<string, string | undefined>

/** The template and zone the cassettes recorded; 1xCPU-1GB is priced in fi-hel2 by getpricezones. */
const TEMPLATE = '01000000-0000-4000-8000-000020060100'

const cli = (args: string[]): Promise<CliResult> => runCli('prov-server', args, { env, cwd: ws.path, timeoutMs: 120_000 })

beforeAll(async () => {
  replay = await startUpcloudReplay()
  ws = await tempWorkspace('plan-price', 'full')
  env = { ...ws.env, UPCLOUD_USERNAME: replay.username, UPCLOUD_PASSWORD: replay.password, UPCLOUD_TOKEN: undefined }
  setProviderConfig(ws.path, 'upcloud', { endpoint: replay.url, zone: 'fi-hel2', ready: 'running', ready_timeout: 30, retries: 2 })
  const server = (name: string, plan?: string) => ({ name, provider: 'upcloud', image: TEMPLATE, disk_gb: 10, ...(plan ? { plan } : {}) })
  writeInfra(ws.path, 'priced', [server('up-a', '1xCPU-1GB'), server('up-b', '1xCPU-1GB'), server('up-c', '1xCPU-1GB'), server('up-default')])
})

afterEach(() => {
  expect(replay.violations.splice(0)).toEqual([])
})

afterAll(async () => {
  await replay?.close()
  ws?.cleanup()
})

describe('plan prices (upcloud, recorded price list)', () => {
  it('each server to create carries the recorded price of its plan in its zone, asked once; one without a plan gets null', async () => {
    replay.play([], ['getzones', 'getplans', 'getserverswithfilters', 'getpricezones'])
    const planned = await cli(['plan', '--infra', 'priced'])
    expect(planned.code, planned.stderr).toBe(0)
    const prices = Object.fromEntries(planned.json().actions.map((a: { server: string; price?: unknown }) => [a.server, a.price]))
    // 1.116 euro cents an hour in fi-hel2, 672 hours a month (as `prov-server price` answers it).
    const recorded = { currency: 'EUR', hourly: 0.01116, monthly: 7.5 }
    expect(prices).toEqual({ 'up-a': recorded, 'up-b': recorded, 'up-c': recorded, 'up-default': null })
    expect(replay.requests.filter((r) => r.method === 'GET' && r.path.split('?')[0].endsWith('/price'))).toHaveLength(1)
    expect(replay.requests.filter((r) => r.method !== 'GET')).toEqual([])
  })
})
