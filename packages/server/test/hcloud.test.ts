// The hcloud provider against a loopback API held to Hetzner's OpenAPI document (every request
// checked against it, every answer built from its examples), cross-checked with the real
// `hcloud` CLI (Debian hcloud-cli) talking to the same API.
import { execFileSync } from 'node:child_process'
import { readFileSync, writeFileSync } from 'node:fs'
import { createServer } from 'node:http'
import type { AddressInfo } from 'node:net'
import { join } from 'node:path'
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest'
import { parse, stringify } from 'yaml'
import { type CliResult, runCli, runProcess, setProviderConfig, tempWorkspace, writeInfra } from '../../../tests/helpers/cli'
import { type HcloudApi, startHcloudApi } from './helpers/hcloud-api'
import { treeHash } from './helpers/workspace'

let api: HcloudApi
let ws: Awaited<ReturnType<typeof tempWorkspace>>
let env: Record<string, string>
const hcloudCli = (() => {
  try {
    return execFileSync('sh', ['-c', 'command -v hcloud'], { encoding: 'utf8' }).trim()
  } catch {
    return ''
  }
})()

const cli = (args: string[], extra: Record<string, string | undefined> = {}): Promise<CliResult> =>
  runCli('prov-server', args, { env: { ...env, ...extra }, cwd: ws.path, timeoutMs: 120_000 })

/** The contract's one error line on stderr (the last line; debug output is off). */
const errorLine = (result: CliResult) =>
  result.stderr
    .trim()
    .split('\n')
    .filter((l) => l.includes('error:'))

const mutating = () => api.requests.filter((r) => r.method !== 'GET')

beforeAll(async () => {
  api = await startHcloudApi()
  ws = await tempWorkspace('hcloud', 'full')
  env = { ...ws.env, HCLOUD_TOKEN: api.token }
  setProviderConfig(ws.path, 'hcloud', { endpoint: api.url, ready: 'running', ready_timeout: 30, retries: 2, zone: 'fsn1' })
  const servers = ['hc-01', 'hc-02', 'hc-03', 'hc-04', 'hc-05'].map((name) => ({
    name,
    provider: 'hcloud',
    plan: 'cx22',
    image: 'debian-12',
    labels: { role: 'web' },
    provision: { files: [{ path: '/etc/motd', contents: `hello from ${name}\n` }] },
  }))
  const infra = (name: string, list: object[]) => writeInfra(ws.path, name, list)
  infra('cloud', servers)
  // Each refused server in an infra of its own: a plan checks every server of its infra.
  infra('bad-plan', [{ ...servers[0], name: 'bad-plan', plan: 'cx999' }])
  infra('bad-image', [{ ...servers[0], name: 'bad-image', image: 'windows-95' }])
  infra('bad-zone', [{ ...servers[0], name: 'bad-zone', zone: 'mars1' }])
  infra('bad-label', [{ ...servers[0], name: 'bad-label', labels: { role: 'web', 'prov-server': 'other' } }])
})

afterEach(() => {
  api.clearFaults()
  expect(api.violations.splice(0)).toEqual([])
})

afterAll(async () => {
  await api?.close()
  ws?.cleanup()
})

describe('hcloud catalog', () => {
  it('lists server types, locations and prices from the API', async () => {
    const plans = await cli(['plans', '--provider', 'hcloud'])
    expect(plans.code, plans.stderr).toBe(0)
    expect(plans.json().map((p: { name: string }) => p.name)).toEqual(['cx22', 'cpx31'])
    expect(plans.json()[0]).toMatchObject({ cores: 2, memory_mb: 4096, disk_gb: 40 })
    const zones = await cli(['zones', '--provider', 'hcloud'])
    expect(zones.code, zones.stderr).toBe(0)
    expect(zones.json().map((z: { name: string }) => z.name)).toEqual(['fsn1', 'nbg1'])
    const price = await cli(['price', 'cx22', '--provider', 'hcloud'])
    expect(price.code, price.stderr).toBe(0)
    // The numbers are Hetzner's documented example prices.
    expect(price.json()[0]).toMatchObject({ plan: 'cx22', zone: 'fsn1', currency: 'EUR', hourly: expect.any(Number), monthly: expect.any(Number) })
    // Every plan: those without a price in the zone are left out instead of failing the command.
    const everyPlan = await cli(['price', '--provider', 'hcloud', '--zone', 'nbg1'])
    expect(everyPlan.code, everyPlan.stderr).toBe(0)
    for (const entry of everyPlan.json()) expect(entry.zone).toBe('nbg1')
    expect(mutating()).toEqual([])
  })

  it('plan prices each server to create with one catalog call per type and zone, GETs only; the human view has a price column', async () => {
    const listed = (await cli(['price', 'cx22', '--provider', 'hcloud'])).json()[0]
    const start = api.requests.length
    const planned = await cli(['plan', '--infra', 'cloud'])
    expect(planned.code, planned.stderr).toBe(0)
    const creates = planned.json().actions.filter((a: { action: string }) => a.action === 'create')
    expect(creates).toHaveLength(5)
    for (const action of creates) expect(action.price).toEqual({ currency: listed.currency, hourly: listed.hourly, monthly: listed.monthly })
    const asked = api.requests.slice(start).map((r) => `${r.method} ${r.path.split('?')[0].replace(/^\/v1/, '')}`)
    expect(asked.filter((r) => r === 'GET /server_types')).toHaveLength(1)
    expect(asked.filter((r) => r === 'GET /pricing')).toHaveLength(1)
    // The plan with its prices is what apply reads back (its schema knows the field).
    const checked = await runCli('prov-server', ['apply', '--check'], { env, cwd: ws.path, input: planned.stdout, timeoutMs: 120_000 })
    expect(checked.code, checked.stderr).toBe(0)
    const human = await cli(['plan', '--infra', 'cloud', '--out', 'table'])
    expect(human.code, human.stderr).toBe(0)
    const lines = human.stdout.split('\n').filter((l) => l.startsWith('+ create'))
    expect(lines).toHaveLength(5)
    const column = `${listed.hourly.toFixed(4)} ${listed.currency}/h  ${listed.monthly.toFixed(2)} ${listed.currency}/mo`
    for (const line of lines) expect(line.endsWith(column)).toBe(true)
    // Aligned: every price starts at the same offset.
    expect(new Set(lines.map((l) => l.indexOf(column))).size).toBe(1)
    expect(human.stdout).toContain(`New servers cost ${(5 * listed.monthly).toFixed(2)} ${listed.currency}/mo`)
    expect(mutating()).toEqual([])
  })

  it('a price the API answers in an unusable form is left out (null, one warning), never a reason to refuse the plan', async () => {
    api.fail({ method: 'GET', path: /^\/pricing/, status: 200, body: { pricing: { currency: 'EUR<script>' } }, times: 10 })
    const planned = await cli(['plan', '--infra', 'cloud'])
    expect(planned.code, planned.stderr).toBe(0)
    expect(planned.json().actions.map((a: { price?: unknown }) => a.price)).toEqual([null, null, null, null, null])
    expect(planned.stderr.match(/no prices in the plan/g)).toHaveLength(1)
  })
})

describe('hcloud lifecycle', () => {
  it('creates a server with cloud-init user data, prov labels and the workspace SSH key', async () => {
    const result = await cli(['create', 'hc-01', '--infra', 'cloud'])
    expect(result.code, result.stderr).toBe(0)
    const [record] = result.json()
    expect(record).toMatchObject({ name: 'hc-01', provider: 'hcloud', status: 'running', plan: 'cx22', zone: 'fsn1', cores: 2, memory_mb: 4096 })
    expect(record.ip_address).toMatch(/^198\.51\.100\.\d+$/)
    const [server] = [...api.servers.values()]
    const wsid = readFileSync(join(ws.path, '.prov', 'workspace-id'), 'utf8').trim()
    expect(server.labels).toEqual({ role: 'web', 'prov-workspace': wsid, 'prov-server': 'hc-01' })
    const userData = api.userData.get(server.id as number) ?? ''
    expect(userData.startsWith('#cloud-config\n')).toBe(true)
    expect(userData).toContain('/etc/motd')
    // The key pair is the workspace's, registered once with prov's label.
    const keys = [...api.sshKeys.values()]
    expect(keys).toHaveLength(1)
    expect(keys[0].public_key).toBe(readFileSync(join(ws.path, '.prov', 'ssh', 'id_ed25519.pub'), 'utf8').trim())
    // No credential anywhere prov writes.
    expect(readFileSync(join(ws.path, '.prov', 'servers.json'), 'utf8')).not.toContain(api.token)
    expect(result.stderr).not.toContain(api.token)
  })

  it('list, stop, start and info follow the API', async () => {
    const list = await cli(['list'])
    expect(list.code, list.stderr).toBe(0)
    expect(list.json().find((s: { name: string }) => s.name === 'hc-01')).toMatchObject({ status: 'running' })
    const stop = await cli(['stop', 'hc-01', '--yes'])
    expect(stop.code, stop.stderr).toBe(0)
    expect(stop.json()[0]).toMatchObject({ status: 'stopped', action: 'stop' })
    expect(api.requests.some((r) => r.method === 'POST' && /\/actions\/shutdown$/.test(r.path))).toBe(true)
    const start = await cli(['start', 'hc-01', '--yes'])
    expect(start.code, start.stderr).toBe(0)
    expect(start.json()[0]).toMatchObject({ status: 'running', action: 'start' })
    const info = await cli(['info', 'hc-01'])
    expect(info.code, info.stderr).toBe(0)
    expect([info.json()].flat()[0].provider_info).toMatchObject({ server_type: 'cx22', location: 'fsn1', status: 'running' })
  })

  it('the real hcloud CLI lists the server prov created, and prov adopts one the CLI created with its labels', async () => {
    expect(hcloudCli, 'the hcloud CLI (Debian hcloud-cli) is missing: run scripts/setup.sh').not.toBe('')
    const cliEnv = { HCLOUD_ENDPOINT: api.url, HCLOUD_TOKEN: api.token, HCLOUD_CONFIG: join(ws.path, 'hcloud-cli.toml') }
    const listed = await runProcess(hcloudCli, ['server', 'list', '-o', 'json'], { env: cliEnv })
    expect(listed.code, listed.stderr).toBe(0)
    expect(listed.json().map((s: { name: string }) => s.name)).toContain('hc-01')
    const wsid = readFileSync(join(ws.path, '.prov', 'workspace-id'), 'utf8').trim()
    const made = await runProcess(
      hcloudCli,
      ['server', 'create', '--name', 'hc-02', '--type', 'cx22', '--image', 'debian-12', '--label', `prov-workspace=${wsid}`, '--label', 'prov-server=hc-02'],
      { env: cliEnv },
    )
    expect(made.code, made.stderr).toBe(0)
    const before = api.servers.size
    const posts = api.requests.filter((r) => r.method === 'POST' && r.path.startsWith('/v1/servers')).length
    // As after a create killed between the API call and the state write: found by label, not duplicated.
    const adopted = await cli(['create', 'hc-02', '--infra', 'cloud'])
    expect(adopted.code, adopted.stderr).toBe(0)
    expect(adopted.stderr).toMatch(/already exists .*adopting it/)
    expect(api.servers.size).toBe(before)
    expect(api.requests.filter((r) => r.method === 'POST' && r.path.startsWith('/v1/servers')).length).toBe(posts)
  })

  it('--check changes nothing and makes no mutating API call', async () => {
    const before = treeHash(join(ws.path, '.prov'))
    const count = mutating().length
    for (const args of [
      ['create', 'hc-03', '--infra', 'cloud', '--check'],
      ['delete', 'hc-01', '--check'],
      ['stop', 'hc-01', '--check'],
    ]) {
      const result = await cli(args)
      expect(result.code, `${args.join(' ')}: ${result.stderr}`).toBe(0)
    }
    expect(mutating().length).toBe(count)
    expect(treeHash(join(ws.path, '.prov'))).toBe(before)
  })

  it('delete removes the server; the SSH key goes with the last server', async () => {
    const first = await cli(['delete', 'hc-01', '--yes'])
    expect(first.code, first.stderr).toBe(0)
    expect([...api.servers.values()].map((s) => s.name)).toEqual(['hc-02'])
    expect(api.sshKeys.size).toBe(1)
    const second = await cli(['delete', 'hc-02', '--yes'])
    expect(second.code, second.stderr).toBe(0)
    expect(api.servers.size).toBe(0)
    expect(api.sshKeys.size).toBe(0)
  })
})

describe('hcloud bad input and API errors', () => {
  it('missing credential: exit 3, the hint names HCLOUD_TOKEN', async () => {
    const result = await cli(['create', 'hc-03', '--infra', 'cloud'], { HCLOUD_TOKEN: undefined })
    expect(result.code).toBe(3)
    const lines = errorLine(result)
    expect(lines).toHaveLength(1)
    expect(lines[0]).toMatch(/no hcloud API credential: HCLOUD_TOKEN is not set.*hint: export HCLOUD_TOKEN/)
    const plans = await cli(['plans', '--provider', 'hcloud'], { HCLOUD_TOKEN: undefined })
    expect(plans.code).toBe(3)
    expect(errorLine(plans)[0]).toMatch(/HCLOUD_TOKEN is not set/)
  })

  it('bad credential: exit 4 with one line, the token never shown, nothing recorded', async () => {
    for (const args of [
      ['plans', '--provider', 'hcloud'],
      ['create', 'hc-03', '--infra', 'cloud'],
    ]) {
      const result = await cli(args, { HCLOUD_TOKEN: 'wrong-token-abcdef' })
      expect(result.code, result.stderr).toBe(4)
      const lines = errorLine(result)
      expect(lines).toHaveLength(1)
      expect(lines[0]).toMatch(/hcloud API answered 401 unauthorized.*hint: check the credentials \(HCLOUD_TOKEN\)/)
      expect(result.stderr).not.toContain('wrong-token-abcdef')
    }
    expect(readFileSync(join(ws.path, '.prov', 'servers.json'), 'utf8')).not.toContain('hc-03')
  })

  it('unknown plan, image or zone: exit 2 at plan time listing the valid ones, nothing created', async () => {
    const count = mutating().length
    for (const [name, pattern] of [
      ['bad-plan', /server 'bad-plan': hcloud has no server type \(plan\) 'cx999'.*valid: cx22, cpx31/],
      ['bad-image', /server 'bad-image': hcloud has no system image 'windows-95'.*valid: debian-12, ubuntu-24.04/],
      ['bad-zone', /server 'bad-zone': hcloud has no location \(zone\) 'mars1'.*valid: fsn1, nbg1/],
    ] as const) {
      for (const args of [['create', name], ['plan']]) {
        const result = await cli([...args, '--infra', name])
        expect(result.code, result.stderr).toBe(2)
        const lines = errorLine(result)
        expect(lines).toHaveLength(1)
        expect(lines[0]).toMatch(pattern)
      }
    }
    const price = await cli(['price', 'cx999', '--provider', 'hcloud'])
    expect(price.code).toBe(2)
    expect(mutating().length).toBe(count)
    expect(api.servers.size).toBe(0)
  })

  it("prov's own identity labels in servers.yaml are exit 3 at plan time, nothing asked of the API", async () => {
    const count = api.requests.length
    const result = await cli(['plan', '--infra', 'bad-label'])
    expect(result.code, result.stderr).toBe(3)
    expect(errorLine(result)).toHaveLength(1)
    expect(errorLine(result)[0]).toMatch(/server 'bad-label': label 'prov-server' is prov's own/)
    expect(api.requests.length).toBe(count)
  })

  it('a 429 with Retry-After is retried; a 429 storm ends with exit 1', async () => {
    api.fail({
      method: 'GET',
      path: /^\/server_types$/,
      status: 429,
      body: { error: { code: 'rate_limit_exceeded', message: 'limit of 3600 requests per hour reached' } },
      headers: { 'retry-after': '0' },
      times: 1,
    })
    const once = await cli(['plans', '--provider', 'hcloud'])
    expect(once.code, once.stderr).toBe(0)
    api.fail({
      method: 'GET',
      path: /^\/server_types$/,
      status: 429,
      body: { error: { code: 'rate_limit_exceeded', message: 'limit of 3600 requests per hour reached' } },
      headers: { 'retry-after': '0' },
      times: 10,
    })
    const storm = await cli(['plans', '--provider', 'hcloud'])
    expect(storm.code).toBe(1)
    expect(errorLine(storm)[0]).toMatch(/429 rate_limit_exceeded: limit of 3600 requests per hour reached \(still rate limited after 3 attempts\)/)
  })

  it('a 500 after the API made the server leaves no orphan; the rerun creates exactly one', async () => {
    api.fail({
      method: 'POST',
      path: /^\/servers$/,
      status: 500,
      body: { error: { code: 'server_error', message: 'internal error' } },
      times: 1,
      passThrough: true,
    })
    const failed = await cli(['create', 'hc-04', '--infra', 'cloud'])
    expect(failed.code).toBe(1)
    expect(errorLine(failed)[0]).toMatch(/hcloud API answered 500 server_error: internal error/)
    expect(api.servers.size).toBe(0)
    const again = await cli(['create', 'hc-04', '--infra', 'cloud'])
    expect(again.code, again.stderr).toBe(0)
    expect([...api.servers.values()].map((s) => s.name)).toEqual(['hc-04'])
  })

  it('quota and validation errors of the API map to exit codes with its own message', async () => {
    api.fail({
      method: 'POST',
      path: /^\/servers$/,
      status: 403,
      body: { error: { code: 'resource_limit_exceeded', message: 'server limit exceeded' } },
      times: 1,
    })
    const quota = await cli(['create', 'hc-05', '--infra', 'cloud'])
    expect(quota.code).toBe(1)
    expect(errorLine(quota)[0]).toMatch(/403 resource_limit_exceeded: server limit exceeded.*hint: an account limit/)
    const bad = await cli(['plans', '--provider', 'hcloud'], {})
    expect(bad.code).toBe(0)
    api.fail({
      method: 'GET',
      path: /^\/locations$/,
      status: 400,
      body: { error: { code: 'invalid_input', message: 'invalid input in field location' } },
      times: 1,
    })
    const invalid = await cli(['zones', '--provider', 'hcloud'])
    expect(invalid.code).toBe(2)
    expect(errorLine(invalid)[0]).toMatch(/400 invalid_input: invalid input in field location/)
  })

  it('a config with a literal token or a remote http endpoint is refused (exit 3)', async () => {
    const configFile = join(ws.path, 'prov.config.yaml')
    const original = readFileSync(configFile, 'utf8')
    try {
      const config = parse(original)
      config.providers.hcloud.token = 'literal-token-value'
      writeFileSync(configFile, stringify(config))
      const literal = await cli(['plans', '--provider', 'hcloud'])
      expect(literal.code).toBe(3)
      expect(errorLine(literal)[0]).toMatch(/providers\.hcloud\.token must be a \{secret: NAME\} reference/)
      expect(literal.stderr).not.toContain('literal-token-value')
    } finally {
      writeFileSync(configFile, original)
    }
  })
})

describe('hcloud answers prov cannot trust', () => {
  const idOf = (name: string) => [...api.servers.values()].find((s) => s.name === name)?.id as number
  const recorded = () => JSON.parse(readFileSync(join(ws.path, '.prov', 'servers.json'), 'utf8')).servers as Record<string, unknown>

  it('parallel creates in a fresh workspace share one SSH key (one POST /ssh_keys)', async () => {
    // hc-04 of the tests above holds the workspace key: delete it so the key goes too.
    expect((await cli(['delete', 'hc-04', '--yes'])).code).toBe(0)
    expect(api.sshKeys.size).toBe(0)
    const keyPosts = () => api.requests.filter((r) => r.method === 'POST' && r.path === '/v1/ssh_keys').length
    const before = keyPosts()
    const result = await cli(['create', 'hc-03', 'hc-04', 'hc-05', '--infra', 'cloud', '--parallel', '3'])
    expect(result.code, result.stderr).toBe(0)
    expect(keyPosts() - before).toBe(1)
    expect(api.sshKeys.size).toBe(1)
  })

  it('a GET /servers/{id} answer that is not JSON, or has no server, fails delete (exit 1): record kept, no DELETE', async () => {
    const id = idOf('hc-03')
    const deletes = () => api.requests.filter((r) => r.method === 'DELETE').length
    const before = deletes()
    // The recorded GET /servers/{id} answer replaced by a truncated body, then by an empty object.
    for (const [fault, pattern] of [
      [{ raw: '{"server": {"id": 10' }, /unusable body: not JSON/],
      [{ body: {} }, /unusable body: server is not an object/],
    ] as const) {
      api.fail({ method: 'GET', path: new RegExp(`^/servers/${id}$`), times: 5, ...fault })
      const result = await cli(['delete', 'hc-03', '--yes'])
      expect(result.code, result.stderr).toBe(1)
      expect(errorLine(result)).toHaveLength(1)
      expect(errorLine(result)[0]).toMatch(pattern)
      expect(errorLine(result)[0]).toMatch(new RegExp(`hcloud API GET /servers/${id}`))
      api.clearFaults()
      expect(recorded()['hc-03']).toBeDefined()
    }
    expect(deletes()).toBe(before)
    expect(api.servers.has(id)).toBe(true)
  })

  it('a server or SSH key without prov labels is never deleted, whatever the state or the label filter says', async () => {
    // hc-05's server loses prov's labels and name in the API (as a stored id now naming someone else's server).
    const id = idOf('hc-05')
    const foreign = api.servers.get(id) as Record<string, unknown>
    foreign.labels = {}
    foreign.name = 'prod-db'
    // A key of someone else in the project, which the ssh_keys answer lists as if it matched the filter.
    const [ours] = [...api.sshKeys.values()]
    api.sshKeys.set(777, { ...ours, id: 777, name: 'someone-else', fingerprint: '00:11', labels: {} })
    const result = await cli(['delete', 'hc-05', '--yes'])
    expect(result.code, result.stderr).toBe(0)
    expect(result.stderr).toMatch(new RegExp(`server ${id} does not carry this workspace's labels for 'hc-05'`))
    expect(api.requests.some((r) => r.method === 'DELETE' && r.path === `/v1/servers/${id}`)).toBe(false)
    expect(api.servers.has(id)).toBe(true)
    api.servers.delete(id)
    // The last servers go; the answer listing keys is altered to carry the foreign key too.
    api.fail({
      method: 'GET',
      path: /^\/ssh_keys$/,
      times: 5,
      alter: (answer) => ({ ...answer, ssh_keys: [...((answer?.ssh_keys as unknown[]) ?? []), api.sshKeys.get(777)] }),
    })
    for (const name of ['hc-03', 'hc-04']) {
      const rest = await cli(['delete', name, '--yes'])
      expect(rest.code, rest.stderr).toBe(0)
    }
    expect([...api.sshKeys.keys()]).toEqual([777])
    expect(api.requests.some((r) => r.method === 'DELETE' && r.path === '/v1/ssh_keys/777')).toBe(false)
    api.sshKeys.delete(777)
  })

  it('catalog answers of another shape or size are one error line naming the call (exit 1)', async () => {
    for (const [path, args, fault, pattern] of [
      ['locations', ['zones'], { body: {} }, /GET \/locations with an unusable body: locations is not a list of objects/],
      ['locations', ['zones'], { body: { locations: 'fsn1' } }, /locations is not a list of objects/],
      ['locations', ['zones'], { raw: '{"locations":[null]}' }, /locations is not a list of objects/],
      ['server_types', ['plans'], { raw: 'null' }, /GET \/server_types with an unusable body: server_types is not a list of objects/],
      ['server_types', ['plans'], { raw: Buffer.alloc(9 * 1024 * 1024, 32) }, /GET \/server_types with an unusable body: more than 8 MiB/],
    ] as const) {
      api.fail({ method: 'GET', path: new RegExp(`^/${path}$`), times: 5, ...fault })
      const result = await cli([...args, '--provider', 'hcloud'])
      expect(result.code, result.stderr).toBe(1)
      expect(errorLine(result)).toHaveLength(1)
      expect(errorLine(result)[0]).toMatch(pattern)
      expect(result.stderr).not.toMatch(/Cannot read properties/)
      api.clearFaults()
    }
  })

  it('a create the API refuses as invalid (422/409/412) is exit 2; an action on a server deleted outside prov is exit 5', async () => {
    for (const [status, code] of [
      [422, 'invalid_input'],
      [409, 'conflict'],
      [412, 'unavailable'],
    ] as const) {
      api.fail({ method: 'POST', path: /^\/servers$/, status, body: { error: { code, message: `refused as ${code}` } }, times: 1 })
      const created = await cli(['create', 'hc-01', '--infra', 'cloud'])
      expect(created.code, created.stderr).toBe(2)
      expect(errorLine(created)[0]).toMatch(new RegExp(`hcloud API answered ${status} ${code}: refused as ${code}`))
      expect(recorded()['hc-01']).toBeUndefined()
    }
    const made = await cli(['create', 'hc-01', '--infra', 'cloud'])
    expect(made.code, made.stderr).toBe(0)
    api.servers.delete(idOf('hc-01'))
    const stop = await cli(['stop', 'hc-01', '--yes'])
    expect(stop.code, stop.stderr).toBe(5)
    expect(errorLine(stop)[0]).toMatch(/hcloud has no server for 'hc-01'/)
    expect((await cli(['delete', 'hc-01', '--yes'])).code).toBe(0)
  })

  it('list says when hcloud could not be asked: a warning line, status unknown, and the exit code of the failure', async () => {
    const made = await cli(['create', 'hc-02', '--infra', 'cloud'])
    expect(made.code, made.stderr).toBe(0)
    for (const [extra, code, pattern] of [
      [{ HCLOUD_TOKEN: 'wrong-token-abcdef' }, 4, /hcloud API answered 401 unauthorized/],
      [{ HCLOUD_TOKEN: undefined }, 3, /no hcloud API credential: HCLOUD_TOKEN is not set/],
    ] as const) {
      const list = await cli(['list', '--out', 'json'], extra)
      expect(list.code, list.stderr).toBe(code)
      expect(list.stderr).toMatch(/provider hcloud could not be asked, its 1 server\(s\) show status unknown/)
      expect(list.stderr).toMatch(pattern)
      expect(list.json()).toEqual([expect.objectContaining({ name: 'hc-02', status: 'unknown' })])
      const running = await cli(['list', '--status', 'running', '--out', 'json'], extra)
      expect(running.code).toBe(code)
      expect(running.json()).toEqual([])
    }
    expect((await cli(['list'])).code).toBe(0)
    expect((await cli(['delete', 'hc-02', '--yes'])).code).toBe(0)
  })

  it('a redirect is never followed, not even a 307 on create: exit 1, nothing reaches the other host', async () => {
    const reached: string[] = []
    const other = createServer((req, res) => {
      reached.push(`${req.method} ${req.url}`)
      res.writeHead(200, { 'content-type': 'application/json' })
      res.end('{}')
    })
    await new Promise<void>((resolve) => other.listen(0, '127.0.0.1', resolve))
    const elsewhere = `http://127.0.0.1:${(other.address() as AddressInfo).port}`
    try {
      api.fail({ method: 'GET', path: /^\/locations$/, status: 302, headers: { location: `${elsewhere}/v1/locations` }, times: 5 })
      const zones = await cli(['zones', '--provider', 'hcloud'])
      expect(zones.code).toBe(1)
      expect(errorLine(zones)[0]).toMatch(/answered 302 redirecting to 'http:\/\/127\.0\.0\.1:\d+\/v1\/locations': prov does not follow redirects/)
      api.clearFaults()
      api.fail({ method: 'POST', path: /^\/servers$/, status: 307, headers: { location: `${elsewhere}/v1/servers` }, times: 1 })
      const created = await cli(['create', 'hc-01', '--infra', 'cloud'])
      expect(created.code).toBe(1)
      expect(errorLine(created)[0]).toMatch(/answered 307 redirecting to/)
      expect(reached).toEqual([])
      expect(recorded()['hc-01']).toBeUndefined()
    } finally {
      await new Promise<void>((resolve) => other.close(() => resolve()))
    }
  })
})
