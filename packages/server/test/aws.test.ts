// The aws provider against moto_server (moto 5), an independent EC2 emulator: the whole lifecycle,
// user data as EC2 stores it, tags, adoption of an interrupted create, and bad input.
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs'
import { join } from 'node:path'
import {
  DescribeInstanceAttributeCommand,
  DescribeInstancesCommand,
  DescribeKeyPairsCommand,
  DescribeSecurityGroupsCommand,
  EC2Client,
  RunInstancesCommand,
} from '@aws-sdk/client-ec2'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { parse, stringify } from 'yaml'
import { type CliResult, runCli, tempWorkspace } from '../../../tests/helpers/cli'
import { type Moto, startMoto } from '../../../tests/helpers/moto'
import { treeHash } from './helpers/workspace'

const credentials = { accessKeyId: 'AKIDPROVTESTS', secretAccessKey: 'prov-tests-secret-access-key' }
let moto: Moto
let ec2: EC2Client
let ws: Awaited<ReturnType<typeof tempWorkspace>>
let env: Record<string, string>
let image = ''

const cli = (args: string[], extra: Record<string, string | undefined> = {}): Promise<CliResult> =>
  runCli('prov-server', args, { env: { ...env, ...extra }, cwd: ws.path, timeoutMs: 120_000 })
const errorLines = (result: CliResult) =>
  result.stderr
    .trim()
    .split('\n')
    .filter((l) => l.includes('error:'))

async function liveInstances() {
  const out = await ec2.send(
    new DescribeInstancesCommand({ Filters: [{ Name: 'instance-state-name', Values: ['pending', 'running', 'stopping', 'stopped'] }] }),
  )
  return (out.Reservations ?? []).flatMap((r) => r.Instances ?? [])
}
const tagsOf = (instance: { Tags?: { Key?: string; Value?: string }[] }) => Object.fromEntries((instance.Tags ?? []).map((t) => [t.Key, t.Value]))

beforeAll(async () => {
  moto = await startMoto()
  ec2 = new EC2Client({ region: 'us-east-1', endpoint: moto.url, credentials })
  const { DescribeImagesCommand } = await import('@aws-sdk/client-ec2')
  const images = await ec2.send(new DescribeImagesCommand({ Filters: [{ Name: 'name', Values: ['ubuntu/images/*'] }] }))
  image = images.Images?.[0]?.ImageId as string
  ws = await tempWorkspace('aws', 'full')
  env = { ...ws.env, AWS_ACCESS_KEY_ID: credentials.accessKeyId, AWS_SECRET_ACCESS_KEY: credentials.secretAccessKey, AWS_REGION: 'us-east-1' }
  const configFile = join(ws.path, 'prov.config.yaml')
  const config = parse(readFileSync(configFile, 'utf8'))
  config.providers = {
    ...config.providers,
    aws: { endpoint: moto.url, region: 'us-east-1', ready: 'running', ready_timeout: 60, ssh_cidr: '203.0.113.0/24', retries: 1 },
  }
  writeFileSync(configFile, stringify(config))
  const server = (name: string, extra: object = {}) => ({
    name,
    provider: 'aws',
    plan: 't3.micro',
    image,
    zone: 'us-east-1a',
    labels: { role: 'web' },
    provision: { files: [{ path: '/etc/motd', contents: `hello from ${name}\n` }] },
    ...extra,
  })
  const infra = (name: string, list: object[]) => {
    mkdirSync(join(ws.path, 'infra', name), { recursive: true })
    writeFileSync(join(ws.path, 'infra', name, 'servers.yaml'), stringify({ servers: list }))
  }
  infra('cloud', [server('ec2-01'), server('ec2-02'), server('ec2-03')])
  infra('bad-plan', [server('bad-plan', { plan: 't9.enormous' })])
  infra('bad-zone', [server('bad-zone', { zone: 'us-east-1z' })])
  infra('bad-image', [server('bad-image', { image: 'ami-00000000deadbeef' })])
}, 120_000)

afterAll(async () => {
  ec2?.destroy()
  await moto?.close()
  ws?.cleanup()
})

describe('aws on moto', () => {
  it('plans and zones come from EC2', async () => {
    const plans = await cli(['plans', '--provider', 'aws'])
    expect(plans.code, plans.stderr).toBe(0)
    expect(plans.json().find((p: { name: string }) => p.name === 't3.micro')).toMatchObject({ cores: 2, memory_mb: 1024 })
    const zones = await cli(['zones', '--provider', 'aws'])
    expect(zones.code, zones.stderr).toBe(0)
    expect(zones.json().map((z: { name: string }) => z.name)).toContain('us-east-1a')
  })

  it('creates an instance with user data, tags, an imported key pair and an SSH security group', async () => {
    const result = await cli(['create', 'ec2-01', '--infra', 'cloud'])
    expect(result.code, result.stderr).toBe(0)
    const [record] = result.json()
    expect(record).toMatchObject({ name: 'ec2-01', provider: 'aws', status: 'running', plan: 't3.micro', zone: 'us-east-1a' })
    const [instance] = await liveInstances()
    const wsid = readFileSync(join(ws.path, '.prov', 'workspace-id'), 'utf8').trim()
    expect(tagsOf(instance)).toMatchObject({ role: 'web', 'prov-workspace': wsid, 'prov-server': 'ec2-01', Name: 'ec2-01' })
    expect(record.ip_address).toBe(instance.PublicIpAddress)
    const attribute = await ec2.send(new DescribeInstanceAttributeCommand({ InstanceId: instance.InstanceId, Attribute: 'userData' }))
    const userData = Buffer.from(attribute.UserData?.Value ?? '', 'base64').toString('utf8')
    expect(userData.startsWith('#cloud-config\n')).toBe(true)
    expect(userData).toContain('/etc/motd')
    const keys = await ec2.send(new DescribeKeyPairsCommand({}))
    expect(keys.KeyPairs?.map((k) => k.KeyName)).toEqual([`prov-${wsid}`])
    expect(instance.KeyName).toBe(`prov-${wsid}`)
    const groups = await ec2.send(new DescribeSecurityGroupsCommand({ GroupIds: instance.SecurityGroups?.map((g) => g.GroupId as string) }))
    expect(groups.SecurityGroups?.[0]?.IpPermissions?.[0]).toMatchObject({
      FromPort: 22,
      ToPort: 22,
      IpRanges: [expect.objectContaining({ CidrIp: '203.0.113.0/24' })],
    })
    const state = readFileSync(join(ws.path, '.prov', 'servers.json'), 'utf8')
    expect(state).not.toContain(credentials.secretAccessKey)
    expect(result.stderr).not.toContain(credentials.secretAccessKey)
    // stderr carries prov's own lines: the SDK's Node version notice stays out of it.
    expect(result.stderr).not.toContain('NodeVersionSupportWarning')
  })

  it('list, stop, start and info follow EC2', async () => {
    const stop = await cli(['stop', 'ec2-01', '--yes'])
    expect(stop.code, stop.stderr).toBe(0)
    expect(stop.json()[0]).toMatchObject({ status: 'stopped', action: 'stop' })
    const list = await cli(['list'])
    expect(list.json().find((s: { name: string }) => s.name === 'ec2-01')).toMatchObject({ status: 'stopped' })
    const start = await cli(['start', 'ec2-01', '--yes'])
    expect(start.code, start.stderr).toBe(0)
    expect(start.json()[0]).toMatchObject({ status: 'running', action: 'start' })
    const info = await cli(['info', 'ec2-01'])
    expect(info.code, info.stderr).toBe(0)
    expect([info.json()].flat()[0].provider_info).toMatchObject({ state: 'running', instance_type: 't3.micro', availability_zone: 'us-east-1a' })
  })

  it('an instance made before the state write (interrupted create) is adopted, not duplicated', async () => {
    const wsid = readFileSync(join(ws.path, '.prov', 'workspace-id'), 'utf8').trim()
    await ec2.send(
      new RunInstancesCommand({
        ImageId: image,
        InstanceType: 't3.micro',
        MinCount: 1,
        MaxCount: 1,
        TagSpecifications: [
          {
            ResourceType: 'instance',
            Tags: [
              { Key: 'prov-workspace', Value: wsid },
              { Key: 'prov-server', Value: 'ec2-02' },
            ],
          },
        ],
      }),
    )
    const before = (await liveInstances()).length
    const adopted = await cli(['create', 'ec2-02', '--infra', 'cloud'])
    expect(adopted.code, adopted.stderr).toBe(0)
    expect(adopted.stderr).toMatch(/already exists .*adopting it/)
    expect((await liveInstances()).length).toBe(before)
  })

  it('--check makes no change and creates nothing', async () => {
    const before = treeHash(join(ws.path, '.prov'))
    const count = (await liveInstances()).length
    for (const args of [
      ['create', 'ec2-03', '--infra', 'cloud', '--check'],
      ['delete', 'ec2-01', '--check'],
      ['stop', 'ec2-01', '--check'],
    ]) {
      const result = await cli(args)
      expect(result.code, `${args.join(' ')}: ${result.stderr}`).toBe(0)
    }
    expect((await liveInstances()).length).toBe(count)
    expect((await liveInstances()).every((i) => i.State?.Name === 'running')).toBe(true)
    expect(treeHash(join(ws.path, '.prov'))).toBe(before)
  })

  it('delete terminates; the key pair and security group go with the last instance', async () => {
    const first = await cli(['delete', 'ec2-01', '--yes'])
    expect(first.code, first.stderr).toBe(0)
    expect((await liveInstances()).map((i) => tagsOf(i)['prov-server'])).toEqual(['ec2-02'])
    expect((await ec2.send(new DescribeKeyPairsCommand({}))).KeyPairs).toHaveLength(1)
    const second = await cli(['delete', 'ec2-02', '--yes'])
    expect(second.code, second.stderr).toBe(0)
    expect(await liveInstances()).toEqual([])
    expect((await ec2.send(new DescribeKeyPairsCommand({}))).KeyPairs).toEqual([])
    const groups = await ec2.send(new DescribeSecurityGroupsCommand({ Filters: [{ Name: 'tag-key', Values: ['prov-workspace'] }] }))
    expect(groups.SecurityGroups).toEqual([])
  })
})

describe('aws bad input', () => {
  it('missing credentials: exit 3, the hint names AWS_ACCESS_KEY_ID', async () => {
    const result = await cli(['plans', '--provider', 'aws'], { AWS_ACCESS_KEY_ID: undefined, AWS_SECRET_ACCESS_KEY: undefined, AWS_PROFILE: undefined })
    expect(result.code).toBe(3)
    const lines = errorLines(result)
    expect(lines).toHaveLength(1)
    expect(lines[0]).toMatch(/no aws API credential: AWS_ACCESS_KEY_ID is not set.*hint: export AWS_ACCESS_KEY_ID/)
  })

  it('credentials EC2 refuses: exit 4 with one line, the secret never shown', async () => {
    // moto checks signatures against its IAM users once INITIAL_NO_AUTH_ACTION_COUNT is spent.
    const strict = await startMoto({ INITIAL_NO_AUTH_ACTION_COUNT: '0' })
    try {
      const configFile = join(ws.path, 'prov.config.yaml')
      const original = readFileSync(configFile, 'utf8')
      const config = parse(original)
      config.providers.aws.endpoint = strict.url
      writeFileSync(configFile, stringify(config))
      try {
        for (const args of [
          ['plans', '--provider', 'aws'],
          ['create', 'ec2-03', '--infra', 'cloud'],
        ]) {
          const result = await cli(args)
          expect(result.code, result.stderr).toBe(4)
          const lines = errorLines(result)
          expect(lines).toHaveLength(1)
          expect(lines[0]).toMatch(/aws EC2 answered 401 AuthFailure.*hint: check the credentials \(AWS_ACCESS_KEY_ID\/AWS_SECRET_ACCESS_KEY\)/)
          expect(result.stderr).not.toContain(credentials.secretAccessKey)
        }
      } finally {
        writeFileSync(configFile, original)
      }
    } finally {
      await strict.close()
    }
  })

  it('unknown instance type, zone or image: exit 2 at plan time listing valid ones, nothing created', async () => {
    const count = (await liveInstances()).length
    for (const [name, pattern] of [
      ['bad-plan', /server 'bad-plan': aws has no instance type \(plan\) 't9\.enormous'.*valid: /],
      ['bad-zone', /server 'bad-zone': aws has no availability zone \(zone\) 'us-east-1z'.*valid: us-east-1a/],
      ['bad-image', /server 'bad-image': aws has no image 'ami-00000000deadbeef'.*valid: ami-/],
    ] as const) {
      for (const args of [['create', name], ['plan']]) {
        const result = await cli([...args, '--infra', name])
        expect(result.code, result.stderr).toBe(2)
        const lines = errorLines(result)
        expect(lines).toHaveLength(1)
        expect(lines[0]).toMatch(pattern)
      }
    }
    expect((await liveInstances()).length).toBe(count)
  })
})
