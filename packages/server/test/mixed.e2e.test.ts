// One workspace, one servers.yaml across three providers: a real local sandbox, an EC2 instance
// on moto_server (an independent AWS emulator) and an UpCloud server answered by the strict
// replay of recorded UpCloud API traffic (helpers/upcloud-replay.ts). `plan | apply` makes all
// three in one go, `list` reads each back from its own provider, prov-taskserv targets all of
// them, and `delete --all` removes them everywhere. Only the sandbox answers SSH (the cloud
// machines are emulated), so prov-taskserv is checked for targeting (`--check` plans) there and
// for a real install on the sandbox alone.
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs'
import { join } from 'node:path'
import { DescribeImagesCommand, DescribeInstancesCommand, EC2Client } from '@aws-sdk/client-ec2'
import { afterAll, beforeAll, expect, it } from 'vitest'
import { parse, stringify } from 'yaml'
import { type CliResult, runCli, tempWorkspace } from '../../../tests/helpers/cli'
import { type Moto, startMoto } from '../../../tests/helpers/moto'
import { cleanupPrefix, describeSandbox, netnsWith, systemSsh, tearDownSandboxes, useSubnet } from './helpers/local'
import { startUpcloudReplay, type UpcloudReplay } from './helpers/upcloud-replay'

// Own subnet and bridge: no other suite uses them.
const SUBNET = '10.213.15.0/24'
const BRIDGE = 'provt15'
const credentials = { accessKeyId: 'AKIDPROVMIXED', secretAccessKey: 'prov-mixed-secret-access-key' }
/** What the UpCloud recordings dictate (tests/fixtures/upcloud/README.md). */
const UPCLOUD_TEMPLATE = '01000000-0000-4000-8000-000020060100'
/** The server createdeleteserverandstorage.yaml recorded: its UUID and public address. */
const UPCLOUD_UUID = '005e48a7-dc8a-409e-be63-9fcc536f292e'
const UPCLOUD_IP = '94.237.9.189'
const NAMES = ['mix-aws', 'mix-local', 'mix-upcloud']

let ws: Awaited<ReturnType<typeof tempWorkspace>> | undefined
let moto: Moto | undefined
let replay: UpcloudReplay | undefined
let ec2: EC2Client | undefined

const workspace = () => ws as NonNullable<typeof ws>
const server = (args: string[], input?: string): Promise<CliResult> =>
  runCli('prov-server', args, { env: workspace().env, cwd: workspace().path, input, timeoutMs: 180_000 })
const taskserv = (args: string[]): Promise<CliResult> =>
  runCli('prov-taskserv', args, {
    env: { ...workspace().env, PROV_SSH__RETRIES: '0', PROV_SSH__CONNECT_TIMEOUT: '5' },
    cwd: workspace().path,
    timeoutMs: 180_000,
  })

async function liveInstances() {
  const out = await (ec2 as EC2Client).send(
    new DescribeInstancesCommand({ Filters: [{ Name: 'instance-state-name', Values: ['pending', 'running', 'stopping', 'stopped'] }] }),
  )
  return (out.Reservations ?? []).flatMap((r) => r.Instances ?? [])
}

/** The servers.yaml the docs show for a mixed infra (docs/providers.md), with the test's image ids. */
function mixedServers(awsImage: string) {
  return {
    servers: [
      { name: 'mix-local', provider: 'local', cores: 1, memory_mb: 512, labels: { role: 'db' } },
      { name: 'mix-aws', provider: 'aws', plan: 't3.micro', image: awsImage, zone: 'us-east-1a', labels: { role: 'web' } },
      { name: 'mix-upcloud', provider: 'upcloud', zone: 'fi-hel2', image: UPCLOUD_TEMPLATE, disk_gb: 10, labels: { role: 'web' } },
    ],
  }
}

describeSandbox('mixed infra: local sandbox, aws on moto, upcloud on recorded traffic (root)', { timeout: 240_000 }, () => {
  beforeAll(async () => {
    cleanupPrefix(BRIDGE)
    moto = await startMoto()
    replay = await startUpcloudReplay()
    ec2 = new EC2Client({ region: 'us-east-1', endpoint: moto.url, credentials })
    const images = await ec2.send(new DescribeImagesCommand({ Filters: [{ Name: 'name', Values: ['ubuntu/images/*'] }] }))
    const awsImage = images.Images?.[0]?.ImageId
    if (!awsImage) throw new Error('moto_server lists no ubuntu image to start an instance from')
    ws = await tempWorkspace('mixed', 'full')
    useSubnet(ws.path, SUBNET, BRIDGE)
    // The credentials go into the workspace's environment so that the teardown's delete reaches every provider.
    Object.assign(ws.env, {
      AWS_ACCESS_KEY_ID: credentials.accessKeyId,
      AWS_SECRET_ACCESS_KEY: credentials.secretAccessKey,
      AWS_REGION: 'us-east-1',
      UPCLOUD_USERNAME: replay.username,
      UPCLOUD_PASSWORD: replay.password,
      UPCLOUD_TOKEN: undefined,
    })
    const configFile = join(ws.path, 'prov.config.yaml')
    const config = parse(readFileSync(configFile, 'utf8'))
    config.providers = {
      ...config.providers,
      aws: { endpoint: moto.url, region: 'us-east-1', ready: 'running', ready_timeout: 60, ssh_cidr: '203.0.113.0/24', retries: 1 },
      upcloud: { endpoint: replay.url, ready: 'running', ready_timeout: 30, retries: 2 },
    }
    writeFileSync(configFile, stringify(config))
    mkdirSync(join(ws.path, 'infra', 'mixed'), { recursive: true })
    writeFileSync(join(ws.path, 'infra', 'mixed', 'servers.yaml'), stringify(mixedServers(awsImage)))
    // The UpCloud session prov walks through: the recorded create, read back, stop and delete with storages.
    replay.play(['createdeleteserverandstorage'], ['getzones', 'getplans', 'getserverswithfilters'])
  })

  afterAll(async () => {
    try {
      await tearDownSandboxes(ws, BRIDGE, { verify: false })
    } finally {
      ec2?.destroy()
      await replay?.close()
      await moto?.close()
    }
  })

  it('plan | apply creates the three servers in one go', async () => {
    const plan = await server(['plan', '--infra', 'mixed', '-q'])
    expect(plan.code, plan.stderr).toBe(0)
    const planned = plan.json()
    expect(planned.summary).toMatchObject({ create: 3 })
    const applied = await server(['apply', '--yes', '--out', 'ndjson'], plan.stdout)
    expect(applied.code, applied.stderr).toBe(0)
    const records = applied.lines<{ name: string; provider: string; status: string; ip_address: string }>()
    expect(records.map((r) => [r.name, r.provider, r.status]).sort()).toEqual([
      ['mix-aws', 'aws', 'running'],
      ['mix-local', 'local', 'running'],
      ['mix-upcloud', 'upcloud', 'running'],
    ])
    expect(records.find((r) => r.name === 'mix-local')?.ip_address.startsWith('10.213.15.')).toBe(true)
    expect(records.find((r) => r.name === 'mix-upcloud')?.ip_address).toBe(UPCLOUD_IP)
    // Each provider made its own machine: a sandbox here, an instance on moto, the recorded UpCloud create.
    expect(netnsWith(BRIDGE)).toHaveLength(1)
    expect((await liveInstances()).map((i) => i.Tags?.find((t) => t.Key === 'prov-server')?.Value)).toEqual(['mix-aws'])
    expect(replay?.served.filter((s) => s.method !== 'GET').map((s) => `${s.method} ${s.path}`)).toEqual(['POST /1.3/server'])
  })

  it('list shows all three with their provider, read back from each', async () => {
    const list = await server(['list', '--out', 'json'])
    expect(list.code, list.stderr).toBe(0)
    const listed = list.json<{ name: string; provider: string; status: string; ip_address: string }[]>()
    expect(listed.map((s) => [s.name, s.provider, s.status]).sort()).toEqual([
      ['mix-aws', 'aws', 'running'],
      ['mix-local', 'local', 'running'],
      ['mix-upcloud', 'upcloud', 'running'],
    ])
    // The UpCloud record was read from the API (the recorded server by the UUID prov stored).
    expect(replay?.served.at(-1)).toMatchObject({ method: 'GET', path: `/1.3/server/${UPCLOUD_UUID}` })
    const [instance] = await liveInstances()
    expect(listed.find((s) => s.name === 'mix-aws')?.ip_address).toBe(instance.PublicIpAddress)
  })

  it('prov-taskserv targets all three; the sandbox, the only one answering SSH, gets a real install', async () => {
    const planned = await taskserv(['install', 'hello', '--servers', 'all', '--check', '-o', 'json'])
    expect(planned.code, planned.stderr).toBe(0)
    expect(JSON.stringify(planned.json())).toSatisfy((text: string) => NAMES.every((name) => text.includes(`"${name}"`)))
    const byRole = await taskserv(['install', 'hello', '--where', 'role=web', '--check', '-o', 'json'])
    expect(byRole.code, byRole.stderr).toBe(0)
    const webText = JSON.stringify(byRole.json())
    expect([webText.includes('"mix-aws"'), webText.includes('"mix-upcloud"'), webText.includes('"mix-local"')]).toEqual([true, true, false])
    const installed = await taskserv(['install', 'hello', '--servers', 'mix-local', '-o', 'json'])
    expect(installed.code, installed.stderr).toBe(0)
    const ip = (await server(['list', '--out', 'json'])).json<{ name: string; ip_address: string }[]>().find((s) => s.name === 'mix-local')?.ip_address
    expect(systemSsh(workspace().path, ip as string, 'hostname').stdout.trim()).toBe('mix-local')
  })

  it('delete --all removes the sandbox, terminates the instance and deletes the UpCloud server with its storages', async () => {
    const deleted = await server(['delete', '--all', '--yes', '--out', 'json'])
    expect(deleted.code, deleted.stderr).toBe(0)
    expect((await server(['list', '--out', 'json'])).json()).toEqual([])
    expect(netnsWith(BRIDGE)).toEqual([])
    expect(await liveInstances()).toEqual([])
    expect(replay?.served.filter((s) => s.method !== 'GET').map((s) => `${s.method} ${s.path}`)).toEqual([
      'POST /1.3/server',
      `POST /1.3/server/${UPCLOUD_UUID}/stop`,
      `DELETE /1.3/server/${UPCLOUD_UUID}/?storages=1`,
    ])
    expect(replay?.violations).toEqual([])
  })
})
