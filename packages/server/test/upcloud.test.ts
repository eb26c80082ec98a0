// The upcloud provider, driven through the real prov-server binary against traffic the real
// UpCloud API 1.3 produced: go-vcr cassettes of UpCloudLtd/upcloud-go-api, replayed by a loopback
// server that refuses any request no cassette recorded (helpers/upcloud-replay.ts). The servers
// below ask for what those recordings dictate: zone fi-hel2, the template
// 01000000-0000-4000-8000-000020060100, a 10 GB maxiops disk, no plan (the API's default).
//
// Not covered by any recording, so not replayed here (see tests/fixtures/upcloud/README.md):
// image titles (GET /storage/template), adoption of a server found only by its labels (every
// recorded server carries the SDK's labels, not prov's; adoption by the stored UUID is in
// upcloud-adopt.test.ts), delete --keep-storage and delete of a stopped server,
// and the deletion of a storage a cascade left behind.
import { readFileSync, writeFileSync } from 'node:fs'
import { join } from 'node:path'
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest'
import { parse, stringify } from 'yaml'
import { type CliResult, runCli, setProviderConfig, tempWorkspace, writeInfra } from '../../../tests/helpers/cli'
import { startUpcloudReplay, type UpcloudReplay } from './helpers/upcloud-replay'
import { treeHash } from './helpers/workspace'

let replay: UpcloudReplay
let ws: Awaited<ReturnType<typeof tempWorkspace>>
let env: Record<string, string | undefined>

const TEMPLATE = '01000000-0000-4000-8000-000020060100'
/** Recorded in the cassettes' create answers: the root password UpCloud generated (never to be kept by prov). */
const RECORDED_PASSWORD = 'p6r56szy9mga398x'
const READS = ['getzones', 'getplans', 'getserverswithfilters']

const cli = (args: string[], extra: Record<string, string | undefined> = {}): Promise<CliResult> =>
  runCli('prov-server', args, { env: { ...env, ...extra }, cwd: ws.path, timeoutMs: 120_000 })

const errorLines = (result: CliResult) =>
  result.stderr
    .trim()
    .split('\n')
    .filter((l) => l.includes('error:'))

const mutating = () => replay.requests.filter((r) => r.method !== 'GET')
const state = () => readFileSync(join(ws.path, '.prov', 'servers.json'), 'utf8')

beforeAll(async () => {
  replay = await startUpcloudReplay()
  ws = await tempWorkspace('upcloud', 'full')
  env = { ...ws.env, UPCLOUD_USERNAME: replay.username, UPCLOUD_PASSWORD: replay.password, UPCLOUD_TOKEN: undefined }
  setProviderConfig(ws.path, 'upcloud', { endpoint: replay.url, zone: 'fi-hel2', ready: 'running', ready_timeout: 30, retries: 2 })
  const server = (name: string) => ({
    name,
    provider: 'upcloud',
    image: TEMPLATE,
    disk_gb: 10,
    labels: { role: 'web' },
    provision: { files: [{ path: '/etc/motd', contents: `hello from ${name}\n` }] },
  })
  const infra = (name: string, list: object[]) => writeInfra(ws.path, name, list)
  infra('cloud', ['up-01', 'up-02', 'up-03'].map(server))
  infra('bad-zone', [{ ...server('bad-zone'), zone: 'mars-1' }])
  infra('bad-plan', [{ ...server('bad-plan'), plan: '1xCPU-999GB' }])
  infra('by-title', [{ ...server('by-title'), image: 'ubuntu-server-24.04-lts-noble-numbat' }])
  infra('hdd', [{ ...server('hdd-01') }])
})

afterEach(() => {
  replay.clearFaults()
  expect(replay.violations.splice(0)).toEqual([])
})

afterAll(async () => {
  await replay?.close()
  ws?.cleanup()
})

describe('upcloud catalog (getzones, getplans, getpricezones)', () => {
  it('lists the recorded plans, zones and prices without a mutating call', async () => {
    replay.play([], ['getzones', 'getplans', 'getpricezones'])
    const plans = await cli(['plans', '--provider', 'upcloud'])
    expect(plans.code, plans.stderr).toBe(0)
    expect(plans.json().map((p: { name: string }) => p.name)).toEqual([
      '1xCPU-1GB',
      '1xCPU-2GB',
      '2xCPU-4GB',
      '4xCPU-8GB',
      '6xCPU-16GB',
      '8xCPU-32GB',
      '12xCPU-48GB',
      '16xCPU-64GB',
      '20xCPU-128GB',
      '20xCPU-96GB',
    ])
    expect(plans.json()[0]).toMatchObject({ name: '1xCPU-1GB', cores: 1, memory_mb: 1024, disk_gb: 25 })
    const zones = await cli(['zones', '--provider', 'upcloud'])
    expect(zones.code, zones.stderr).toBe(0)
    expect(zones.json().find((z: { name: string }) => z.name === 'fi-hel2')).toMatchObject({ name: 'fi-hel2', description: 'Helsinki #2' })
    const price = await cli(['price', '1xCPU-1GB', '--provider', 'upcloud'])
    expect(price.code, price.stderr).toBe(0)
    // The recorded price of 1xCPU-1GB in fi-hel2: 1.116 euro cents an hour, 672 hours a month.
    expect(price.json()[0]).toMatchObject({ plan: '1xCPU-1GB', zone: 'fi-hel2', currency: 'EUR', hourly: 0.01116, monthly: 7.5 })
    expect(mutating()).toEqual([])
  })
})

describe('upcloud lifecycle (createstartstopserver, createdeleteserverandstorage)', () => {
  it('creates a server from the template with user data, the workspace key in login_user and prov labels', async () => {
    replay.play(['createstartstopserver'], READS)
    const result = await cli(['create', 'up-01', '--infra', 'cloud'])
    expect(result.code, result.stderr).toBe(0)
    const [record] = result.json()
    // What the recorded API answered about the server it made.
    expect(record).toMatchObject({ name: 'up-01', provider: 'upcloud', status: 'running', zone: 'fi-hel2', cores: 1, memory_mb: 1024, disk_gb: 10 })
    expect(record.ip_address).toBe('94.237.106.241')
    const post = mutating().find((r) => r.method === 'POST' && r.path === '/1.3/server') as { body: { server: Record<string, any> } }
    const sent = post.body.server
    const wsid = readFileSync(join(ws.path, '.prov', 'workspace-id'), 'utf8').trim()
    expect(sent.labels.label).toEqual([
      { key: 'role', value: 'web' },
      { key: 'prov-workspace', value: wsid },
      { key: 'prov-server', value: 'up-01' },
    ])
    expect(sent.storage_devices.storage_device).toEqual([{ action: 'clone', storage: TEMPLATE, title: 'up-01-disk', size: 10, tier: 'maxiops' }])
    expect(sent.user_data.startsWith('#cloud-config\n')).toBe(true)
    expect(sent.user_data).toContain('/etc/motd')
    expect(sent.metadata).toBe('yes')
    expect(sent.login_user).toEqual({
      username: 'root',
      create_password: 'no',
      ssh_keys: { ssh_key: [readFileSync(join(ws.path, '.prov', 'ssh', 'id_ed25519.pub'), 'utf8').trim()] },
    })
    // The two request fields no cassette recorded (user data and login user), stated here.
    expect([...replay.unrecordedSent].sort()).toEqual(['server.login_user', 'server.user_data'])
    // Neither the API password nor the root password the API answered with is kept or shown.
    for (const secret of [replay.password, RECORDED_PASSWORD]) {
      expect(state()).not.toContain(secret)
      expect(result.stderr + result.stdout).not.toContain(secret)
    }
  })

  it('list and info read the server back', async () => {
    replay.play(['createstartstopserver'], READS)
    const list = await cli(['list'])
    expect(list.code, list.stderr).toBe(0)
    expect(list.json().find((s: { name: string }) => s.name === 'up-01')).toMatchObject({ status: 'running', ip_address: '94.237.106.241' })
    const info = await cli(['info', 'up-01'])
    expect(info.code, info.stderr).toBe(0)
    expect([info.json()].flat()[0].provider_info).toMatchObject({
      uuid: '002018a7-c0a2-498f-a823-40e7cf735e61',
      state: 'started',
      zone: 'fi-hel2',
      ipv4: '94.237.106.241',
      storages: [{ uuid: '0184d2b2-585f-4257-b7a9-3ec09c7ec308', title: 'disk1', size_gb: 10 }],
    })
    expect(mutating().filter((r) => r.path.includes('002018a7'))).toEqual([])
  })

  it('stop waits until the API says stopped; start powers it on', async () => {
    replay.play(['createstartstopserver'], READS)
    const stop = await cli(['stop', 'up-01', '--yes'])
    expect(stop.code, stop.stderr).toBe(0)
    expect(stop.json()[0]).toMatchObject({ status: 'stopped', action: 'stop' })
    const stopCall = mutating().find((r) => r.path === '/1.3/server/002018a7-c0a2-498f-a823-40e7cf735e61/stop')
    expect(stopCall?.body).toEqual({ stop_server: { stop_type: 'soft', timeout: '300' } })
    const start = await cli(['start', 'up-01', '--yes'])
    expect(start.code, start.stderr).toBe(0)
    expect(start.json()[0]).toMatchObject({ status: 'running', action: 'start' })
    expect(replay.served.filter((s) => s.cassette === 'createstartstopserver' && s.method !== 'GET').map((s) => s.index)).toEqual([0, 2, 4])
  })

  it('--check makes no mutating API call and changes no state', async () => {
    replay.play([], READS)
    const before = treeHash(join(ws.path, '.prov'))
    const count = mutating().length
    for (const args of [
      ['create', 'up-02', '--infra', 'cloud', '--check'],
      ['delete', 'up-01', '--check'],
      ['stop', 'up-01', '--check'],
    ]) {
      const result = await cli(args)
      expect(result.code, `${args.join(' ')}: ${result.stderr}`).toBe(0)
    }
    expect(mutating().length).toBe(count)
    expect(treeHash(join(ws.path, '.prov'))).toBe(before)
  })

  it('delete stops the server and deletes it with its storages', async () => {
    replay.play(['createdeleteserverandstorage'], READS)
    const created = await cli(['create', 'up-02', '--infra', 'cloud'])
    expect(created.code, created.stderr).toBe(0)
    expect(created.json()[0]).toMatchObject({ status: 'running', ip_address: '94.237.9.189' })
    const deleted = await cli(['delete', 'up-02', '--yes'])
    expect(deleted.code, deleted.stderr).toBe(0)
    const writes = replay.served.filter((s) => s.cassette === 'createdeleteserverandstorage' && s.method !== 'GET')
    expect(writes.map((s) => `${s.method} ${s.path}`)).toEqual([
      'POST /1.3/server',
      'POST /1.3/server/005e48a7-dc8a-409e-be63-9fcc536f292e/stop',
      'DELETE /1.3/server/005e48a7-dc8a-409e-be63-9fcc536f292e/?storages=1',
    ])
    // The private storages are listed afterwards: the server's disk is not among them, so nothing is left to delete.
    expect(replay.served.at(-1)).toMatchObject({ method: 'GET', path: '/1.3/storage/private' })
    expect(state()).not.toContain('"up-02"')
  })
})

describe('upcloud bad input and API errors', () => {
  it('missing credentials: exit 3, the hint names the variables', async () => {
    replay.play([], READS)
    for (const args of [
      ['plans', '--provider', 'upcloud'],
      ['create', 'up-03', '--infra', 'cloud'],
    ]) {
      const result = await cli(args, { UPCLOUD_PASSWORD: undefined })
      expect(result.code, result.stderr).toBe(3)
      const lines = errorLines(result)
      expect(lines).toHaveLength(1)
      expect(lines[0]).toMatch(
        /no upcloud API credential: UPCLOUD_PASSWORD is not set \(nor UPCLOUD_TOKEN\).*hint: export UPCLOUD_USERNAME=\.\.\. and UPCLOUD_PASSWORD=\.\.\. \(an API user\), or UPCLOUD_TOKEN=\.\.\., or set providers\.upcloud\.token: \{secret: NAME\}$/,
      )
    }
  })

  it('a refused credential (401): exit 4, one line, the password never shown, nothing recorded', async () => {
    replay.play([], READS)
    for (const args of [
      ['plans', '--provider', 'upcloud'],
      ['create', 'up-03', '--infra', 'cloud'],
    ]) {
      const result = await cli(args, { UPCLOUD_PASSWORD: 'wrong-password-4711' })
      expect(result.code, result.stderr).toBe(4)
      const lines = errorLines(result)
      expect(lines).toHaveLength(1)
      expect(lines[0]).toMatch(
        /upcloud API answered 401 AUTHENTICATION_FAILED: Authentication failed.*hint: check the credentials \(UPCLOUD_USERNAME\/UPCLOUD_PASSWORD\)/,
      )
      expect(result.stderr).not.toContain('wrong-password-4711')
    }
    expect(state()).not.toContain('up-03')
  })

  it('unknown zone or plan: exit 2 at plan and create time, listing the recorded choices, nothing created', async () => {
    replay.play([], READS)
    const count = mutating().length
    for (const [name, pattern] of [
      [
        'bad-zone',
        /server 'bad-zone': upcloud has no zone 'mars-1'.*valid: de-fra1, fi-hel1, fi-hel2, nl-ams1, sg-sin1, uk-lon1, uk-tst1, us-chi1, us-nyc1, us-sjo1/,
      ],
      ['bad-plan', /server 'bad-plan': upcloud has no plan '1xCPU-999GB'.*valid: 1xCPU-1GB, 1xCPU-2GB, 2xCPU-4GB/],
    ] as const) {
      for (const args of [['create', name], ['plan']]) {
        const result = await cli([...args, '--infra', name])
        expect(result.code, result.stderr).toBe(2)
        const lines = errorLines(result)
        expect(lines).toHaveLength(1)
        expect(lines[0]).toMatch(pattern)
      }
    }
    expect(mutating().length).toBe(count)
  })

  it('a 429 with Retry-After is retried; a 429 storm ends with exit 1', async () => {
    replay.play([], READS)
    const limited = { error: { error_code: 'RATE_LIMIT_EXCEEDED', error_message: 'Too many requests.' } }
    replay.fail({ method: 'GET', path: /^\/zone$/, status: 429, body: limited, headers: { 'retry-after': '0' }, times: 1 })
    const once = await cli(['zones', '--provider', 'upcloud'])
    expect(once.code, once.stderr).toBe(0)
    replay.fail({ method: 'GET', path: /^\/zone$/, status: 429, body: limited, headers: { 'retry-after': '0' }, times: 10 })
    const storm = await cli(['zones', '--provider', 'upcloud'])
    expect(storm.code).toBe(1)
    const lines = errorLines(storm)
    expect(lines).toHaveLength(1)
    expect(lines[0]).toMatch(/429 RATE_LIMIT_EXCEEDED: Too many requests\. \(still rate limited after 3 attempts\).*hint: wait and retry/)
  })

  it("the API's own validation error (the recorded 400 SERVER_INVALID) maps to exit 2 with its message, and fails a create", async () => {
    replay.play([], READS)
    const recorded = parse(readFileSync(join(import.meta.dirname, '..', '..', '..', 'tests', 'fixtures', 'upcloud', 'errorhandling.yaml'), 'utf8'))
    const { code, body } = recorded.interactions[0].response
    const refusal = { status: code, body: JSON.parse(body), times: 1 }
    replay.fail({ method: 'GET', path: /^\/plan$/, ...refusal })
    const plans = await cli(['plans', '--provider', 'upcloud'])
    expect(plans.code, plans.stderr).toBe(2)
    expect(errorLines(plans)).toEqual([
      expect.stringMatching(
        /upcloud API answered 400 SERVER_INVALID: The server UUID is invalid\. \(at upcloud API GET \/plan\); hint: fix the value the API names/,
      ),
    ])
    // A create the API refuses as invalid is exit 2 too (the value is to fix), with the API's own line.
    replay.fail({ method: 'POST', path: /^\/server$/, ...refusal })
    const result = await cli(['create', 'up-03', '--infra', 'cloud'])
    expect(result.code, result.stderr).toBe(2)
    expect(errorLines(result)).toEqual([expect.stringMatching(/create up-03: upcloud API answered 400 SERVER_INVALID: The server UUID is invalid\./)])
    expect(state()).not.toContain('up-03')
  })

  it('the replay refuses what no cassette recorded: an image title lookup, a body of another shape', async () => {
    replay.play([], READS)
    const title = await cli(['create', 'by-title', '--infra', 'by-title'])
    expect(title.code).not.toBe(0)
    expect(replay.violations.splice(0), title.stderr).toEqual([expect.stringMatching(/^GET \/1\.3\/storage\/template: no recorded interaction matches/)])
    // A disk tier the recordings do not have: the body's shape check names the field.
    const configFile = join(ws.path, 'prov.config.yaml')
    const original = readFileSync(configFile, 'utf8')
    try {
      const config = parse(original)
      config.providers.upcloud.storage_tier = 'hdd'
      writeFileSync(configFile, stringify(config))
      replay.play(['getserverswithfilters'], ['getzones', 'getplans'])
      const hdd = await cli(['create', 'hdd-01', '--infra', 'hdd'])
      expect(hdd.code).not.toBe(0)
    } finally {
      writeFileSync(configFile, original)
    }
    expect(replay.violations.splice(0)).toEqual([
      expect.stringMatching(/storage_device\[0\]: matches no recorded element.*tier: recorded "maxiops", sent "hdd"/),
    ])
  })

  it('an answer of another shape is one error line naming the call (exit 1); delete keeps the record and deletes nothing', async () => {
    replay.play(['createstartstopserver'], READS)
    const uuid = '002018a7-c0a2-498f-a823-40e7cf735e61'
    const count = mutating().length
    // The recorded GET /server/{uuid} answer replaced by an empty object, then GET /zone by a string where the list was.
    replay.fail({ method: 'GET', path: new RegExp(`^/server/${uuid}$`), status: 200, body: {}, times: 5 })
    const deleted = await cli(['delete', 'up-01', '--yes'])
    expect(deleted.code, deleted.stderr).toBe(1)
    expect(errorLines(deleted)).toHaveLength(1)
    expect(errorLines(deleted)[0]).toMatch(new RegExp(`upcloud API answered GET /server/${uuid} with an unusable body: server is not an object`))
    expect(mutating().length).toBe(count)
    expect(state()).toContain('"up-01"')
    replay.clearFaults()
    replay.fail({ method: 'GET', path: /^\/zone$/, status: 200, body: { zones: 'fi-hel2' }, times: 5 })
    const zones = await cli(['zones', '--provider', 'upcloud'])
    expect(zones.code).toBe(1)
    expect(errorLines(zones)[0]).toMatch(/GET \/zone with an unusable body: zones\.zone is not a list of objects/)
  })

  it('a literal credential in the config is refused (exit 3) without echoing it', async () => {
    const configFile = join(ws.path, 'prov.config.yaml')
    const original = readFileSync(configFile, 'utf8')
    try {
      const config = parse(original)
      config.providers.upcloud.token = 'literal-token-value'
      writeFileSync(configFile, stringify(config))
      const literal = await cli(['plans', '--provider', 'upcloud'])
      expect(literal.code).toBe(3)
      expect(errorLines(literal)[0]).toMatch(/providers\.upcloud\.token must be a \{secret: NAME\} reference/)
      expect(literal.stderr).not.toContain('literal-token-value')
    } finally {
      writeFileSync(configFile, original)
    }
  })
})
