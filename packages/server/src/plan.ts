import { configError, didYouMean, listServers, notFoundError, readServerState, type ServerRecord, stateFingerprint, usageError } from '@prov/core'
import { type DayZeroSummary, renderDayZero, summarizeDayZero } from './dayzero/document'
import { type DesiredState, infraServersFile, readDesired, specLocation } from './desired'
import { liveServers, type ServerEnv } from './engine'
import { providerNames } from './providers/registry'
import type { ServerSpec } from './providers/types'

export const PLAN_SCHEMA = 'prov.server.plan/v1'

export type PlanActionKind = 'create' | 'delete' | 'keep' | 'update'

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
}

export interface ServerPlan {
  schema: typeof PLAN_SCHEMA
  workspace: string
  infra: string | null
  source: string
  created_at: string
  /** Fingerprint of .prov/servers.json when planned; apply refuses when it changed. */
  state_fingerprint: string
  actions: PlanAction[]
  summary: Record<PlanActionKind, number>
}

/** Loads the desired servers of `--infra NAME` or `-f FILE` and validates them against the providers. */
export async function loadDesired(env: ServerEnv, file?: string): Promise<DesiredState> {
  const infra = env.common.infra
  if (!file && !infra) throw usageError('which servers? give --infra NAME or -f FILE', { hint: 'prov-server plan --infra demo' })
  const path = file ?? infraServersFile(env.workspace.path, infra as string)
  const config = env.config
  const ssh = (config.ssh ?? {}) as Record<string, unknown>
  const providers = (config.providers ?? {}) as Record<string, unknown>
  const known = providerNames({ workspacePath: env.workspace.path, infra })
  const desired = readDesired(
    path,
    {
      configDefaults: ((config.servers as Record<string, unknown> | undefined)?.defaults ?? {}) as Record<string, unknown>,
      defaultProvider: String(providers.default ?? 'local'),
      defaultSshUser: String(ssh.user ?? 'root'),
      defaultSshPort: Number(ssh.port ?? 22),
      knownProviders: known,
    },
    env.workspace.path,
  )
  for (const name of new Set(desired.servers.map((s) => s.provider))) {
    const provider = await env.provider(name)
    const problems = provider.validateConfig((providers[name] ?? {}) as Record<string, unknown>)
    if (problems.length) throw configError(`provider '${name}' is misconfigured: ${problems[0]}`, { hint: 'see prov config show --explain' })
    for (const spec of desired.servers.filter((s) => s.provider === name)) {
      const specProblems = provider.validateSpec?.(spec, (providers[name] ?? {}) as Record<string, unknown>) ?? []
      if (specProblems.length)
        throw configError(`server '${spec.name}': ${specProblems[0]}`, { location: specLocation(desired, spec.name, env.workspace.path) })
    }
  }
  // Fixed addresses must not collide with servers that already exist under other names.
  const existing = listServers(env.workspace)
  for (const spec of desired.servers) {
    if (!spec.address) continue
    const other = existing.find((s) => s.name !== spec.name && s.ip_address === spec.address && s.ssh.port === spec.ssh.port)
    if (other) {
      throw configError(`address ${spec.address} of server '${spec.name}' collides with existing server '${other.name}'`, {
        location: specLocation(desired, spec.name, env.workspace.path),
      })
    }
  }
  return desired
}

/** One declared server by name: from --infra / -f, else from the infra recorded for it in state. */
export async function desiredServer(env: ServerEnv, name: string, file?: string): Promise<{ spec: ServerSpec; at: string }> {
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
  return { spec, at: specLocation(desired, name, env.workspace.path) }
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
  const fingerprint = stateFingerprint(Object.values(stored.servers))
  const live = new Map((await liveServers(env, Object.values(stored.servers))).map((r) => [r.name, r]))
  const actions: PlanAction[] = []
  const source = desired.file.startsWith(env.workspace.path) ? desired.file.slice(env.workspace.path.length + 1) : desired.file
  const deletes: PlanAction[] = []
  for (const spec of desired.servers) {
    const current = live.get(spec.name)
    // Rendered (secrets masked) so a broken document fails the plan, not the machine's first boot.
    const dayZero = summarizeDayZero(await renderDayZero(spec, { workspacePath: env.workspace.path, at: specLocation(desired, spec.name, env.workspace.path) }))
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
  const wanted = new Set(desired.servers.map((s) => s.name))
  if (desired.infra) {
    for (const record of live.values()) {
      if (record.infra === desired.infra && !wanted.has(record.name)) {
        deletes.push({ action: 'delete', server: record.name, provider: record.provider, reason: `not in ${source} any more` })
      }
    }
  }
  const all = [...deletes, ...actions]
  const summary = { create: 0, delete: 0, keep: 0, update: 0 }
  for (const action of all) summary[action.action]++
  return {
    schema: PLAN_SCHEMA,
    workspace: env.workspace.path,
    infra: desired.infra,
    source,
    created_at: new Date().toISOString(),
    state_fingerprint: fingerprint,
    actions: all,
    summary,
  }
}

/** A plan for explicit commands (create NAME..., delete NAME...) so --check can print it. */
export function adHocPlan(env: ServerEnv, actions: PlanAction[], source: string): ServerPlan {
  const summary = { create: 0, delete: 0, keep: 0, update: 0 }
  for (const action of actions) summary[action.action]++
  return {
    schema: PLAN_SCHEMA,
    workspace: env.workspace.path,
    infra: env.common.infra ?? null,
    source,
    created_at: new Date().toISOString(),
    state_fingerprint: stateFingerprint(Object.values(readServerState(env.workspace).servers)),
    actions,
    summary,
  }
}

/** Validates a piped or read plan record (exit 2 on a wrong schema or shape). */
export function parsePlan(record: unknown, source: string): ServerPlan {
  if (!record || typeof record !== 'object' || Array.isArray(record)) throw usageError(`${source} is not a plan record`, { location: source })
  const plan = record as Partial<ServerPlan>
  if (plan.schema !== PLAN_SCHEMA) {
    throw usageError(`${source} has schema ${plan.schema === undefined ? '(none)' : `'${String(plan.schema)}'`}, expected ${PLAN_SCHEMA}`, {
      location: `${source}.schema`,
      hint: 'pipe the output of prov-server plan',
    })
  }
  if (!Array.isArray(plan.actions) || typeof plan.state_fingerprint !== 'string') {
    throw usageError(`${source} is not a complete ${PLAN_SCHEMA} record (actions, state_fingerprint)`, { location: source })
  }
  const kinds = ['create', 'delete', 'keep', 'update']
  plan.actions.forEach((action, index) => {
    if (!action || !kinds.includes(action.action) || typeof action.server !== 'string') {
      throw usageError(`${source} action ${index + 1} is malformed`, {
        location: `${source}.actions[${index}]`,
        hint: didYouMean(String(action?.action), kinds) ?? `actions are ${kinds.join(', ')}`,
      })
    }
    if ((action.action === 'create' || action.action === 'update') && (!action.spec || typeof action.spec !== 'object')) {
      throw usageError(`${source} action ${index + 1} (${action.action} ${action.server}) has no spec`, { location: `${source}.actions[${index}].spec` })
    }
  })
  return plan as ServerPlan
}
