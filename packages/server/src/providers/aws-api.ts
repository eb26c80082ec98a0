// EC2 access of the aws provider: configuration and credentials, the SDK client, and EC2's
// errors in the contract's terms.
import { createRequire } from 'node:module'
import type { EC2Client } from '@aws-sdk/client-ec2'
import { configError, ExitCode, isSecretRef, ProvError, registerSecretValue, secretResolverFor } from '@prov/core'
import { type CloudProviderConfig, cloudConfigProblems, cloudDefaults, OnceCache } from './cloud/common'
import type { ProviderContext } from './types'

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

export type AwsCtx = ProviderContext<AwsConfig>
type Ctx = AwsCtx
const DEFAULT_REGION = 'us-east-1'

/** An IPv4 CIDR EC2 takes: four octets 0-255 and a prefix 0-32 (a shape check alone lets 999.0.0.0/8 reach the API). */
function isIpv4Cidr(value: string): boolean {
  const match = /^(\d{1,3})\.(\d{1,3})\.(\d{1,3})\.(\d{1,3})\/(\d{1,2})$/.exec(value)
  return !!match && match.slice(1, 5).every((octet) => Number(octet) <= 255) && Number(match[5]) <= 32
}

/** Problems with a `providers.aws` section (empty when fine). */
export function awsConfigProblems(config: AwsConfig): string[] {
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
  if (config.ssh_cidr !== undefined && !isIpv4Cidr(String(config.ssh_cidr))) problems.push('providers.aws.ssh_cidr must be an IPv4 CIDR such as 203.0.113.0/24')
  for (const key of ['plan', 'image', 'zone'] as const) {
    if (config[key] !== undefined && !/^[A-Za-z0-9][A-Za-z0-9._/()-]{0,127}$/.test(String(config[key])))
      problems.push(`providers.aws.${key} is not an EC2 name`)
  }
  return problems
}

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

export interface Ec2 {
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

export function ec2(ctx: Ctx): Promise<Ec2> {
  const problems = awsConfigProblems(ctx.config)
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

/**
 * What one process asks EC2 once: the catalog (instance types, zones, images) and the shared
 * per-workspace resources (key pair, security group), so concurrent creates of one apply wait for
 * the same call instead of repeating it or racing to make two. Keys start with the endpoint.
 */
export const awsCalls = new OnceCache()

/** Error codes of EC2 that mean an account limit. */
export const QUOTA_CODES = new Set([
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
export const faultCode = (error: unknown): string => (error instanceof ProvError && typeof error.details?.aws_code === 'string' ? error.details.aws_code : '')

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

/** True for EC2's "that name is taken" answers (another process made it first). */
export const isDuplicate = (error: unknown) => faultCode(error).endsWith('.Duplicate')
