import { createHash } from 'node:crypto'
import type { EC2Client, Filter, Instance } from '@aws-sdk/client-ec2'
import {
  configError,
  ExitCode,
  ensureWorkspaceKey,
  failedError,
  forgetHostKey,
  isSecretRef,
  ProvError,
  registerSecretValue,
  type ServerRecord,
  type ServerStatus,
  secretResolverFor,
} from '@prov/core'
import {
  type CloudProviderConfig,
  checkedAddress,
  cloudConfigProblems,
  cloudDefaults,
  IDENTITY,
  pollUntil,
  requireChoice,
  waitForSsh,
  workspaceId,
} from './cloud/common'
import type { CreateOptions, Provider, ProviderContext, ProviderPlan, ServerSpec } from './types'

/** `providers.aws` (docs/providers.md#aws). */
export interface AwsConfig extends CloudProviderConfig {
  /** Region (default us-east-1); `zone` is an availability zone in it. */
  region?: string
  /** Instance type of servers that name no plan. */
  plan?: string
  /** AMI id (ami-...) or AMI name of servers that name no image. */
  image?: string
  /** Who may reach SSH (port 22 by default) through the security group prov creates. */
  ssh_cidr?: string
}

type Ctx = ProviderContext<AwsConfig>
const DEFAULT_REGION = 'us-east-1'
/** Instance states that still hold the name (terminated ones are gone for good). */
const LIVE_STATES = ['pending', 'running', 'stopping', 'stopped', 'shutting-down']

/** Credentials: `token: {secret: NAME}` holding `ACCESS_KEY_ID:SECRET_ACCESS_KEY`, else the SDK's environment/profile chain. */
async function credentials(ctx: Ctx): Promise<{ accessKeyId: string; secretAccessKey: string; sessionToken?: string } | undefined> {
  const ref = ctx.config.token
  if (ref && isSecretRef(ref)) {
    const value = (await secretResolverFor(ctx.rootConfig.secrets.provider, ctx.workspace.path).get(ref.secret)).trim()
    const [accessKeyId, secretAccessKey, sessionToken] = value.split(':')
    if (!accessKeyId || !secretAccessKey) {
      throw configError(`secret '${ref.secret}' is not ACCESS_KEY_ID:SECRET_ACCESS_KEY`, {
        location: 'providers.aws.token',
        hint: 'prov-kms secret set NAME with the two values joined by a colon',
      })
    }
    registerSecretValue(secretAccessKey)
    if (sessionToken) registerSecretValue(sessionToken)
    return { accessKeyId, secretAccessKey, ...(sessionToken ? { sessionToken } : {}) }
  }
  const envName = ctx.config.credential_env ?? 'AWS_ACCESS_KEY_ID'
  if (!process.env[envName] && !process.env.AWS_PROFILE && !process.env.AWS_WEB_IDENTITY_TOKEN_FILE) {
    throw configError(`no aws API credential: ${envName} is not set (nor AWS_PROFILE)`, {
      location: 'providers.aws',
      hint: `export ${envName}=... and AWS_SECRET_ACCESS_KEY=..., or AWS_PROFILE, or set providers.aws.token: {secret: NAME}`,
    })
  }
  if (process.env.AWS_SECRET_ACCESS_KEY) registerSecretValue(process.env.AWS_SECRET_ACCESS_KEY)
  if (process.env.AWS_SESSION_TOKEN) registerSecretValue(process.env.AWS_SESSION_TOKEN)
  if (process.env[envName] && !process.env.AWS_SECRET_ACCESS_KEY) {
    throw configError(`no aws API credential: ${envName} is set but AWS_SECRET_ACCESS_KEY is not`, {
      location: 'providers.aws',
      hint: 'export AWS_SECRET_ACCESS_KEY=... with the access key, or set providers.aws.token: {secret: NAME}',
    })
  }
  if (ctx.config.credential_env && process.env[envName]) {
    return {
      accessKeyId: process.env[envName] as string,
      secretAccessKey: process.env.AWS_SECRET_ACCESS_KEY as string,
      ...(process.env.AWS_SESSION_TOKEN ? { sessionToken: process.env.AWS_SESSION_TOKEN } : {}),
    }
  }
  return undefined
}

interface Ec2 {
  client: EC2Client
  sdk: typeof import('@aws-sdk/client-ec2')
  send<T>(what: string, command: unknown): Promise<T>
}

async function ec2(ctx: Ctx): Promise<Ec2> {
  const problems = awsProvider.validateConfig(ctx.config)
  if (problems.length) throw configError(`provider 'aws' is misconfigured: ${problems[0]}`, { hint: 'see docs/providers.md#aws' })
  // The SDK warns on stderr that later releases will need a newer Node; stderr carries prov's own lines.
  if (process.env.PROV_DEBUG !== '1') process.env.AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED ??= 'true'
  const sdk = await import('@aws-sdk/client-ec2')
  const creds = await credentials(ctx)
  const client = new sdk.EC2Client({
    region: ctx.config.region ?? DEFAULT_REGION,
    ...(ctx.config.endpoint ? { endpoint: ctx.config.endpoint } : {}),
    ...(creds ? { credentials: creds } : {}),
    maxAttempts: (ctx.config.retries ?? cloudDefaults.retries) + 1,
    requestHandler: { requestTimeout: (ctx.config.request_timeout ?? cloudDefaults.request_timeout) * 1000 },
  })
  return {
    client,
    sdk,
    async send<T>(what: string, command: unknown): Promise<T> {
      try {
        return (await client.send(command as Parameters<EC2Client['send']>[0])) as T
      } catch (error) {
        throw awsError(what, error, ctx)
      }
    },
  }
}

/** Error codes of EC2 that mean an account limit. */
const QUOTA_CODES = new Set([
  'InstanceLimitExceeded',
  'VcpuLimitExceeded',
  'InsufficientInstanceCapacity',
  'MaxSpotInstanceCountExceeded',
  'AddressLimitExceeded',
  'ResourceLimitExceeded',
])
const DENIED_CODES = new Set([
  'AuthFailure',
  'UnauthorizedOperation',
  'InvalidClientTokenId',
  'SignatureDoesNotMatch',
  'OptInRequired',
  'Blocked',
  'ExpiredToken',
])

/** An EC2 error as the contract's error (same mapping as the HTTP cloud APIs). */
export function awsError(what: string, error: unknown, ctx?: Ctx): ProvError {
  if (error instanceof ProvError) return error
  const e = error as { name?: string; Code?: string; message?: string; $metadata?: { httpStatusCode?: number } }
  const code = e.Code ?? e.name ?? 'Error'
  const status = e.$metadata?.httpStatusCode
  const where = `aws EC2 ${what}`
  const text = `aws EC2 answered${status ? ` ${status}` : ''} ${code}: ${(e.message ?? '').split('\n')[0].slice(0, 300)}`
  if (!status && /ECONNREFUSED|ENOTFOUND|ETIMEDOUT|TimeoutError|socket|network/i.test(`${code} ${e.message}`)) {
    return new ProvError(ExitCode.FAILED, `cannot reach the aws EC2 API: ${e.message?.split('\n')[0]}`, {
      location: where,
      hint: 'check the network, region and providers.aws.endpoint',
      cause: error,
    })
  }
  if (code === 'CredentialsProviderError') {
    return new ProvError(ExitCode.CONFIG, `no aws API credential: ${e.message}`, {
      location: where,
      hint: 'export AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY, or AWS_PROFILE',
    })
  }
  const options = { location: where, cause: error }
  if (QUOTA_CODES.has(code))
    return new ProvError(ExitCode.FAILED, text, { ...options, hint: 'an account limit of aws was reached: raise it or remove instances' })
  if (DENIED_CODES.has(code) || status === 401 || status === 403) {
    const envName = ctx?.config.credential_env ?? 'AWS_ACCESS_KEY_ID'
    return new ProvError(ExitCode.DENIED, text, {
      ...options,
      hint: `check the credentials (${ctx?.config.token ? `secret '${ctx.config.token.secret}'` : `${envName}/AWS_SECRET_ACCESS_KEY`}) and their IAM permissions`,
    })
  }
  if (/NotFound$/.test(code) || status === 404) return new ProvError(ExitCode.NOT_FOUND, text, { ...options, hint: 'it may have been deleted outside prov' })
  if (code === 'RequestLimitExceeded' || code === 'Throttling' || status === 429) {
    return new ProvError(ExitCode.FAILED, `${text} (still throttled after retries)`, { ...options, hint: 'wait and retry, or lower --parallel' })
  }
  if (status !== undefined && status >= 400 && status < 500) return new ProvError(ExitCode.USAGE, text, { ...options, hint: 'fix the value the API names' })
  return new ProvError(ExitCode.FAILED, text, { ...options, hint: 'aws had a server error: retry later' })
}

function statusOf(state: string | undefined): ServerStatus {
  if (state === 'running') return 'running'
  if (state === 'stopped') return 'stopped'
  if (state === 'pending') return 'creating'
  return 'unknown'
}

function recordOf(record: ServerRecord, instance: Instance): ServerRecord {
  return {
    ...record,
    status: statusOf(instance.State?.Name),
    ip_address: checkedAddress('aws', instance.PublicIpAddress ?? instance.PrivateIpAddress) || record.ip_address,
    plan: instance.InstanceType ?? record.plan,
    zone: instance.Placement?.AvailabilityZone ?? record.zone,
    image: record.image ?? instance.ImageId ?? null,
  }
}

const tagFilters = (wsid: string, name?: string): Filter[] => [
  { Name: `tag:${IDENTITY.workspace}`, Values: [wsid] },
  ...(name ? [{ Name: `tag:${IDENTITY.server}`, Values: [name] }] : []),
  { Name: 'instance-state-name', Values: LIVE_STATES },
]

async function instancesOf(api: Ec2, filters: Filter[], ids?: string[]): Promise<Instance[]> {
  const out: Instance[] = []
  let NextToken: string | undefined
  do {
    const page = await api.send<{ Reservations?: { Instances?: Instance[] }[]; NextToken?: string }>(
      'DescribeInstances',
      new api.sdk.DescribeInstancesCommand({ ...(ids ? { InstanceIds: ids } : { Filters: filters }), NextToken }),
    )
    for (const reservation of page.Reservations ?? []) out.push(...(reservation.Instances ?? []))
    NextToken = page.NextToken
  } while (NextToken)
  return out
}

/** The instance prov made for `name`: by the id it stored, else by its tags (a create killed before the state write). */
async function findInstance(ctx: Ctx, api: Ec2, name: string): Promise<Instance | undefined> {
  const id = ctx.getData(name)?.instance_id
  if (typeof id === 'string') {
    try {
      const [instance] = await instancesOf(api, [], [id])
      if (instance && instance.State?.Name !== 'terminated') return instance
    } catch (error) {
      if (!(error instanceof ProvError && error.code === ExitCode.NOT_FOUND)) throw error
    }
  }
  const [found] = await instancesOf(api, tagFilters(workspaceId(ctx.workspace), name))
  return found
}

async function requireInstance(ctx: Ctx, api: Ec2, record: ServerRecord): Promise<Instance> {
  const instance = await findInstance(ctx, api, record.name)
  if (!instance?.InstanceId)
    throw failedError(`aws has no instance for '${record.name}'`, { hint: 'it was terminated outside prov: prov-server delete it, then create it again' })
  return instance
}

async function waitForState(ctx: Ctx, api: Ec2, id: string, states: string[], what: string): Promise<Instance> {
  return pollUntil(
    what,
    async () => {
      const [instance] = await instancesOf(api, [], [id])
      return instance && states.includes(instance.State?.Name ?? '') ? instance : undefined
    },
    ctx.config.ready_timeout ?? cloudDefaults.ready_timeout,
  )
}

const identityTags = (wsid: string, name?: string) => [{ Key: IDENTITY.workspace, Value: wsid }, ...(name ? [{ Key: IDENTITY.server, Value: name }] : [])]

/** The workspace key as an EC2 key pair `prov-<id>`: imported once, reused after. */
async function keyPairName(ctx: Ctx, api: Ec2, wsid: string): Promise<string> {
  const name = `prov-${wsid}`
  const found = await api.send<{ KeyPairs?: unknown[] }>(
    'DescribeKeyPairs',
    new api.sdk.DescribeKeyPairsCommand({ Filters: [{ Name: 'key-name', Values: [name] }] }),
  )
  if (found.KeyPairs?.length) return name
  const key = await ensureWorkspaceKey(ctx.workspace)
  await api.send(
    'ImportKeyPair',
    new api.sdk.ImportKeyPairCommand({
      KeyName: name,
      PublicKeyMaterial: Buffer.from(key.publicKey.trim()),
      TagSpecifications: [{ ResourceType: 'key-pair', Tags: identityTags(wsid) }],
    }),
  )
  return name
}

/** The security group `prov-<id>-ssh` letting `ssh_cidr` reach the SSH port: made once per workspace and port. */
async function securityGroupId(ctx: Ctx, api: Ec2, wsid: string, port: number): Promise<string> {
  const name = `prov-${wsid}-ssh${port === 22 ? '' : `-${port}`}`
  const found = await api.send<{ SecurityGroups?: { GroupId?: string }[] }>(
    'DescribeSecurityGroups',
    new api.sdk.DescribeSecurityGroupsCommand({ Filters: [{ Name: 'group-name', Values: [name] }] }),
  )
  if (found.SecurityGroups?.[0]?.GroupId) return found.SecurityGroups[0].GroupId
  const created = await api.send<{ GroupId?: string }>(
    'CreateSecurityGroup',
    new api.sdk.CreateSecurityGroupCommand({
      GroupName: name,
      Description: `prov workspace ${wsid}: SSH from ${ctx.config.ssh_cidr ?? '0.0.0.0/0'}`,
      TagSpecifications: [{ ResourceType: 'security-group', Tags: identityTags(wsid) }],
    }),
  )
  const id = created.GroupId as string
  await api.send(
    'AuthorizeSecurityGroupIngress',
    new api.sdk.AuthorizeSecurityGroupIngressCommand({
      GroupId: id,
      IpPermissions: [{ IpProtocol: 'tcp', FromPort: port, ToPort: port, IpRanges: [{ CidrIp: ctx.config.ssh_cidr ?? '0.0.0.0/0', Description: 'prov ssh' }] }],
    }),
  )
  return id
}

/** Checks instance type, zone and image of servers against what EC2 offers: exit 2 listing the valid ones. */
async function checkChoices(ctx: Ctx, api: Ec2, specs: ServerSpec[]): Promise<void> {
  const types = (await instanceTypes(api))
    .map((t) => t.InstanceType ?? '')
    .filter(Boolean)
    .sort()
  const zones = specs.some((s) => s.zone ?? ctx.config.zone) ? (await zoneNames(api)).map((z) => z.name) : []
  for (const spec of specs) {
    requireChoice('aws', 'instance type (plan)', planOf(spec, ctx.config) as string, types, spec.name)
    const zone = spec.zone ?? ctx.config.zone
    if (zone) requireChoice('aws', 'availability zone (zone)', zone, zones, spec.name)
    await resolveImage(api, imageOf(spec, ctx.config) as string, spec.name)
  }
}

/** An AMI id as it is, else the newest available AMI of that name; unknown ones exit 2 listing some. */
async function resolveImage(api: Ec2, image: string, server?: string): Promise<string> {
  const byId = image.startsWith('ami-')
  const found = await api.send<{ Images?: { ImageId?: string; Name?: string; CreationDate?: string }[] }>(
    'DescribeImages',
    new api.sdk.DescribeImagesCommand(byId ? { Filters: [{ Name: 'image-id', Values: [image] }] } : { Filters: [{ Name: 'name', Values: [image] }] }),
  )
  const images = (found.Images ?? []).sort((a, b) => String(b.CreationDate).localeCompare(String(a.CreationDate)))
  if (images[0]?.ImageId) return images[0].ImageId
  const all = await api.send<{ Images?: { ImageId?: string; Name?: string }[] }>(
    'DescribeImages',
    new api.sdk.DescribeImagesCommand({ Owners: ['amazon', 'self'] }),
  )
  requireChoice(
    'aws',
    'image',
    image,
    (all.Images ?? [])
      .map((i) => (byId ? i.ImageId : i.Name) ?? '')
      .filter(Boolean)
      .sort(),
    server,
  )
  return image
}

async function instanceTypes(api: Ec2): Promise<{ InstanceType?: string; VCpuInfo?: { DefaultVCpus?: number }; MemoryInfo?: { SizeInMiB?: number } }[]> {
  const out: { InstanceType?: string; VCpuInfo?: { DefaultVCpus?: number }; MemoryInfo?: { SizeInMiB?: number } }[] = []
  let NextToken: string | undefined
  do {
    const page = await api.send<{ InstanceTypes?: typeof out; NextToken?: string }>(
      'DescribeInstanceTypes',
      new api.sdk.DescribeInstanceTypesCommand({ NextToken }),
    )
    out.push(...(page.InstanceTypes ?? []))
    NextToken = page.NextToken
  } while (NextToken)
  return out
}

async function zoneNames(api: Ec2): Promise<{ name: string; description?: string }[]> {
  const found = await api.send<{ AvailabilityZones?: { ZoneName?: string; RegionName?: string; State?: string }[] }>(
    'DescribeAvailabilityZones',
    new api.sdk.DescribeAvailabilityZonesCommand({}),
  )
  return (found.AvailabilityZones ?? [])
    .filter((z) => z.ZoneName)
    .map((z) => ({ name: z.ZoneName as string, description: `${z.RegionName ?? ''} ${z.State ?? ''}`.trim() }))
}

const planOf = (spec: ServerSpec, config: AwsConfig) => spec.plan ?? config.plan
const imageOf = (spec: ServerSpec, config: AwsConfig) => spec.image ?? config.image

/** `aws`: EC2 instances through @aws-sdk/client-ec2 (docs/providers.md#aws). */
export const awsProvider: Provider<AwsConfig> = {
  name: 'aws',
  capabilities: { start_stop: true, keep_storage: false, plans: true, zones: true, price: false, root: false },

  validateConfig(config) {
    const problems = cloudConfigProblems('aws', config as Record<string, unknown>, ['region', 'plan', 'image', 'ssh_cidr'])
    if (config.region !== undefined && !/^[a-z]{2}(-[a-z]+)+-\d$/.test(String(config.region)))
      problems.push('providers.aws.region is not a region name (such as eu-central-1)')
    if (config.ssh_cidr !== undefined && !/^\d{1,3}(\.\d{1,3}){3}\/\d{1,2}$/.test(String(config.ssh_cidr)))
      problems.push('providers.aws.ssh_cidr must be an IPv4 CIDR such as 203.0.113.0/24')
    for (const key of ['plan', 'image', 'zone'] as const) {
      if (config[key] !== undefined && !/^[A-Za-z0-9][A-Za-z0-9._/()*-]{0,127}$/.test(String(config[key])))
        problems.push(`providers.aws.${key} is not an EC2 name`)
    }
    return problems
  },

  validateSpec(spec, config) {
    const problems: string[] = []
    if (!planOf(spec, config)) problems.push('an aws server needs a plan (instance type such as t3.micro), or providers.aws.plan')
    if (!imageOf(spec, config)) problems.push('an aws server needs an image (AMI id or name), or providers.aws.image')
    if (spec.address) problems.push('aws assigns addresses itself: remove address')
    return problems
  },

  async checkSpecs(ctx, specs) {
    await checkChoices(ctx, await ec2(ctx), specs)
  },

  async list(ctx, records) {
    if (!records.length) return records
    const api = await ec2(ctx)
    const instances = await instancesOf(api, tagFilters(workspaceId(ctx.workspace)))
    return records.map((record) => {
      const id = ctx.getData(record.name)?.instance_id
      const instance =
        instances.find((i) => i.InstanceId === id) ?? instances.find((i) => i.Tags?.some((t) => t.Key === IDENTITY.server && t.Value === record.name))
      return instance ? recordOf(record, instance) : { ...record, status: 'unknown' as const }
    })
  },

  async create(ctx, spec, record, options?: CreateOptions) {
    const api = await ec2(ctx)
    const wsid = workspaceId(ctx.workspace)
    let instance = await findInstance(ctx, api, spec.name)
    if (instance) {
      ctx.log.info(`aws: ${spec.name} already exists (${instance.InstanceId}, tagged by this workspace): adopting it`)
    } else {
      const plan = planOf(spec, ctx.config) as string
      const zone = spec.zone ?? ctx.config.zone ?? null
      await checkChoices(ctx, api, [spec])
      const imageId = await resolveImage(api, imageOf(spec, ctx.config) as string, spec.name)
      const keyName = await keyPairName(ctx, api, wsid)
      const groupId = await securityGroupId(ctx, api, wsid, spec.ssh.port)
      const tags = [...Object.entries(spec.labels).map(([Key, Value]) => ({ Key, Value })), ...identityTags(wsid, spec.name), { Key: 'Name', Value: spec.name }]
      const run = await api.send<{ Instances?: Instance[] }>(
        'RunInstances',
        new api.sdk.RunInstancesCommand({
          ImageId: imageId,
          InstanceType: plan as never,
          MinCount: 1,
          MaxCount: 1,
          KeyName: keyName,
          SecurityGroupIds: [groupId],
          ...(zone ? { Placement: { AvailabilityZone: zone } } : {}),
          ...(options?.userData ? { UserData: Buffer.from(options.userData).toString('base64') } : {}),
          TagSpecifications: [
            { ResourceType: 'instance', Tags: tags },
            { ResourceType: 'volume', Tags: identityTags(wsid, spec.name) },
          ],
          // The SDK repeats a request that timed out; the same token makes EC2 start one instance only.
          ClientToken: createHash('sha256').update(`${wsid}/${spec.name}/${record.created_at}`).digest('hex').slice(0, 64),
        }),
      )
      instance = run.Instances?.[0]
      if (!instance?.InstanceId) throw failedError(`aws RunInstances returned no instance for ${spec.name}`)
      await ctx.save(recordOf(record, instance), { instance_id: instance.InstanceId })
    }
    const id = instance.InstanceId as string
    const running = await waitForState(ctx, api, id, ['running'], `aws instance ${spec.name} to run`)
    const next = recordOf(record, running)
    if ((ctx.config.ready ?? cloudDefaults.ready) === 'ssh') await waitForSsh(ctx, spec.name, next.ip_address, spec.ssh.port)
    await ctx.save(next, { instance_id: id })
    return next
  },

  async delete(ctx, record) {
    const api = await ec2(ctx)
    const wsid = workspaceId(ctx.workspace)
    const instance = await findInstance(ctx, api, record.name)
    if (instance?.InstanceId) {
      await api.send('TerminateInstances', new api.sdk.TerminateInstancesCommand({ InstanceIds: [instance.InstanceId] }))
      await waitForState(ctx, api, instance.InstanceId, ['terminated'], `aws instance ${record.name} to terminate`)
    }
    if (record.ip_address) await forgetHostKey(ctx.workspace, record.ip_address, record.ssh.port)
    // The key pair and security groups go with the workspace's last instance.
    const left = (await instancesOf(api, tagFilters(wsid))).filter((i) => i.InstanceId !== instance?.InstanceId)
    if (left.length) return
    await api.send('DeleteKeyPair', new api.sdk.DeleteKeyPairCommand({ KeyName: `prov-${wsid}` }))
    const groups = await api.send<{ SecurityGroups?: { GroupId?: string }[] }>(
      'DescribeSecurityGroups',
      new api.sdk.DescribeSecurityGroupsCommand({ Filters: [{ Name: `tag:${IDENTITY.workspace}`, Values: [wsid] }] }),
    )
    for (const group of groups.SecurityGroups ?? []) {
      if (group.GroupId) await api.send('DeleteSecurityGroup', new api.sdk.DeleteSecurityGroupCommand({ GroupId: group.GroupId }))
    }
  },

  async start(ctx, record) {
    const api = await ec2(ctx)
    const instance = await requireInstance(ctx, api, record)
    const id = instance.InstanceId as string
    if (instance.State?.Name !== 'running') await api.send('StartInstances', new api.sdk.StartInstancesCommand({ InstanceIds: [id] }))
    const next = recordOf(record, await waitForState(ctx, api, id, ['running'], `aws instance ${record.name} to start`))
    await ctx.save(next)
    return next
  },

  async stop(ctx, record) {
    const api = await ec2(ctx)
    const instance = await requireInstance(ctx, api, record)
    const id = instance.InstanceId as string
    if (instance.State?.Name !== 'stopped') await api.send('StopInstances', new api.sdk.StopInstancesCommand({ InstanceIds: [id] }))
    const next = recordOf(record, await waitForState(ctx, api, id, ['stopped'], `aws instance ${record.name} to stop`))
    await ctx.save(next)
    return next
  },

  async info(ctx, record) {
    const api = await ec2(ctx)
    const instance = await requireInstance(ctx, api, record)
    return {
      instance_id: instance.InstanceId,
      state: instance.State?.Name,
      instance_type: instance.InstanceType,
      availability_zone: instance.Placement?.AvailabilityZone,
      image_id: instance.ImageId,
      public_ip: instance.PublicIpAddress ?? null,
      private_ip: instance.PrivateIpAddress ?? null,
      key_name: instance.KeyName,
      security_groups: (instance.SecurityGroups ?? []).map((g) => g.GroupName),
      tags: Object.fromEntries((instance.Tags ?? []).map((t) => [t.Key, t.Value])),
    }
  },

  async plans(ctx) {
    const api = await ec2(ctx)
    return (await instanceTypes(api))
      .filter((t) => t.InstanceType)
      .map(
        (t): ProviderPlan => ({
          name: t.InstanceType as string,
          cores: t.VCpuInfo?.DefaultVCpus ?? null,
          memory_mb: t.MemoryInfo?.SizeInMiB ?? null,
          disk_gb: null,
        }),
      )
      .sort((a, b) => a.name.localeCompare(b.name))
  },

  async zones(ctx) {
    return zoneNames(await ec2(ctx))
  },

  async price() {
    // EC2 has no price call; the Pricing API is a separate service and account setting.
    return null
  },
}

export default awsProvider
