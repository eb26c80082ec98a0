import {
  configError,
  didYouMean,
  listServers,
  log,
  notFoundError,
  type planActionKinds,
  readServerState,
  SERVER_PLAN_SCHEMA,
  type ServerRecord,
  stateFingerprint,
  usageError,
} from '@prov/core'
import { type DayZeroSummary, renderDayZero, summarizeDayZero } from './dayzero/document'
import { type DesiredState, type FieldPath, infraServersFile, readDesired, specLocation } from './desired'
import { liveServers, providerConfig, type ServerEnv } from './engine'
import { knownProviders } from './providers/registry'
import type { ServerSpec } from './providers/types'
import { checkAddressCollisions, checkSpecsWithProviders } from './validate'

export const PLAN_SCHEMA = SERVER_PLAN_SCHEMA

export type PlanActionKind = (typeof planActionKinds)[number]

export interface PlanAction {
  action: PlanActionKind
  server: string
  provider: string
  reason: string
  /** Field changes of an update: `field: [from, to]`. */
  changes?: Record<string, [unknown, unknown]>
  /** Start a stopped server as part of an update. */
  start?: boolean
  /** The desired server (create / update). */
  spec?: ServerSpec
  /** Fingerprint of the server's first-boot document (docs/day-zero.md); `previous` when it changed. */
  day_zero?: DayZeroSummary & { previous?: string | null; needs_recreation?: boolean }
  /** What a server to create costs (create only): null when its provider has no price for its plan and zone. */
  price?: PlanPrice | null
}

/** The price of one server to create, as its provider's catalog gives it. */
export interface PlanPrice {
  currency: string
  hourly: number
  monthly: number
}

export interface ServerPlan {
  schema: typeof PLAN_SCHEMA
  workspace: string
  infra: string | null
  source: string
  created_at: string
  /** Fingerprint of .prov/servers.json when planned and of the plan itself; apply refuses when either changed. */
  state_fingerprint: string
  actions: PlanAction[]
  summary: Record<PlanActionKind, number>
}

/** Loads the desired servers of `--infra NAME` or `-f FILE` and validates them against the providers. */
export async function loadDesired(env: ServerEnv, file?: string): Promise<DesiredState> {
  const infra = env.common.infra
  if (!file && !infra) throw usageError('which servers? give --infra NAME or -f FILE', { hint: 'prov-server plan --infra demo' })
  const path = file ?? infraServersFile(env.workspace.path, infra as string)
  const { ssh, providers, servers } = env.config
  const known = knownProviders({ workspacePath: env.workspace.path, infra })
  const desired = readDesired(
    path,
    {
      configDefaults: servers.defaults,
      defaultProvider: providers.default,
      defaultSshUser: ssh.user,
      defaultSshPort: ssh.port,
      knownProviders: known,
    },
    env.workspace.path,
  )
  const locate = (spec: ServerSpec) => specLocation(desired, spec.name)
  await checkSpecsWithProviders(env, desired.servers, { locate, refuse: configError })
  checkAddressCollisions(env, desired.servers, { locate, refuse: configError })
  return desired
}

/** One declared server by name: from --infra / -f, else from the infra recorded for it in state. */
export async function desiredServer(
  env: ServerEnv,
  name: string,
  file?: string,
): Promise<{ spec: ServerSpec; at: string; locate: (path: FieldPath) => string }> {
  let infra = env.common.infra
  if (!file && !infra) {
    const recorded = listServers(env.workspace).find((s) => s.name === name)
    if (!recorded?.infra)
      throw usageError(`which servers.yaml declares '${name}'? give --infra NAME or -f FILE`, { hint: `prov-server userdata ${name} --infra demo` })
    infra = recorded.infra
  }
  const desired = await loadDesired({ ...env, common: { ...env.common, infra } }, file)
  const spec = desired.servers.find((s) => s.name === name)
  if (!spec) {
    throw notFoundError(`server '${name}' is not declared in ${desired.file}`, {
      hint:
        didYouMean(
          name,
          desired.servers.map((s) => s.name),
        ) ?? undefined,
    })
  }
  return { spec, at: specLocation(desired, name), locate: (path) => desired.locate(name, path) }
}

const comparedFields = ['cores', 'memory_mb', 'disk_gb', 'plan', 'zone', 'labels', 'ssh'] as const

function diff(spec: ServerSpec, record: ServerRecord): Record<string, [unknown, unknown]> {
  const changes: Record<string, [unknown, unknown]> = {}
  for (const field of comparedFields) {
    const want = spec[field]
    // An unset size/zone/plan means "whatever the provider chose", not "change it to nothing".
    if ((want === null || want === undefined) && field !== 'labels') continue
    const have = record[field]
    if (JSON.stringify(want ?? null) !== JSON.stringify(have ?? null)) changes[field] = [have ?? null, want ?? null]
  }
  if (spec.image && spec.image !== record.image) changes.image = [record.image, spec.image]
  if (spec.infra !== record.infra) changes.infra = [record.infra, spec.infra]
  return changes
}

/** Compares desired with actual (live) state. */
export async function computePlan(env: ServerEnv, desired: DesiredState): Promise<ServerPlan> {
  const stored = readServerState(env.workspace)
  const live = new Map((await liveServers(env, Object.values(stored.servers))).map((r) => [r.name, r]))
  const actions: PlanAction[] = []
  const source = desired.file.startsWith(env.workspace.path) ? desired.file.slice(env.workspace.path.length + 1) : desired.file
  const deletes: PlanAction[] = []
  for (const spec of desired.servers) {
    const current = live.get(spec.name)
    // Rendered (secrets masked) so a broken document fails the plan, not the machine's first boot.
    const dayZero = summarizeDayZero(
      await renderDayZero(spec, {
        workspacePath: env.workspace.path,
        at: specLocation(desired, spec.name),
        locate: (path) => desired.locate(spec.name, path),
      }),
    )
    if (!current) {
      actions.push({
        action: 'create',
        server: spec.name,
        provider: spec.provider,
        reason: `not in state; declared in ${source}`,
        spec,
        ...(dayZero ? { day_zero: dayZero } : {}),
      })
      continue
    }
    const recorded = (current as ServerRecord & { day_zero?: DayZeroSummary }).day_zero
    const dayZeroNote =
      (dayZero?.fingerprint ?? null) === (recorded?.fingerprint ?? null)
        ? undefined
        : {
            ...(dayZero ?? { format: recorded?.format ?? 'ignition', fingerprint: '', source: 'none' }),
            previous: recorded?.fingerprint ?? null,
            needs_recreation: true,
          }
    if (current.provider !== spec.provider || (spec.address && spec.address !== current.ip_address)) {
      const why =
        current.provider !== spec.provider
          ? `provider changes from ${current.provider} to ${spec.provider}`
          : `address changes from ${current.ip_address} to ${spec.address}`
      deletes.push({ action: 'delete', server: spec.name, provider: current.provider, reason: `${why}; replaced` })
      actions.push({
        action: 'create',
        server: spec.name,
        provider: spec.provider,
        reason: `${why}; replaced`,
        spec,
        ...(dayZero ? { day_zero: dayZero } : {}),
      })
      continue
    }
    if (current.status === 'creating' || current.status === 'error') {
      actions.push({
        action: 'create',
        server: spec.name,
        provider: spec.provider,
        reason: `left '${current.status}' by an interrupted or failed apply; created again`,
        spec,
        ...(dayZero ? { day_zero: dayZero } : {}),
      })
      continue
    }
    const changes = diff(spec, current)
    const start = current.status === 'stopped'
    // A first-boot document is read once, at first boot: a change is reported, never applied by
    // replacing the machine (that would destroy what it holds).
    const recreate = dayZeroNote
      ? [`day-zero document changed: it applies at first boot only; recreate the server to apply it (prov-server delete ${spec.name} --yes, then apply)`]
      : []
    const noted = dayZeroNote ? { day_zero: dayZeroNote } : {}
    if (Object.keys(changes).length || start) {
      const reasons = [
        ...(Object.keys(changes).length ? [`changed: ${Object.keys(changes).join(', ')}`] : []),
        ...(start ? ['stopped; will be started'] : []),
        ...recreate,
      ]
      actions.push({ action: 'update', server: spec.name, provider: spec.provider, reason: reasons.join('; '), changes, start, spec, ...noted })
    } else {
      actions.push({
        action: 'keep',
        server: spec.name,
        provider: spec.provider,
        reason: [`exists (${current.status}) and matches`, ...recreate].join('; '),
        ...noted,
      })
    }
  }
  await addPrices(env, actions)
  const wanted = new Set(desired.servers.map((s) => s.name))
  if (desired.infra) {
    for (const record of live.values()) {
      if (record.infra === desired.infra && !wanted.has(record.name)) {
        deletes.push({ action: 'delete', server: record.name, provider: record.provider, reason: `not in ${source} any more` })
      }
    }
  }
  return sealPlan(stored.servers, {
    workspace: env.workspace.path,
    infra: desired.infra,
    source,
    actions: [...deletes, ...actions],
  })
}

/**
 * Prices the servers a plan creates: one read-only catalog call per distinct provider, plan and
 * zone (a thousand servers of one type ask once). A price is information, never a reason to
 * refuse a plan: a provider that cannot answer is warned about once and its servers get null.
 */
async function addPrices(env: ServerEnv, actions: PlanAction[]): Promise<void> {
  const asked = new Map<string, Promise<PlanPrice | null>>()
  const failed = new Set<string>()
  const priceOf = (action: PlanAction): Promise<PlanPrice | null> => {
    const spec = action.spec as ServerSpec
    const configured = providerConfig(env.config, spec.provider).plan
    const plan = spec.plan ?? (typeof configured === 'string' ? configured : null)
    const key = JSON.stringify([spec.provider, plan, spec.zone])
    let pending = asked.get(key)
    if (!pending) {
      pending = askPrice(env, spec.provider, plan, spec.zone).catch((error: unknown) => {
        if (!failed.has(spec.provider)) log().warn(`${spec.provider}: no prices in the plan: ${(error as Error).message}`)
        failed.add(spec.provider)
        return null
      })
      asked.set(key, pending)
    }
    return pending
  }
  const creates = actions.filter((action) => action.action === 'create' && action.spec)
  const prices = await Promise.all(creates.map(priceOf))
  creates.forEach((action, index) => {
    action.price = prices[index]
  })
}

/** Largest price a plan carries: anything above is not a server's price but a broken answer. */
const MAX_PRICE = 1e9

async function askPrice(env: ServerEnv, name: string, plan: string | null, zone: string | null): Promise<PlanPrice | null> {
  if (!plan) return null
  const provider = await env.provider(name)
  if (!provider.capabilities.price) return null
  const price = await provider.price(env.providerContext(name), plan, zone)
  if (!price) return null
  // The numbers come from a remote API: only a currency code and finite, non-negative amounts go into the plan.
  const amount = (value: unknown) => typeof value === 'number' && Number.isFinite(value) && value >= 0 && value <= MAX_PRICE
  if (!/^[A-Z]{3}$/.test(String(price.currency)) || !amount(price.hourly) || !amount(price.monthly)) {
    throw new Error(`the ${name} API answered an unusable price for plan ${plan}`)
  }
  return { currency: price.currency, hourly: price.hourly, monthly: price.monthly }
}

/** What the fingerprint covers besides the state: everything in a plan but the fingerprint itself. */
export function coveredByFingerprint(plan: ServerPlan): Omit<ServerPlan, 'state_fingerprint' | 'schema'> {
  const { schema: _schema, state_fingerprint: _fingerprint, ...covered } = plan
  return covered
}

/** Completes a plan: summary, time, and the fingerprint over the state and the plan's content. */
function sealPlan(servers: Record<string, ServerRecord>, parts: Pick<ServerPlan, 'workspace' | 'infra' | 'source' | 'actions'>): ServerPlan {
  const summary = { create: 0, delete: 0, keep: 0, update: 0 }
  for (const action of parts.actions) summary[action.action]++
  const plan: ServerPlan = {
    schema: PLAN_SCHEMA,
    workspace: parts.workspace,
    infra: parts.infra,
    source: parts.source,
    created_at: new Date().toISOString(),
    state_fingerprint: '',
    actions: parts.actions,
    summary,
  }
  plan.state_fingerprint = stateFingerprint(Object.values(servers), coveredByFingerprint(plan))
  return plan
}

/** A plan for explicit commands (create NAME..., delete NAME...) so --check can print it. */
export function adHocPlan(env: ServerEnv, actions: PlanAction[], source: string): ServerPlan {
  return sealPlan(readServerState(env.workspace).servers, { workspace: env.workspace.path, infra: env.common.infra ?? null, source, actions })
}
