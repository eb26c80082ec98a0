import { configError, ExitCode, ensureWorkspaceKey, failedError, forgetHostKey, isSecretRef, ProvError, type ServerRecord, type ServerStatus } from '@prov/core'
import { CloudApi } from './cloud/api'
import {
  type CloudProviderConfig,
  checkedAddress,
  cloudConfigProblems,
  cloudCredential,
  cloudDefaults,
  credentialFromEnv,
  IDENTITY,
  listedStatus,
  pollUntil,
  requireChoice,
  waitForSsh,
  workspaceId,
} from './cloud/common'
import type { CreateOptions, Provider, ProviderContext, ProviderPlan, ServerSpec } from './types'

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
/** The system disk when neither the server nor the config gives a size (GB). */
const DEFAULT_DISK_GB = 10
/** Seconds UpCloud gives the OS to shut down on a soft stop before it is powered off. */
const SOFT_STOP_TIMEOUT = 300
/** UpCloud bills a month as at most this many hours. */
const HOURS_PER_MONTH = 672
const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/
type Ctx = ProviderContext<UpcloudConfig>

/** The parts of UpCloud's server object prov reads. */
interface UServer {
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
interface UPlan {
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

async function api(ctx: Ctx): Promise<CloudApi> {
  const problems = upcloudProvider.validateConfig(ctx.config)
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

function publicIpv4(server: UServer): string {
  const found = server.ip_addresses?.ip_address?.find((a) => a.access === 'public' && a.family === 'IPv4')
  return checkedAddress('upcloud', found?.address)
}

function labelsOf(server: UServer): Record<string, string> {
  return Object.fromEntries((server.labels?.label ?? []).map((l) => [l.key, l.value]))
}

function systemDiskGb(server: UServer): number | undefined {
  return server.storage_devices?.storage_device?.find((d) => d.type === undefined || d.type === 'disk')?.storage_size
}

function recordOf(record: ServerRecord, server: UServer): ServerRecord {
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
  const labels = labelsOf(server)
  return labels[IDENTITY.workspace] === workspaceId(ctx.workspace) && (name === undefined || labels[IDENTITY.server] === name)
}

/** One server; its UUID goes into later request paths, so the answer must be about the server asked for. */
async function serverDetails(client: CloudApi, uuid: string): Promise<UServer> {
  const server = (await client.request<{ server?: UServer }>('GET', `/server/${uuid}`)).server
  if (!server || server.uuid !== uuid) throw failedError(`the upcloud API answered GET /server/${uuid} with another server`)
  return server
}

/**
 * The server prov made for `name`: by the UUID it stored, else by its labels (a create killed
 * before the state write). The label filter is the API's; the labels are checked again here, so
 * a server of another workspace is never claimed.
 */
async function findServer(ctx: Ctx, client: CloudApi, name: string): Promise<UServer | undefined> {
  const uuid = ctx.getData(name)?.uuid
  if (typeof uuid === 'string' && UUID.test(uuid)) {
    try {
      return await serverDetails(client, uuid)
    } catch (error) {
      if (!(error instanceof ProvError && error.code === ExitCode.NOT_FOUND)) throw error
    }
  }
  const found = await client.request<{ servers?: { server?: UServer[] } }>('GET', '/server/', {
    query: { label: [`${IDENTITY.workspace}=${workspaceId(ctx.workspace)}`, `${IDENTITY.server}=${name}`] },
  })
  const match = (found.servers?.server ?? []).find((s) => ours(ctx, s, name) && UUID.test(s.uuid))
  return match ? serverDetails(client, match.uuid) : undefined
}

async function requireServer(ctx: Ctx, client: CloudApi, record: ServerRecord): Promise<UServer> {
  const server = await findServer(ctx, client, record.name)
  if (!server)
    throw failedError(`upcloud has no server for '${record.name}'`, { hint: 'it was deleted outside prov: prov-server delete it, then create it again' })
  return server
}

/** Polls the server until `done` says so, within ready_timeout. */
function awaitState(ctx: Ctx, client: CloudApi, uuid: string, what: string, done: (server: UServer) => boolean): Promise<UServer> {
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
async function powerOn(client: CloudApi, uuid: string): Promise<UServer> {
  const { server } = await client.request<{ server?: UServer }>('POST', `/server/${uuid}/start`, { body: { server: {} } })
  return { state: 'unknown', ...server, uuid }
}

function planOf(spec: ServerSpec, config: UpcloudConfig): string | undefined {
  return spec.plan ?? config.plan
}

function imageOf(spec: ServerSpec, config: UpcloudConfig): string | undefined {
  return spec.image ?? config.image
}

function zoneOf(spec: ServerSpec, config: UpcloudConfig): string | undefined {
  return spec.zone ?? config.zone
}

async function zoneList(client: CloudApi): Promise<{ id: string; description?: string; public?: string }[]> {
  return (await client.request<{ zones?: { zone?: { id: string; description?: string; public?: string }[] } }>('GET', '/zone')).zones?.zone ?? []
}

async function planList(client: CloudApi): Promise<UPlan[]> {
  return (await client.request<{ plans?: { plan?: UPlan[] } }>('GET', '/plan')).plans?.plan ?? []
}

/**
 * A template title as a server's `image:` can name it (titles have spaces and parentheses):
 * `Ubuntu Server 24.04 LTS (Noble Numbat)` is `ubuntu-server-24.04-lts-noble-numbat`.
 */
export function templateSlug(title: string): string {
  return title
    .toLowerCase()
    .replace(/[^a-z0-9.]+/g, '-')
    .replace(/^-+|-+$/g, '')
}

/**
 * The template UUID of an image: a UUID is taken as it is (the API refuses an unknown one), a
 * name is looked up among the templates by title or its slug (exit 2 listing them when none fits).
 */
async function templateOf(client: CloudApi, image: string, server: string): Promise<string> {
  if (UUID.test(image)) return image
  const found = await client.request<{ storages?: { storage?: { uuid: string; title: string }[] } }>('GET', '/storage/template')
  const templates = found.storages?.storage ?? []
  const match = templates.find((t) => t.title === image || templateSlug(t.title) === image)
  if (!match) requireChoice('upcloud', 'template (image)', image, templates.map((t) => templateSlug(t.title)).sort(), server)
  return (match as { uuid: string }).uuid
}

/** Checks zone and plan of servers against what the API offers: exit 2 listing the valid ones. */
async function checkChoices(ctx: Ctx, client: CloudApi, specs: ServerSpec[]): Promise<void> {
  const zones = (await zoneList(client)).map((z) => z.id)
  const needPlans = specs.some((spec) => planOf(spec, ctx.config))
  const plans = needPlans ? (await planList(client)).map((p) => p.name) : []
  for (const spec of specs) {
    requireChoice('upcloud', 'zone', zoneOf(spec, ctx.config) as string, zones, spec.name)
    const plan = planOf(spec, ctx.config)
    if (plan) requireChoice('upcloud', 'plan', plan, plans, spec.name)
  }
}

/** The create request: one system disk cloned from the template, public and utility IPv4 plus IPv6. */
function createBody(spec: ServerSpec, config: UpcloudConfig, template: string, wsid: string, publicKey: string, options?: CreateOptions) {
  const plan = planOf(spec, config)
  const labels = { ...spec.labels, [IDENTITY.workspace]: wsid, [IDENTITY.server]: spec.name }
  const address = (family: string) => ({ ip_addresses: { ip_address: [{ family }] } })
  return {
    server: {
      title: spec.name,
      hostname: spec.name,
      zone: zoneOf(spec, config),
      ...(plan ? { plan } : {}),
      labels: { label: Object.entries(labels).map(([key, value]) => ({ key, value })) },
      // cloud-init reads user data from the metadata service, so it is on when there is any.
      metadata: options?.userData ? 'yes' : 'no',
      ...(options?.userData ? { user_data: options.userData } : {}),
      login_user: { username: spec.ssh.user, create_password: 'no', ssh_keys: { ssh_key: [publicKey.trim()] } },
      password_delivery: 'none',
      remote_access_enabled: 'no',
      networking: {
        interfaces: {
          interface: [
            { ...address('IPv4'), type: 'utility' },
            { ...address('IPv4'), type: 'public' },
            { ...address('IPv6'), type: 'public' },
          ],
        },
      },
      storage_devices: {
        storage_device: [
          {
            action: 'clone',
            storage: template,
            title: `${spec.name}-disk`,
            size: spec.disk_gb ?? config.disk_gb ?? DEFAULT_DISK_GB,
            tier: config.storage_tier ?? 'maxiops',
          },
        ],
      },
    },
  }
}

const NAME = /^[a-z0-9][a-z0-9._-]{0,62}$/

/** `upcloud`: UpCloud servers over its API 1.3 (docs/providers.md#upcloud). */
export const upcloudProvider: Provider<UpcloudConfig> = {
  name: 'upcloud',
  capabilities: { start_stop: true, keep_storage: true, plans: true, zones: true, price: true, root: false },

  validateConfig(config) {
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
  },

  validateSpec(spec, config) {
    const problems: string[] = []
    if (!zoneOf(spec, config)) problems.push('an upcloud server needs a zone (such as fi-hel2), or providers.upcloud.zone')
    const image = imageOf(spec, config)
    if (!image)
      problems.push(
        'an upcloud server needs an image (a template UUID, or its title as a slug such as ubuntu-server-24.04-lts-noble-numbat), or providers.upcloud.image',
      )
    if (spec.address) problems.push('upcloud assigns addresses itself: remove address')
    if (!NAME.test(spec.name)) problems.push('an upcloud server name is used as its hostname: lower-case letters, digits, . _ -')
    if (spec.disk_gb !== null && spec.disk_gb !== undefined && !(spec.disk_gb >= 10 && spec.disk_gb <= 4096))
      problems.push('an upcloud system disk is 10-4096 GB (disk_gb)')
    for (const [key, value] of Object.entries(spec.labels ?? {})) {
      if (!/^[A-Za-z0-9_-]{2,32}$/.test(key) || key.startsWith('_') || value.length > 255)
        problems.push(`label '${key}': UpCloud label keys are 2-32 of A-Z a-z 0-9 _ - (not starting with _), values at most 255 characters`)
    }
    return problems
  },

  async checkSpecs(ctx, specs) {
    await checkChoices(ctx, await api(ctx), specs)
  },

  async list(ctx, records) {
    if (!records.length) return records
    const client = await api(ctx)
    const out: ServerRecord[] = []
    for (const record of records) {
      // One details call per server: the list call of the API carries no addresses.
      const server = await findServer(ctx, client, record.name)
      if (!server) {
        out.push({ ...record, status: 'unknown' })
        continue
      }
      const live = recordOf(record, server)
      out.push({ ...live, status: listedStatus(record, live.status) })
    }
    return out
  },

  async create(ctx, spec, record, options?: CreateOptions) {
    const client = await api(ctx)
    let server = await findServer(ctx, client, spec.name)
    if (server) {
      ctx.log.info(`upcloud: ${spec.name} already exists (uuid ${server.uuid}, labelled by this workspace): adopting it`)
      if (server.state === 'stopped') server = await powerOn(client, server.uuid)
    } else {
      await checkChoices(ctx, client, [spec])
      const template = await templateOf(client, imageOf(spec, ctx.config) as string, spec.name)
      const key = await ensureWorkspaceKey(ctx.workspace)
      const body = createBody(spec, ctx.config, template, workspaceId(ctx.workspace), key.publicKey, options)
      server = (await client.request<{ server: UServer }>('POST', '/server', { body })).server
      if (!server || typeof server.uuid !== 'string' || !UUID.test(server.uuid)) throw failedError('the upcloud API answered the create without a server UUID')
    }
    const uuid = server.uuid
    // Still `creating` until ready: a create killed from here on is finished by the next plan.
    await ctx.save({ ...recordOf(record, server), status: 'creating' }, { uuid })
    const running =
      server.state === 'started' && publicIpv4(server)
        ? server
        : await awaitState(ctx, client, uuid, `upcloud server ${spec.name} to start`, (s) => s.state === 'started' && !!publicIpv4(s))
    const next = recordOf(record, running)
    if ((ctx.config.ready ?? cloudDefaults.ready) === 'ssh') await waitForSsh(ctx, spec.name, next.ip_address, spec.ssh.port)
    await ctx.save(next, { uuid })
    return next
  },

  async delete(ctx, record, options) {
    const client = await api(ctx)
    const server = await findServer(ctx, client, record.name)
    if (server) {
      // The server is destroyed anyway: a hard stop, as the API only deletes stopped servers.
      if (server.state !== 'stopped') {
        await client.request('POST', `/server/${server.uuid}/stop`, { body: { stop_server: { stop_type: 'hard', timeout: '60' } } })
      }
      const disks = (server.storage_devices?.storage_device ?? []).filter((d) => d.type === undefined || d.type === 'disk').map((d) => d.storage)
      const remove = () =>
        options.keepStorage
          ? client.request('DELETE', `/server/${server.uuid}`)
          : client.request('DELETE', `/server/${server.uuid}/`, { query: { storages: 1 } })
      try {
        await remove()
      } catch (error) {
        // A hard stop can still be in progress: wait until the API says stopped, then delete.
        if (!(error instanceof ProvError && error.code === ExitCode.USAGE && /STATE_ILLEGAL/.test(error.message))) throw error
        await awaitState(ctx, client, server.uuid, `upcloud server ${record.name} to stop`, (s) => s.state === 'stopped')
        await remove()
      }
      if (!options.keepStorage && disks.length) {
        // The disks go with the server; one left behind (a failed cascade) is deleted, never orphaned.
        const { storages } = await client.request<{ storages?: { storage?: { uuid: string }[] } }>('GET', '/storage/private')
        for (const left of (storages?.storage ?? []).filter((s) => disks.includes(s.uuid))) await client.request('DELETE', `/storage/${left.uuid}`)
      }
    }
    if (record.ip_address) await forgetHostKey(ctx.workspace, record.ip_address, record.ssh.port)
  },

  async start(ctx, record) {
    const client = await api(ctx)
    let server = await requireServer(ctx, client, record)
    if (server.state !== 'started') {
      const uuid = server.uuid
      server = await powerOn(client, uuid)
      if (server.state !== 'started') server = await awaitState(ctx, client, uuid, `upcloud server ${record.name} to start`, (s) => s.state === 'started')
    }
    const next = recordOf(record, server)
    await ctx.save(next)
    return next
  },

  async stop(ctx, record) {
    const client = await api(ctx)
    let server = await requireServer(ctx, client, record)
    if (server.state !== 'stopped') {
      // A soft stop lets the OS shut down; UpCloud powers the server off after the timeout.
      await client.request('POST', `/server/${server.uuid}/stop`, { body: { stop_server: { stop_type: 'soft', timeout: String(SOFT_STOP_TIMEOUT) } } })
      server = await awaitState(ctx, client, server.uuid, `upcloud server ${record.name} to stop`, (s) => s.state === 'stopped')
    }
    const next = recordOf(record, server)
    await ctx.save(next)
    return next
  },

  async info(ctx, record) {
    const client = await api(ctx)
    const server = await requireServer(ctx, client, record)
    return {
      uuid: server.uuid,
      state: server.state,
      zone: server.zone,
      plan: server.plan,
      cores: Number(server.core_number),
      memory_mb: Number(server.memory_amount),
      ipv4: publicIpv4(server) || null,
      storages: (server.storage_devices?.storage_device ?? []).map((d) => ({ uuid: d.storage, title: d.storage_title, size_gb: d.storage_size })),
      labels: labelsOf(server),
    }
  },

  async plans(ctx) {
    return (await planList(await api(ctx))).map(
      (p): ProviderPlan => ({ name: p.name, cores: p.core_number, memory_mb: p.memory_amount, disk_gb: p.storage_size }),
    )
  },

  async zones(ctx) {
    return (await zoneList(await api(ctx))).map((z) => ({ name: z.id, ...(z.description ? { description: z.description } : {}) }))
  },

  async price(ctx, plan, zone) {
    const client = await api(ctx)
    requireChoice(
      'upcloud',
      'plan',
      plan,
      (await planList(client)).map((p) => p.name),
    )
    const where = zone ?? ctx.config.zone ?? null
    const { prices } = await client.request<{ prices?: { zone?: (Record<string, unknown> & { name: string })[] } }>('GET', '/price')
    const zones = prices?.zone ?? []
    if (where && !zones.some((z) => z.name === where))
      requireChoice(
        'upcloud',
        'zone',
        where,
        zones.map((z) => z.name),
      )
    const entry = where ? zones.find((z) => z.name === where) : zones[0]
    const item = entry?.[`server_plan_${plan}`] as { amount?: number; price?: number } | undefined
    if (!entry || typeof item?.price !== 'number') return null
    // Prices are euro cents per hour; a month is billed as at most 672 hours.
    const hourly = Number((item.price / 100).toFixed(6))
    if (!Number.isFinite(hourly) || hourly < 0) throw failedError(`the upcloud API reported an unusable price for ${plan}`)
    return { plan, zone: entry.name, currency: 'EUR', hourly, monthly: Math.round(hourly * HOURS_PER_MONTH * 100) / 100 }
  },
}

export default upcloudProvider
