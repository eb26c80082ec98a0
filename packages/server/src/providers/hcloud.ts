import { createHash } from 'node:crypto'
import {
  configError,
  ExitCode,
  ensureWorkspaceKey,
  failedError,
  forgetHostKey,
  notFoundError,
  ProvError,
  type ServerRecord,
  type ServerStatus,
} from '@prov/core'
import { CloudApi } from './cloud/api'
import {
  type CloudProviderConfig,
  carriesIdentity,
  checkedAddress,
  cloudConfigProblems,
  cloudCredential,
  cloudDefaults,
  cloudSpecProblems,
  IDENTITY,
  listedRecord,
  OnceCache,
  pollUntil,
  requireChoice,
  waitForSsh,
  workspaceId,
} from './cloud/common'
import type { CreateOptions, Provider, ProviderContext, ProviderPlan, ServerSpec } from './types'

/** `providers.hcloud` (docs/providers.md#hcloud). */
export interface HcloudConfig extends CloudProviderConfig {
  /** Server type of servers that name no plan. */
  plan?: string
  /** Image of servers that name none. */
  image?: string
}

const PUBLIC_ENDPOINT = 'https://api.hetzner.cloud/v1'
const TOKEN_ENV = 'HCLOUD_TOKEN'
type Ctx = ProviderContext<HcloudConfig>

/** The parts of Hetzner's `Server` object prov reads. */
interface HServer {
  id: number
  name: string
  status: string
  labels?: Record<string, string>
  public_net?: { ipv4?: { ip?: string } | null }
  server_type?: { name?: string; cores?: number; memory?: number; disk?: number }
  datacenter?: { location?: { name?: string } }
  image?: { name?: string | null } | null
}
interface HAction {
  id: number
  status: 'running' | 'success' | 'error'
  error?: { code?: string; message?: string } | null
}
interface HServerType {
  name: string
  description?: string
  cores: number
  memory: number
  disk: number
  deprecated?: boolean | null
  prices: { location: string; price_hourly: { gross: string }; price_monthly: { gross: string } }[]
}

async function api(ctx: Ctx): Promise<CloudApi> {
  const problems = hcloudProvider.validateConfig(ctx.config)
  if (problems.length) throw configError(`provider 'hcloud' is misconfigured: ${problems[0]}`, { hint: 'see docs/providers.md#hcloud' })
  const token = await cloudCredential(ctx, 'hcloud', TOKEN_ENV)
  return new CloudApi({
    provider: 'hcloud',
    endpoint: (ctx.config.endpoint ?? PUBLIC_ENDPOINT).replace(/\/+$/, ''),
    headers: { authorization: `Bearer ${token}` },
    requestTimeout: ctx.config.request_timeout ?? cloudDefaults.request_timeout,
    retries: ctx.config.retries ?? cloudDefaults.retries,
    credentialHint: ctx.config.token ? `secret '${ctx.config.token.secret}'` : (ctx.config.credential_env ?? TOKEN_ENV),
    faultOf: (body) => {
      const error = (body as { error?: { code?: unknown; message?: unknown } } | undefined)?.error
      return { code: typeof error?.code === 'string' ? error.code : undefined, message: typeof error?.message === 'string' ? error.message : undefined }
    },
    quotaCodes: ['resource_limit_exceeded'],
  })
}

/** Hetzner's server states in prov's words. */
function statusOf(status: string): ServerStatus {
  if (status === 'running') return 'running'
  if (status === 'off') return 'stopped'
  if (status === 'initializing' || status === 'starting') return 'creating'
  return 'unknown'
}

function recordOf(record: ServerRecord, server: HServer): ServerRecord {
  return {
    ...record,
    status: statusOf(server.status),
    ip_address: checkedAddress('hcloud', server.public_net?.ipv4?.ip) || record.ip_address,
    cores: server.server_type?.cores ?? record.cores,
    memory_mb: server.server_type?.memory === undefined ? record.memory_mb : Math.round(server.server_type.memory * 1024),
    disk_gb: server.server_type?.disk ?? record.disk_gb,
    plan: server.server_type?.name ?? record.plan,
    zone: server.datacenter?.location?.name ?? record.zone,
    image: server.image?.name ?? record.image,
  }
}

/** The label selector of one server of this workspace (or of all of them). */
function selector(ctx: Ctx, name?: string): string {
  const id = `${IDENTITY.workspace}=${workspaceId(ctx.workspace)}`
  return name ? `${id},${IDENTITY.server}=${name}` : id
}

/**
 * One server; its id goes into later request paths, so the answer must be about the server asked
 * for (an answer without it is unusable, never "deleted").
 */
async function serverById(client: CloudApi, id: number): Promise<HServer> {
  const server = await client.object<HServer>('GET', `/servers/${id}`, 'server')
  if (server.id !== id || typeof server.status !== 'string') throw client.unusable('GET', `/servers/${id}`, `not the server ${id}`)
  return server
}

/**
 * The server prov made for `name`: by the id it stored, else by its labels (a create killed before
 * the state write). Only a server labelled with this workspace and name is prov's: a stored id now
 * naming another server is ignored, and the label filter's answer is checked again.
 */
async function findServer(ctx: Ctx, client: CloudApi, name: string): Promise<HServer | undefined> {
  const wsid = workspaceId(ctx.workspace)
  const id = ctx.getData(name)?.id
  if (typeof id === 'number') {
    try {
      const server = await serverById(client, id)
      if (carriesIdentity(server.labels, wsid, name)) return server
      ctx.log.warn(`hcloud: server ${id} does not carry this workspace's labels for '${name}': not prov's, left alone`)
    } catch (error) {
      if (!(error instanceof ProvError && error.code === ExitCode.NOT_FOUND)) throw error
    }
  }
  const found = await client.items<HServer>('GET', '/servers', 'servers', { query: { label_selector: selector(ctx, name) } })
  return found.find((s) => typeof s.id === 'number' && carriesIdentity(s.labels, wsid, name))
}

async function requireServer(ctx: Ctx, client: CloudApi, record: ServerRecord): Promise<HServer> {
  const server = await findServer(ctx, client, record.name)
  if (!server)
    throw notFoundError(`hcloud has no server for '${record.name}'`, { hint: 'it was deleted outside prov: prov-server delete it, then create it again' })
  return server
}

/** Waits for an action to finish; its error becomes ours. */
async function awaitAction(ctx: Ctx, client: CloudApi, action: HAction, what: string): Promise<void> {
  const done = await pollUntil(
    what,
    async () => {
      const current = action.status === 'running' ? await client.object<HAction>('GET', `/actions/${action.id}`, 'action') : action
      action = current
      return current.status === 'running' ? undefined : current
    },
    ctx.config.ready_timeout ?? cloudDefaults.ready_timeout,
    1000,
  )
  if (done.status === 'error') throw failedError(`hcloud could not ${what}: ${done.error?.code ?? 'error'} ${done.error?.message ?? ''}`.trim())
}

/** Hetzner's SSH key fingerprint: MD5 of the key blob, as colon-separated hex. */
export function sshFingerprint(publicKey: string): string {
  const blob = Buffer.from(publicKey.trim().split(/\s+/)[1] ?? '', 'base64')
  return createHash('md5').update(blob).digest('hex').match(/../g)?.join(':') ?? ''
}

/** The workspace SSH key's id per endpoint: made once per process. */
const sharedKeys = new OnceCache()

/**
 * The workspace key as an hcloud SSH key (its id, as the API takes it: a string): reused by
 * fingerprint, else created with prov's label, once per process, so the parallel creates of one
 * apply share it. Another process that made it first (409 uniqueness_error) is fine: its key is
 * read back by fingerprint.
 */
async function sshKeyId(ctx: Ctx, client: CloudApi): Promise<string> {
  const key = await ensureWorkspaceKey(ctx.workspace)
  const fingerprint = sshFingerprint(key.publicKey)
  return sharedKeys.get(`${client.options.endpoint}\0ssh-key\0${fingerprint}`, async () => {
    const byFingerprint = async () => {
      const found = await client.items<{ id?: unknown }>('GET', '/ssh_keys', 'ssh_keys', { query: { fingerprint } })
      const id = found[0]?.id
      return typeof id === 'number' ? String(id) : undefined
    }
    const existing = await byFingerprint()
    if (existing) return existing
    const wsid = workspaceId(ctx.workspace)
    try {
      const created = await client.object<{ id?: unknown }>('POST', '/ssh_keys', 'ssh_key', {
        body: { name: `prov-${wsid}`, public_key: key.publicKey.trim(), labels: { [IDENTITY.workspace]: wsid } },
      })
      if (typeof created.id !== 'number') throw client.unusable('POST', '/ssh_keys', 'ssh_key.id is not a number')
      return String(created.id)
    } catch (error) {
      if (!(error instanceof ProvError && /uniqueness_error/.test(error.message))) throw error
      const made = await byFingerprint()
      if (!made) throw error
      return made
    }
  })
}

/** What the API offers to create servers from. */
async function catalog(client: CloudApi): Promise<{ plans: string[]; locations: string[]; images: string[] }> {
  const [types, locations, images] = await Promise.all([
    serverTypes(client),
    client.items<{ name?: unknown }>('GET', '/locations', 'locations'),
    client.items<{ name?: unknown }>('GET', '/images', 'images', { query: { type: 'system', status: 'available', per_page: 50 } }),
  ])
  return {
    plans: types.filter((t) => !t.deprecated).map((t) => t.name),
    locations: names(locations),
    images: names(images),
  }
}

/** The string names of catalog entries (an image without a name cannot be asked for). */
function names(entries: { name?: unknown }[]): string[] {
  return entries.map((e) => e.name).filter((n): n is string => typeof n === 'string' && n !== '')
}

/** Checks plan, location and image of servers against the catalog: exit 2 listing the valid ones. */
async function checkChoices(ctx: Ctx, client: CloudApi, specs: ServerSpec[]): Promise<void> {
  const offered = await catalog(client)
  for (const spec of specs) {
    requireChoice('hcloud', 'server type (plan)', planOf(spec, ctx.config) as string, offered.plans, spec.name)
    const location = spec.zone ?? ctx.config.zone
    if (location) requireChoice('hcloud', 'location (zone)', location, offered.locations, spec.name)
    requireChoice('hcloud', 'system image', imageOf(spec, ctx.config) as string, offered.images, spec.name)
  }
}

/** Catalog answers, asked once per endpoint and process (a plan checks and prices many servers). */
const catalogCalls = new OnceCache()

function serverTypes(client: CloudApi): Promise<HServerType[]> {
  return catalogCalls.get(`${client.options.endpoint}\0server_types`, async () => {
    const types = await client.items<HServerType>('GET', '/server_types', 'server_types', { query: { per_page: 50 } })
    // Prices and sizes are read as numbers and names: an entry of another shape is not a server type.
    if (!types.every((t) => typeof t.name === 'string' && typeof t.cores === 'number' && typeof t.memory === 'number' && Array.isArray(t.prices)))
      throw client.unusable('GET', '/server_types', 'a server type without name, cores, memory or prices')
    return types
  })
}

function projectCurrency(client: CloudApi): Promise<string> {
  return catalogCalls.get(`${client.options.endpoint}\0pricing`, async () => {
    const pricing = await client.object<{ currency?: unknown }>('GET', '/pricing', 'pricing')
    if (typeof pricing.currency !== 'string') throw client.unusable('GET', '/pricing', 'pricing.currency is not a string')
    return pricing.currency
  })
}

function planOf(spec: ServerSpec, config: HcloudConfig): string | undefined {
  return spec.plan ?? config.plan
}

function imageOf(spec: ServerSpec, config: HcloudConfig): string | undefined {
  return spec.image ?? config.image
}

/** `hcloud`: Hetzner Cloud servers over its API v1 (docs/providers.md#hcloud). */
export const hcloudProvider: Provider<HcloudConfig> = {
  name: 'hcloud',
  capabilities: { start_stop: true, keep_storage: false, plans: true, zones: true, price: true, root: false },

  validateConfig(config) {
    const problems = cloudConfigProblems('hcloud', config as Record<string, unknown>, ['plan', 'image'])
    for (const key of ['plan', 'image', 'zone'] as const) {
      if (config[key] !== undefined && !/^[a-z0-9][a-z0-9._-]{0,62}$/.test(String(config[key]))) problems.push(`providers.hcloud.${key} is not a Hetzner name`)
    }
    return problems
  },

  validateSpec(spec, config) {
    return cloudSpecProblems('hcloud', spec, [
      { field: 'plan', value: planOf(spec, config), example: 'server type such as cx22' },
      { field: 'image', value: imageOf(spec, config), example: 'such as debian-12' },
    ])
  },

  async checkSpecs(ctx, specs) {
    await checkChoices(ctx, await api(ctx), specs)
  },

  async list(ctx, records) {
    if (!records.length) return records
    const client = await api(ctx)
    const wsid = workspaceId(ctx.workspace)
    const servers: HServer[] = []
    for (let page = 1; page <= 100; page++) {
      const found = await client.request<{ servers?: unknown; meta?: { pagination?: { next_page?: number | null } } }>('GET', '/servers', {
        query: { label_selector: selector(ctx), page, per_page: 50 },
      })
      const listed = found?.servers
      if (!Array.isArray(listed)) throw client.unusable('GET', '/servers', 'servers is not a list')
      servers.push(...(listed as HServer[]).filter((s) => typeof s?.id === 'number' && carriesIdentity(s.labels, wsid)))
      if (!found.meta?.pagination?.next_page) break
    }
    // Indexed once: a plan lists every server of the workspace, a lookup per record would be quadratic.
    const byId = new Map(servers.map((s) => [s.id, s]))
    const byName = new Map<string, HServer>()
    for (const server of servers) {
      const name = server.labels?.[IDENTITY.server]
      if (name !== undefined && !byName.has(name)) byName.set(name, server)
    }
    return records.map((record) => {
      const id = ctx.getData(record.name)?.id
      return listedRecord(record, (typeof id === 'number' ? byId.get(id) : undefined) ?? byName.get(record.name), recordOf)
    })
  },

  async create(ctx, spec, record, options?: CreateOptions) {
    const client = await api(ctx)
    const wsid = workspaceId(ctx.workspace)
    let server = await findServer(ctx, client, spec.name)
    if (server) {
      ctx.log.info(`hcloud: ${spec.name} already exists (id ${server.id}, labelled by this workspace): adopting it`)
    } else {
      const plan = planOf(spec, ctx.config) as string
      const image = imageOf(spec, ctx.config) as string
      const location = spec.zone ?? ctx.config.zone ?? null
      await checkChoices(ctx, client, [spec])
      const sshKey = await sshKeyId(ctx, client)
      const created = await client.request<{ server: HServer; action: HAction }>('POST', '/servers', {
        body: {
          name: spec.name,
          server_type: plan,
          image,
          ...(location ? { location } : {}),
          ssh_keys: [sshKey],
          labels: { ...spec.labels, [IDENTITY.workspace]: wsid, [IDENTITY.server]: spec.name },
          start_after_create: true,
          ...(options?.userData ? { user_data: options.userData } : {}),
        },
      })
      if (typeof created?.server?.id !== 'number' || typeof created.action?.id !== 'number')
        throw client.unusable('POST', '/servers', 'no server id or action (the server may exist: the next plan adopts it by its labels)')
      server = created.server
      // Still `creating` until ready: a create killed from here on is finished by the next plan.
      await ctx.save({ ...recordOf(record, server), status: 'creating' }, { id: server.id })
      await awaitAction(ctx, client, created.action, `create server ${spec.name}`)
    }
    const id = server.id
    await ctx.save({ ...recordOf(record, server), status: 'creating' }, { id })
    const running = await pollUntil(
      `hcloud server ${spec.name} to run`,
      async () => {
        const current = await serverById(client, id)
        return current.status === 'running' && current.public_net?.ipv4?.ip ? current : undefined
      },
      ctx.config.ready_timeout ?? cloudDefaults.ready_timeout,
    )
    const next = recordOf(record, running)
    if ((ctx.config.ready ?? cloudDefaults.ready) === 'ssh') await waitForSsh(ctx, spec.name, next.ip_address, spec.ssh.port)
    await ctx.save(next, { id })
    return next
  },

  async delete(ctx, record) {
    const client = await api(ctx)
    const wsid = workspaceId(ctx.workspace)
    const server = await findServer(ctx, client, record.name)
    if (server) {
      const action = await client.object<HAction>('DELETE', `/servers/${server.id}`, 'action')
      await awaitAction(ctx, client, action, `delete server ${record.name}`)
    }
    if (record.ip_address) await forgetHostKey(ctx.workspace, record.ip_address, record.ssh.port)
    // The workspace's SSH key goes with its last server, when prov created it (labelled so).
    const left = await client.items<HServer>('GET', '/servers', 'servers', { query: { label_selector: selector(ctx) } })
    if (!left.some((s) => s.id !== server?.id && carriesIdentity(s.labels, wsid))) {
      const keys = await client.items<{ id?: unknown; labels?: Record<string, string> }>('GET', '/ssh_keys', 'ssh_keys', {
        query: { label_selector: selector(ctx) },
      })
      for (const key of keys) if (typeof key.id === 'number' && carriesIdentity(key.labels, wsid)) await client.request('DELETE', `/ssh_keys/${key.id}`)
    }
  },

  async start(ctx, record) {
    const client = await api(ctx)
    const server = await requireServer(ctx, client, record)
    if (server.status !== 'running') {
      const action = await client.object<HAction>('POST', `/servers/${server.id}/actions/poweron`, 'action')
      await awaitAction(ctx, client, action, `start server ${record.name}`)
    }
    const next = recordOf(record, await serverById(client, server.id))
    await ctx.save(next)
    return next
  },

  async stop(ctx, record) {
    const client = await api(ctx)
    const server = await requireServer(ctx, client, record)
    if (server.status !== 'off') {
      // ACPI shutdown lets the OS stop its services; the action ends when the request was sent.
      const action = await client.object<HAction>('POST', `/servers/${server.id}/actions/shutdown`, 'action')
      await awaitAction(ctx, client, action, `stop server ${record.name}`)
      await pollUntil(
        `hcloud server ${record.name} to power off`,
        async () => ((await serverById(client, server.id)).status === 'off' ? true : undefined),
        ctx.config.ready_timeout ?? cloudDefaults.ready_timeout,
      )
    }
    const next = { ...recordOf(record, await serverById(client, server.id)) }
    await ctx.save(next)
    return next
  },

  async info(ctx, record) {
    const client = await api(ctx)
    const server = await requireServer(ctx, client, record)
    return {
      id: server.id,
      status: server.status,
      server_type: server.server_type?.name,
      location: server.datacenter?.location?.name,
      image: server.image?.name ?? null,
      ipv4: server.public_net?.ipv4?.ip ?? null,
      labels: server.labels ?? {},
    }
  },

  async plans(ctx) {
    const client = await api(ctx)
    return (await serverTypes(client))
      .filter((t) => !t.deprecated)
      .map(
        (t): ProviderPlan => ({
          name: t.name,
          cores: t.cores,
          memory_mb: Math.round(t.memory * 1024),
          disk_gb: t.disk,
          ...(t.description ? { description: t.description } : {}),
        }),
      )
  },

  async zones(ctx) {
    const client = await api(ctx)
    const locations = await client.items<{ name?: unknown; description?: unknown }>('GET', '/locations', 'locations')
    return locations
      .filter((l): l is { name: string; description?: unknown } => typeof l.name === 'string')
      .map((l) => ({ name: l.name, ...(typeof l.description === 'string' && l.description ? { description: l.description } : {}) }))
  },

  async price(ctx, plan, zone) {
    const client = await api(ctx)
    const type = (await serverTypes(client)).find((t) => t.name === plan)
    if (!type) return null
    const where = zone ?? ctx.config.zone ?? null
    const price = where ? type.prices.find((p) => p.location === where) : type.prices[0]
    if (!price) return null
    // The currency is the project's (GET /pricing); server type prices are EUR for every account we know.
    const currency = await projectCurrency(client)
    return { plan, zone: price.location, currency, hourly: Number(price.price_hourly.gross), monthly: Number(price.price_monthly.gross) }
  },
}

export default hcloudProvider
