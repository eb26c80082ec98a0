import { configError, ExitCode, failedError, isSecretRef, notFoundError, ProvError, type ServerRecord, type ServerStatus } from '@prov/core'
import { CloudApi } from './cloud/api'
import {
  type CloudProviderConfig,
  carriesIdentity,
  checkedAddress,
  cloudConfigProblems,
  cloudCredential,
  cloudDefaults,
  credentialFromEnv,
  IDENTITY,
  pollUntil,
  workspaceId,
} from './cloud/common'
import type { ProviderContext } from './types'

// The upcloud provider's access to the API: credentials, the client, and finding the server
// prov made for a name (by stored UUID or by its identity labels).

/** `providers.upcloud` (docs/providers.md#upcloud). */
export interface UpcloudConfig extends CloudProviderConfig {
  /** Plan of servers that name none (absent: the API's default, 1 core / 1 GiB). */
  plan?: string
  /** Template (UUID or exact title) of servers that name no image. */
  image?: string
  /** Size in GB of the system disk of servers that give no disk_gb. */
  disk_gb?: number
  /** Storage tier of the system disk. */
  storage_tier?: 'maxiops' | 'standard' | 'hdd'
}

const PUBLIC_ENDPOINT = 'https://api.upcloud.com/1.3'
const TOKEN_ENV = 'UPCLOUD_TOKEN'
const USERNAME_ENV = 'UPCLOUD_USERNAME'
const PASSWORD_ENV = 'UPCLOUD_PASSWORD'
/** Seconds UpCloud gives the OS to shut down on a soft stop before it is powered off. */
const SOFT_STOP_TIMEOUT = 300
export const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/
export type Ctx = ProviderContext<UpcloudConfig>

/** The parts of UpCloud's server object prov reads. */
export interface UServer {
  uuid: string
  title?: string
  state: string
  zone?: string
  plan?: string
  core_number?: string | number
  memory_amount?: string | number
  labels?: { label?: { key: string; value: string }[] }
  ip_addresses?: { ip_address?: { access?: string; family?: string; address?: string }[] }
  storage_devices?: { storage_device?: { storage: string; storage_size?: number; storage_title?: string; type?: string }[] }
}
export interface UPlan {
  name: string
  core_number: number
  memory_amount: number
  storage_size: number
  storage_tier?: string
}

/** Authorization: an API token (secret store or UPCLOUD_TOKEN), else UPCLOUD_USERNAME/UPCLOUD_PASSWORD. */
async function authorization(ctx: Ctx): Promise<{ header: string; hint: string }> {
  if (ctx.config.token && isSecretRef(ctx.config.token)) {
    return { header: `Bearer ${await cloudCredential(ctx, 'upcloud', TOKEN_ENV)}`, hint: `secret '${ctx.config.token.secret}'` }
  }
  const tokenEnv = ctx.config.credential_env ?? TOKEN_ENV
  const token = credentialFromEnv(tokenEnv)
  if (token) return { header: `Bearer ${token}`, hint: tokenEnv }
  const username = credentialFromEnv(USERNAME_ENV)
  const password = credentialFromEnv(PASSWORD_ENV)
  if (!username || !password) {
    const missing = [...(username ? [] : [USERNAME_ENV]), ...(password ? [] : [PASSWORD_ENV])]
    throw configError(`no upcloud API credential: ${missing.join(' and ')} ${missing.length > 1 ? 'are' : 'is'} not set (nor ${tokenEnv})`, {
      location: 'providers.upcloud',
      hint: `export ${USERNAME_ENV}=... and ${PASSWORD_ENV}=... (an API user), or ${tokenEnv}=..., or set providers.upcloud.token: {secret: NAME}`,
    })
  }
  return { header: `Basic ${Buffer.from(`${username}:${password}`).toString('base64')}`, hint: `${USERNAME_ENV}/${PASSWORD_ENV}` }
}

/** What is wrong in `providers.upcloud` (empty when nothing is). */
export function upcloudConfigProblems(config: UpcloudConfig): string[] {
  const problems = cloudConfigProblems('upcloud', config as Record<string, unknown>, ['plan', 'image', 'disk_gb', 'storage_tier'])
  for (const key of ['plan', 'zone'] as const) {
    if (config[key] !== undefined && !/^[A-Za-z0-9][A-Za-z0-9._-]{0,62}$/.test(String(config[key])))
      problems.push(`providers.upcloud.${key} is not an UpCloud name`)
  }
  if (
    config.image !== undefined &&
    !(typeof config.image === 'string' && config.image.length > 0 && config.image.length <= 255 && !/[\0-\x1f]/.test(config.image))
  )
    problems.push('providers.upcloud.image must be a template UUID or title')
  if (config.disk_gb !== undefined && !(Number.isInteger(config.disk_gb) && config.disk_gb >= 10 && config.disk_gb <= 4096))
    problems.push('providers.upcloud.disk_gb must be 10-4096')
  if (config.storage_tier !== undefined && !['maxiops', 'standard', 'hdd'].includes(config.storage_tier))
    problems.push('providers.upcloud.storage_tier must be maxiops, standard or hdd')
  return problems
}

export async function api(ctx: Ctx): Promise<CloudApi> {
  const problems = upcloudConfigProblems(ctx.config)
  if (problems.length) throw configError(`provider 'upcloud' is misconfigured: ${problems[0]}`, { hint: 'see docs/providers.md#upcloud' })
  const auth = await authorization(ctx)
  return new CloudApi({
    provider: 'upcloud',
    endpoint: (ctx.config.endpoint ?? PUBLIC_ENDPOINT).replace(/\/+$/, ''),
    headers: { authorization: auth.header },
    requestTimeout: ctx.config.request_timeout ?? cloudDefaults.request_timeout,
    retries: ctx.config.retries ?? cloudDefaults.retries,
    credentialHint: auth.hint,
    faultOf: (body) => {
      const error = (body as { error?: { error_code?: unknown; error_message?: unknown } } | undefined)?.error
      return {
        code: typeof error?.error_code === 'string' ? error.error_code : undefined,
        message: typeof error?.error_message === 'string' ? error.error_message : undefined,
      }
    },
    // UpCloud's account limits (API 1.3 error codes) and an account without credit.
    quotaCodes: [
      'CORES_LIMIT_REACHED',
      'MEMORY_LIMIT_REACHED',
      'SERVERS_LIMIT_REACHED',
      'STORAGE_LIMIT_REACHED',
      'IP_ADDRESS_LIMIT_REACHED',
      'INSUFFICIENT_CREDITS',
      'TRIAL_PLAN',
    ],
  })
}

/** UpCloud's server states in prov's words. */
function statusOf(state: string): ServerStatus {
  if (state === 'started') return 'running'
  if (state === 'stopped') return 'stopped'
  if (state === 'maintenance') return 'creating'
  if (state === 'error') return 'error'
  return 'unknown'
}

export function publicIpv4(server: UServer): string {
  const found = server.ip_addresses?.ip_address?.find((a) => a.access === 'public' && a.family === 'IPv4')
  return checkedAddress('upcloud', found?.address)
}

export function labelsOf(server: UServer): Record<string, string> {
  const labels = server.labels?.label
  return Object.fromEntries((Array.isArray(labels) ? labels : []).filter((l) => typeof l?.key === 'string').map((l) => [l.key, l.value]))
}

function systemDiskGb(server: UServer): number | undefined {
  return server.storage_devices?.storage_device?.find((d) => d.type === undefined || d.type === 'disk')?.storage_size
}

export function recordOf(record: ServerRecord, server: UServer): ServerRecord {
  const cores = Number(server.core_number)
  const memory = Number(server.memory_amount)
  return {
    ...record,
    status: statusOf(server.state),
    ip_address: publicIpv4(server) || record.ip_address,
    cores: Number.isFinite(cores) && cores > 0 ? cores : record.cores,
    memory_mb: Number.isFinite(memory) && memory > 0 ? memory : record.memory_mb,
    disk_gb: systemDiskGb(server) ?? record.disk_gb,
    plan: server.plan ?? record.plan,
    zone: server.zone ?? record.zone,
  }
}

/** Does the server carry this workspace's identity (and this name, when given)? */
function ours(ctx: Ctx, server: UServer, name?: string): boolean {
  return carriesIdentity(labelsOf(server), workspaceId(ctx.workspace), name)
}

/** One server; its UUID goes into later request paths, so the answer must be about the server asked for. */
async function serverDetails(client: CloudApi, uuid: string): Promise<UServer> {
  const server = await client.object<UServer>('GET', `/server/${uuid}`, 'server')
  if (server.uuid !== uuid || typeof server.state !== 'string') throw client.unusable('GET', `/server/${uuid}`, `not the server ${uuid}`)
  return server
}

/**
 * The server prov made for `name`: by the UUID it stored, else by its labels (a create killed
 * before the state write). The label filter is the API's; the labels are checked again here, so
 * a server of another workspace is never claimed.
 */
export async function findServer(ctx: Ctx, client: CloudApi, name: string): Promise<UServer | undefined> {
  const uuid = ctx.getData(name)?.uuid
  if (typeof uuid === 'string' && UUID.test(uuid)) {
    try {
      return await serverDetails(client, uuid)
    } catch (error) {
      if (!(error instanceof ProvError && error.code === ExitCode.NOT_FOUND)) throw error
    }
  }
  const found = await client.items<UServer>('GET', '/server/', 'servers.server', {
    query: { label: [`${IDENTITY.workspace}=${workspaceId(ctx.workspace)}`, `${IDENTITY.server}=${name}`] },
  })
  const match = found.find((s) => ours(ctx, s, name) && UUID.test(s.uuid))
  return match ? serverDetails(client, match.uuid) : undefined
}

export async function requireServer(ctx: Ctx, client: CloudApi, record: ServerRecord): Promise<UServer> {
  const server = await findServer(ctx, client, record.name)
  if (!server)
    throw notFoundError(`upcloud has no server for '${record.name}'`, { hint: 'it was deleted outside prov: prov-server delete it, then create it again' })
  return server
}

/** Polls the server until `done` says so, within ready_timeout. */
export function awaitState(ctx: Ctx, client: CloudApi, uuid: string, what: string, done: (server: UServer) => boolean): Promise<UServer> {
  return pollUntil(
    what,
    async () => {
      const server = await serverDetails(client, uuid)
      if (server.state === 'error') throw failedError(`upcloud server ${uuid} is in state error while waiting for ${what}`)
      return done(server) ? server : undefined
    },
    ctx.config.ready_timeout ?? cloudDefaults.ready_timeout,
  )
}

/** Starts a server; the answer is the server, kept under the UUID asked for. */
export async function powerOn(client: CloudApi, uuid: string): Promise<UServer> {
  return powerRequest(client, uuid, 'started')
}

/**
 * The power request that moves a server towards `want`. A stop is soft: the OS shuts down, and
 * UpCloud powers the server off after the timeout.
 */
async function powerRequest(client: CloudApi, uuid: string, want: 'started' | 'stopped'): Promise<UServer> {
  const request =
    want === 'started'
      ? { verb: 'start', body: { server: {} } }
      : { verb: 'stop', body: { stop_server: { stop_type: 'soft', timeout: String(SOFT_STOP_TIMEOUT) } } }
  const { server } = await client.request<{ server?: UServer }>('POST', `/server/${uuid}/${request.verb}`, { body: request.body })
  return { state: 'unknown', ...server, uuid }
}

/** Starts or stops the server of a record and waits until the API reports `want`; saves the record. */
export async function power(ctx: Ctx, record: ServerRecord, want: 'started' | 'stopped'): Promise<ServerRecord> {
  const client = await api(ctx)
  let server = await requireServer(ctx, client, record)
  if (server.state !== want) {
    const uuid = server.uuid
    server = await powerRequest(client, uuid, want)
    if (server.state !== want)
      server = await awaitState(ctx, client, uuid, `upcloud server ${record.name} to ${want === 'started' ? 'start' : 'stop'}`, (s) => s.state === want)
  }
  const next = recordOf(record, server)
  await ctx.save(next)
  return next
}
