import { createHash } from 'node:crypto'
import { createRequire } from 'node:module'
import type { EC2Client, Filter, Instance, RunInstancesCommandInput, SecurityGroup } from '@aws-sdk/client-ec2'
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
  usageError,
} from '@prov/core'
import {
  type CloudProviderConfig,
  checkedAddress,
  cloudConfigProblems,
  cloudDefaults,
  IDENTITY,
  listedStatus,
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
  /** Whose AMIs an image name may pick (`self`, `amazon`, `aws-marketplace` or account ids). */
  image_owners?: string[]
}

type Ctx = ProviderContext<AwsConfig>
const DEFAULT_REGION = 'us-east-1'
/** Who may reach SSH when providers.aws.ssh_cidr is not set. */
const DEFAULT_SSH_CIDR = '0.0.0.0/0'
/** EC2 refuses user data over 16 KiB (before base64). */
const MAX_USER_DATA = 16 * 1024
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
  /** The endpoint and region the client talks to (keys the per-process caches). */
  endpoint: string
  sdk: typeof import('@aws-sdk/client-ec2')
  /** Sends with the SDK's retries (backoff on throttling, 5xx and network errors). */
  send<T>(what: string, command: unknown): Promise<T>
  /** Sends exactly once: for a call whose repetition the caller decides on. */
  sendOnce<T>(what: string, command: unknown): Promise<T>
}

/** One client per configuration and process: concurrent jobs share its connections. */
const clients = new Map<string, Promise<Ec2>>()

function ec2(ctx: Ctx): Promise<Ec2> {
  const problems = awsProvider.validateConfig(ctx.config)
  if (problems.length) return Promise.reject(configError(`provider 'aws' is misconfigured: ${problems[0]}`, { hint: 'see docs/providers.md#aws' }))
  const key = JSON.stringify(ctx.config)
  let pending = clients.get(key)
  if (!pending) {
    pending = makeEc2(ctx)
    clients.set(key, pending)
    pending.catch(() => clients.delete(key))
  }
  return pending
}

async function makeEc2(ctx: Ctx): Promise<Ec2> {
  // The SDK warns on stderr that later releases will need a newer Node; stderr carries prov's own lines.
  if (process.env.PROV_DEBUG !== '1') process.env.AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED ??= 'true'
  // Required, not imported: the SDK is one 2 MB CommonJS file, and Node's ESM loader parses it
  // twice more before running it (to detect its module format and to list its exports), which
  // costs about half a second of every command that talks to EC2.
  const sdk = createRequire(import.meta.url)('@aws-sdk/client-ec2') as typeof import('@aws-sdk/client-ec2')
  const creds = await credentials(ctx)
  const settings = {
    region: ctx.config.region ?? DEFAULT_REGION,
    ...(ctx.config.endpoint ? { endpoint: ctx.config.endpoint } : {}),
    ...(creds ? { credentials: creds } : {}),
    requestHandler: { requestTimeout: (ctx.config.request_timeout ?? cloudDefaults.request_timeout) * 1000 },
  }
  const client = new sdk.EC2Client({ ...settings, maxAttempts: (ctx.config.retries ?? cloudDefaults.retries) + 1 })
  const single = new sdk.EC2Client({ ...settings, maxAttempts: 1 })
  const via =
    (target: EC2Client) =>
    async <T>(what: string, command: unknown): Promise<T> => {
      try {
        return (await target.send(command as Parameters<EC2Client['send']>[0])) as T
      } catch (error) {
        throw awsError(what, error, ctx)
      }
    }
  return { endpoint: `${ctx.config.endpoint ?? ''}@${settings.region}`, sdk, send: via(client), sendOnce: via(single) }
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

/** EC2's own error code of an error `awsError` made (`InvalidKeyPair.Duplicate`...), else ''. */
const faultCode = (error: unknown): string => (error instanceof ProvError && typeof error.details?.aws_code === 'string' ? error.details.aws_code : '')

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
  const options = { location: where, cause: error, details: { aws_code: code } }
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
  const wsid = workspaceId(ctx.workspace)
  const id = ctx.getData(name)?.instance_id
  if (typeof id === 'string') {
    try {
      const [instance] = await instancesOf(api, [], [id])
      if (instance && instance.State?.Name !== 'terminated' && isOurs(instance, wsid, name)) return instance
    } catch (error) {
      if (!(error instanceof ProvError && error.code === ExitCode.NOT_FOUND)) throw error
    }
  }
  return (await instancesOf(api, tagFilters(wsid, name))).find((instance) => isOurs(instance, wsid, name))
}

/**
 * Whether an instance carries this workspace's identity tags (and the server's name, when given),
 * checked again after the API's filter: an endpoint that ignored the filter, or a state file that
 * names another instance, cannot make prov adopt, stop or terminate someone else's machine.
 */
function isOurs(instance: Instance, wsid: string, name?: string): boolean {
  const tags = new Map((instance.Tags ?? []).map((t) => [t.Key, t.Value]))
  return tags.get(IDENTITY.workspace) === wsid && (name === undefined || tags.get(IDENTITY.server) === name)
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

/**
 * What one process asks EC2 once: the catalog (instance types, zones, images) and the shared
 * per-workspace resources (key pair, security group), so concurrent creates of one apply wait for
 * the same call instead of repeating it or racing to make two. A failed call is asked again.
 */
const shared = new Map<string, Promise<unknown>>()
function once<T>(key: string, make: () => Promise<T>): Promise<T> {
  let pending = shared.get(key) as Promise<T> | undefined
  if (!pending) {
    pending = make()
    shared.set(key, pending)
    pending.catch(() => shared.delete(key))
  }
  return pending
}

/** True for EC2's "that name is taken" answers (another process made it first). */
const isDuplicate = (error: unknown) => faultCode(error).endsWith('.Duplicate')

/** The workspace key as an EC2 key pair `prov-<id>`: imported once, reused after. */
function keyPairName(ctx: Ctx, api: Ec2, wsid: string): Promise<string> {
  const name = `prov-${wsid}`
  return once(`${api.endpoint}\0key\0${name}`, async () => {
    const found = await api.send<{ KeyPairs?: unknown[] }>(
      'DescribeKeyPairs',
      new api.sdk.DescribeKeyPairsCommand({ Filters: [{ Name: 'key-name', Values: [name] }] }),
    )
    if (found.KeyPairs?.length) return name
    const key = await ensureWorkspaceKey(ctx.workspace)
    try {
      await api.send(
        'ImportKeyPair',
        new api.sdk.ImportKeyPairCommand({
          KeyName: name,
          PublicKeyMaterial: Buffer.from(key.publicKey.trim()),
          TagSpecifications: [{ ResourceType: 'key-pair', Tags: identityTags(wsid) }],
        }),
      )
    } catch (error) {
      if (!isDuplicate(error)) throw error
    }
    return name
  })
}

/**
 * The security group `prov-<id>-ssh` letting `ssh_cidr` reach the SSH port, made once per
 * workspace and port. Its rule is checked each time: a create interrupted between making the
 * group and opening the port, or a changed ssh_cidr, is repaired rather than leaving SSH shut.
 */
function securityGroupId(ctx: Ctx, api: Ec2, wsid: string, port: number): Promise<string> {
  const name = `prov-${wsid}-ssh${port === 22 ? '' : `-${port}`}`
  const cidr = ctx.config.ssh_cidr ?? DEFAULT_SSH_CIDR
  return once(`${api.endpoint}\0sg\0${name}\0${cidr}`, async () => {
    const describe = () =>
      api.send<{ SecurityGroups?: SecurityGroup[] }>(
        'DescribeSecurityGroups',
        new api.sdk.DescribeSecurityGroupsCommand({ Filters: [{ Name: 'group-name', Values: [name] }] }),
      )
    let group = (await describe()).SecurityGroups?.[0]
    if (!group?.GroupId) {
      try {
        await api.send(
          'CreateSecurityGroup',
          new api.sdk.CreateSecurityGroupCommand({
            GroupName: name,
            Description: `prov workspace ${wsid}: SSH on port ${port}`,
            TagSpecifications: [{ ResourceType: 'security-group', Tags: identityTags(wsid) }],
          }),
        )
      } catch (error) {
        if (!isDuplicate(error)) throw error
      }
      group = (await describe()).SecurityGroups?.[0]
      if (!group?.GroupId) throw failedError(`aws made security group ${name} but does not list it`, { hint: 'retry: EC2 may be slow to show it' })
    }
    const id = group.GroupId
    const rule = (group.IpPermissions ?? []).find((p) => p.IpProtocol === 'tcp' && p.FromPort === port && p.ToPort === port)
    const ranges = (rule?.IpRanges ?? []).map((r) => r.CidrIp)
    if (!ranges.includes(cidr)) {
      try {
        await api.send(
          'AuthorizeSecurityGroupIngress',
          new api.sdk.AuthorizeSecurityGroupIngressCommand({
            GroupId: id,
            IpPermissions: [{ IpProtocol: 'tcp', FromPort: port, ToPort: port, IpRanges: [{ CidrIp: cidr, Description: 'prov ssh' }] }],
          }),
        )
      } catch (error) {
        if (!isDuplicate(error)) throw error
      }
    }
    // Only ssh_cidr may reach SSH: ranges an earlier ssh_cidr opened are closed.
    const stale = ranges.filter((r): r is string => !!r && r !== cidr)
    if (stale.length) {
      await api.send(
        'RevokeSecurityGroupIngress',
        new api.sdk.RevokeSecurityGroupIngressCommand({
          GroupId: id,
          IpPermissions: [{ IpProtocol: 'tcp', FromPort: port, ToPort: port, IpRanges: stale.map((CidrIp) => ({ CidrIp })) }],
        }),
      )
    }
    return id
  })
}

/**
 * The key pair and security groups prov made for the workspace go with its last server: no other
 * aws create in progress (recorded `creating` before it starts) and no live tagged instance. A
 * group something else still uses is left, with a warning, rather than failing the delete; one a
 * concurrent delete removed first is fine.
 */
async function removeSharedWhenUnused(ctx: Ctx, api: Ec2, wsid: string, name: string, instanceId?: string): Promise<void> {
  if (ctx.allServers().some((r) => r.provider === 'aws' && r.name !== name && r.status === 'creating')) return
  const left = (await instancesOf(api, tagFilters(wsid))).filter((i) => i.InstanceId !== instanceId && isOurs(i, wsid))
  if (left.length) return
  for (const key of shared.keys()) if (key.startsWith(`${api.endpoint}\0`)) shared.delete(key)
  const ours = [{ Name: `tag:${IDENTITY.workspace}`, Values: [wsid] }]
  const keys = await api.send<{ KeyPairs?: { KeyPairId?: string; KeyName?: string }[] }>(
    'DescribeKeyPairs',
    new api.sdk.DescribeKeyPairsCommand({ Filters: ours }),
  )
  for (const key of keys.KeyPairs ?? []) {
    if (key.KeyName) await api.send('DeleteKeyPair', new api.sdk.DeleteKeyPairCommand({ KeyName: key.KeyName }))
  }
  const groups = await api.send<{ SecurityGroups?: SecurityGroup[] }>('DescribeSecurityGroups', new api.sdk.DescribeSecurityGroupsCommand({ Filters: ours }))
  for (const group of groups.SecurityGroups ?? []) {
    if (!group.GroupId) continue
    try {
      await api.send('DeleteSecurityGroup', new api.sdk.DeleteSecurityGroupCommand({ GroupId: group.GroupId }))
    } catch (error) {
      if (error instanceof ProvError && error.code === ExitCode.NOT_FOUND) continue
      if (faultCode(error) !== 'DependencyViolation') throw error
      ctx.log.warn(`aws: security group ${group.GroupName ?? group.GroupId} is still in use outside prov: left in place`)
    }
  }
}

/**
 * RunInstances, repeated by prov rather than by the SDK: after a 5xx, a throttle or a lost answer
 * EC2 may have started the instance, so before asking again prov looks for it by its tags and
 * adopts what it finds. The ClientToken covers an instance EC2 does not list yet.
 */
async function runInstance(ctx: Ctx, api: Ec2, name: string, input: RunInstancesCommandInput): Promise<Instance> {
  const retries = ctx.config.retries ?? cloudDefaults.retries
  for (let attempt = 0; ; attempt++) {
    try {
      const run = await api.sendOnce<{ Instances?: Instance[] }>('RunInstances', new api.sdk.RunInstancesCommand(input))
      const instance = run.Instances?.[0]
      if (!instance?.InstanceId) throw failedError(`aws RunInstances returned no instance for ${name}`)
      return instance
    } catch (error) {
      // Refusals (auth, validation, quota) are final; what may have acted is failed (1) without a 4xx kind.
      const unsure = error instanceof ProvError && error.code === ExitCode.FAILED && !QUOTA_CODES.has(faultCode(error))
      if (!unsure || attempt >= retries) throw error
      const made = await findInstance(ctx, api, name)
      if (made) return made
      await new Promise((resolve) => setTimeout(resolve, Math.min(500 * 2 ** attempt, 20_000)))
    }
  }
}

/** Checks instance type, zone and image of servers against what EC2 offers: exit 2 listing the valid ones. */
async function checkChoices(ctx: Ctx, api: Ec2, specs: ServerSpec[]): Promise<void> {
  const known = await knownTypes(api, [...new Set(specs.map((spec) => planOf(spec, ctx.config) as string))])
  const zones = specs.some((s) => s.zone ?? ctx.config.zone) ? (await zoneNames(api)).map((z) => z.name) : []
  for (const spec of specs) {
    const plan = planOf(spec, ctx.config) as string
    if (!known.has(plan)) {
      const all = (await instanceTypes(api)).map((t) => t.InstanceType ?? '').filter(Boolean)
      requireChoice('aws', 'instance type (plan)', plan, all.sort(), spec.name)
    }
    const zone = spec.zone ?? ctx.config.zone
    if (zone) requireChoice('aws', 'availability zone (zone)', zone, zones, spec.name)
    await resolveImage(ctx, api, imageOf(spec, ctx.config) as string, spec.name)
  }
}

/**
 * Owners whose AMIs a name may pick when providers.aws.image_owners is not set: this account,
 * Amazon, Debian and Canonical. A name alone would also match anyone's public AMI of that name.
 */
const DEFAULT_IMAGE_OWNERS = ['self', 'amazon', '136693071363', '099720109477']

/**
 * An AMI id as it is (when EC2 knows it), else the newest available AMI of that name (wildcards
 * allowed) among `image_owners`; an unknown one exits 2 listing some that are there.
 */
function resolveImage(ctx: Ctx, api: Ec2, image: string, server?: string): Promise<string> {
  const owners = ctx.config.image_owners ?? DEFAULT_IMAGE_OWNERS
  return once(`${api.endpoint}\0image\0${owners.join(',')}\0${image}`, () => findImage(api, image, owners, server))
}

async function findImage(api: Ec2, image: string, owners: string[], server?: string): Promise<string> {
  const byId = /^ami-[0-9a-f]+$/.test(image)
  type Images = { Images?: { ImageId?: string; Name?: string; CreationDate?: string }[] }
  let found: Images = {}
  try {
    found = await api.send<Images>(
      'DescribeImages',
      new api.sdk.DescribeImagesCommand(
        byId
          ? { ImageIds: [image] }
          : {
              Owners: owners,
              Filters: [
                { Name: 'name', Values: [image] },
                { Name: 'state', Values: ['available'] },
              ],
            },
      ),
    )
  } catch (error) {
    // An id EC2 does not know is a NotFound (or malformed) answer: it is listed below like a name.
    if (!(error instanceof ProvError && (error.code === ExitCode.NOT_FOUND || error.code === ExitCode.USAGE))) throw error
  }
  const images = (found.Images ?? []).sort((a, b) => String(b.CreationDate).localeCompare(String(a.CreationDate)))
  if (images[0]?.ImageId) return images[0].ImageId
  const some = await api.send<Images>('DescribeImages', new api.sdk.DescribeImagesCommand({ Owners: owners, MaxResults: 100 }))
  requireChoice(
    'aws',
    byId ? 'image' : `image named (owners ${owners.join(', ')})`,
    image,
    (some.Images ?? [])
      .map((i) => (byId ? i.ImageId : i.Name) ?? '')
      .filter(Boolean)
      .sort(),
    server,
  )
  return image
}

type InstanceTypeInfo = { InstanceType?: string; VCpuInfo?: { DefaultVCpus?: number }; MemoryInfo?: { SizeInMiB?: number } }

/**
 * Which of `wanted` EC2 offers, asking for those types only: the whole catalog is over a thousand
 * types (one call of several seconds on a slow endpoint), needed only to list the valid ones
 * when a type is unknown.
 */
function knownTypes(api: Ec2, wanted: string[]): Promise<Set<string>> {
  const sorted = [...wanted].sort()
  return once(`${api.endpoint}\0known\0${sorted.join(',')}`, async () => {
    const found = new Set<string>()
    try {
      // EC2 takes at most 100 names per call.
      for (let i = 0; i < sorted.length; i += 100) {
        const page = await api.send<{ InstanceTypes?: InstanceTypeInfo[] }>(
          'DescribeInstanceTypes',
          new api.sdk.DescribeInstanceTypesCommand({ InstanceTypes: sorted.slice(i, i + 100) as never }),
        )
        for (const type of page.InstanceTypes ?? []) if (type.InstanceType) found.add(type.InstanceType)
      }
    } catch (error) {
      // An unknown name fails the whole call (InvalidInstanceType): ask for the catalog instead.
      if (!(error instanceof ProvError && error.code === ExitCode.USAGE)) throw error
      for (const type of await instanceTypes(api)) if (type.InstanceType && sorted.includes(type.InstanceType)) found.add(type.InstanceType)
    }
    return found
  })
}

function instanceTypes(api: Ec2): Promise<InstanceTypeInfo[]> {
  return once(`${api.endpoint}\0types`, () => describeInstanceTypes(api))
}

async function describeInstanceTypes(api: Ec2): Promise<InstanceTypeInfo[]> {
  const out: InstanceTypeInfo[] = []
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

function zoneNames(api: Ec2): Promise<{ name: string; description?: string }[]> {
  return once(`${api.endpoint}\0zones`, () => describeZones(api))
}

async function describeZones(api: Ec2): Promise<{ name: string; description?: string }[]> {
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
    const problems = cloudConfigProblems('aws', config as Record<string, unknown>, ['region', 'plan', 'image', 'ssh_cidr', 'image_owners'])
    const owners = config.image_owners as unknown
    if (
      owners !== undefined &&
      !(
        Array.isArray(owners) &&
        owners.length > 0 &&
        owners.length <= 20 &&
        owners.every((o) => typeof o === 'string' && /^(self|amazon|aws-marketplace|\d{12})$/.test(o))
      )
    )
      problems.push('providers.aws.image_owners must list self, amazon, aws-marketplace or 12-digit account ids')
    if (config.region !== undefined && !/^[a-z]{2}(-[a-z]+)+-\d$/.test(String(config.region)))
      problems.push('providers.aws.region is not a region name (such as eu-central-1)')
    if (config.ssh_cidr !== undefined && !/^\d{1,3}(\.\d{1,3}){3}\/\d{1,2}$/.test(String(config.ssh_cidr)))
      problems.push('providers.aws.ssh_cidr must be an IPv4 CIDR such as 203.0.113.0/24')
    for (const key of ['plan', 'image', 'zone'] as const) {
      if (config[key] !== undefined && !/^[A-Za-z0-9][A-Za-z0-9._/()-]{0,127}$/.test(String(config[key])))
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
    const wsid = workspaceId(ctx.workspace)
    const instances = (await instancesOf(api, tagFilters(wsid))).filter((instance) => isOurs(instance, wsid))
    return records.map((record) => {
      const id = ctx.getData(record.name)?.instance_id
      const instance = instances.find((i) => i.InstanceId === id && isOurs(i, wsid, record.name)) ?? instances.find((i) => isOurs(i, wsid, record.name))
      if (!instance) return { ...record, status: 'unknown' as const }
      const live = recordOf(record, instance)
      return { ...live, status: listedStatus(record, live.status) }
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
      const userDataBytes = Buffer.byteLength(options?.userData ?? '')
      if (userDataBytes > MAX_USER_DATA) {
        throw usageError(`server '${spec.name}': its first-boot document is ${userDataBytes} bytes; EC2 takes at most ${MAX_USER_DATA} bytes of user data`, {
          hint: 'move large files out of provision: (fetch them from a URL, or install them with a taskserv)',
        })
      }
      await checkChoices(ctx, api, [spec])
      const imageId = await resolveImage(ctx, api, imageOf(spec, ctx.config) as string, spec.name)
      const keyName = await keyPairName(ctx, api, wsid)
      const groupId = await securityGroupId(ctx, api, wsid, spec.ssh.port)
      const tags = [...Object.entries(spec.labels).map(([Key, Value]) => ({ Key, Value })), ...identityTags(wsid, spec.name), { Key: 'Name', Value: spec.name }]
      instance = await runInstance(ctx, api, spec.name, {
        ImageId: imageId,
        InstanceType: plan as RunInstancesCommandInput['InstanceType'],
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
        // A repeated request with the same token starts one instance only (EC2's idempotency).
        ClientToken: createHash('sha256').update(`${wsid}/${spec.name}/${record.created_at}`).digest('hex').slice(0, 64),
      })
      // Still `creating` until ready: a create killed from here on is finished by the next plan.
      await ctx.save({ ...recordOf(record, instance), status: 'creating' }, { instance_id: instance.InstanceId })
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
    await removeSharedWhenUnused(ctx, api, wsid, record.name, instance?.InstanceId)
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
