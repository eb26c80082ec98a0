import {
  didYouMean,
  notFoundError,
  plainDataProblem,
  planActionKinds,
  readServerState,
  serverPlanSchemas,
  serverSpecSchemas,
  stateFingerprint,
  usageError,
} from '@prov/core'
import type { ServerEnv } from './engine'
import { coveredByFingerprint, PLAN_SCHEMA, type PlanAction, type ServerPlan } from './plan'
import { knownProviders } from './providers/registry'
import type { ServerSpec } from './providers/types'
import { checkAddressCollisions, checkSpecsWithProviders } from './validate'

/**
 * A plan is input like any other: whoever wrote the file, it is checked as strictly as the
 * servers.yaml it could have come from, and refused as a whole (exit 2) before anything happens.
 */

interface Issue {
  code: string
  path: PropertyKey[]
  message: string
  keys?: PropertyKey[]
  values?: unknown[]
  input?: unknown
}

const fieldPath = (path: PropertyKey[]) => path.map((p) => (typeof p === 'number' ? `[${p}]` : `.${String(p)}`)).join('')

function describeIssue(issue: Issue, known: string[]): { field: string; message: string; hint?: string } {
  if (issue.code === 'unrecognized_keys' && issue.keys?.length) {
    const key = String(issue.keys[0])
    return { field: `${fieldPath(issue.path)}.${key}`, message: `unknown field '${key}'`, hint: didYouMean(key, known) }
  }
  return { field: fieldPath(issue.path), message: issue.message }
}

/** Validates the shape of a piped or read plan record (exit 2 naming the field). */
export function parsePlan(record: unknown, source: string): ServerPlan {
  if (!record || typeof record !== 'object' || Array.isArray(record)) throw usageError(`${source} is not a plan record`, { location: source })
  const raw = record as Record<string, unknown>
  if (raw.schema !== PLAN_SCHEMA) {
    throw usageError(`${source} has schema ${raw.schema === undefined ? '(none)' : `'${String(raw.schema)}'`}, expected ${PLAN_SCHEMA}`, {
      location: `${source}.schema`,
      hint: 'pipe the output of prov-server plan',
    })
  }
  const unsafe = plainDataProblem(record)
  if (unsafe) throw usageError(`${source} is not a usable plan: ${unsafe.message}`, { location: `${source}${fieldPath(unsafe.path)}` })
  const { action: actionSchema, envelope } = serverPlanSchemas()
  const actions: PlanAction[] = []
  if (Array.isArray(raw.actions)) {
    raw.actions.forEach((candidate, index) => {
      const where = `${source}.actions[${index}]`
      const result = actionSchema.safeParse(candidate)
      if (!result.success) {
        const issue = result.error.issues[0] as Issue
        const kind = (candidate as { action?: unknown } | null)?.action
        const badKind = issue.path.length === 1 && issue.path[0] === 'action'
        const known = issue.path[0] === 'spec' ? Object.keys(serverSpecSchemas().spec.shape) : Object.keys(actionSchema.shape)
        const { field, message, hint } = describeIssue(issue, known)
        throw usageError(`${source} action ${index + 1} is malformed: ${field.replace(/^\./, '')}: ${message}`, {
          location: `${where}${field}`,
          hint: badKind ? (didYouMean(String(kind), [...planActionKinds]) ?? `actions are ${planActionKinds.join(', ')}`) : hint,
        })
      }
      actions.push(result.data as PlanAction)
    })
  }
  const top = envelope.safeParse(record)
  if (!top.success) {
    const issue = top.error.issues[0] as Issue
    const { field, message, hint } = describeIssue(issue, Object.keys(envelope.shape))
    throw usageError(`${source} is not a complete ${PLAN_SCHEMA} record: ${field.replace(/^\./, '') || 'record'}: ${message}`, {
      location: `${source}${field}`,
      hint: hint ?? 'pipe the output of prov-server plan',
    })
  }
  return { ...(top.data as Omit<ServerPlan, 'actions'>), actions }
}

const refuse = (message: string, options: { location?: string; hint?: string } = {}) => usageError(message, options)

/**
 * Checks a parsed plan against this workspace before anything runs: every action agrees with
 * itself and with the state (exit 2; a server to delete or update that does not exist is exit 5),
 * providers accept every server, addresses stay unique, and the fingerprint still matches the
 * state and the plan's content (a plan changed after `plan`, or a stale one, is refused).
 */
export async function checkPlan(env: ServerEnv, plan: ServerPlan, source: string): Promise<void> {
  if (plan.workspace !== env.workspace.path) {
    throw usageError(`the plan is for workspace ${plan.workspace}, not ${env.workspace.path}`, {
      location: `${source}.workspace`,
      hint: 'apply it with -w pointing to that workspace, or plan again here',
    })
  }
  const state = readServerState(env.workspace).servers
  const known = knownProviders({ workspacePath: env.workspace.path, infra: plan.infra ?? env.common.infra })
  const counts = { create: 0, delete: 0, keep: 0, update: 0 }
  const deleted = new Set<string>()
  const kept = new Map<string, number>()
  const specs: ServerSpec[] = []
  const specIndex = new Map<ServerSpec, number>()
  plan.actions.forEach((action, index) => {
    const where = `${source}.actions[${index}]`
    counts[action.action]++
    if (!known.has(action.provider)) {
      throw refuse(`action ${index + 1}: unknown provider '${action.provider}'`, {
        location: `${where}.provider`,
        hint: didYouMean(action.provider, known.all()) ?? `providers: ${known.all().join(', ')}`,
      })
    }
    const needsSpec = action.action === 'create' || action.action === 'update'
    if (needsSpec !== Boolean(action.spec)) {
      throw refuse(`action ${index + 1} (${action.action} ${action.server}) ${needsSpec ? 'has no spec' : 'may not carry a spec'}`, {
        location: `${where}.spec`,
      })
    }
    if (action.start !== undefined && action.action !== 'update') {
      throw refuse(`action ${index + 1} (${action.action} ${action.server}): only an update can start a server`, { location: `${where}.start` })
    }
    if (action.spec && (action.spec.name !== action.server || action.spec.provider !== action.provider)) {
      throw refuse(
        `action ${index + 1}: its spec is for ${action.spec.provider} server '${action.spec.name}', not ${action.provider} server '${action.server}'`,
        {
          location: `${where}.spec`,
        },
      )
    }
    if (action.action === 'delete') {
      if (deleted.has(action.server)) throw refuse(`action ${index + 1}: server '${action.server}' is deleted twice`, { location: `${where}.server` })
      deleted.add(action.server)
    } else {
      const first = kept.get(action.server)
      if (first !== undefined) {
        throw refuse(`action ${index + 1}: server '${action.server}' already has action ${first + 1}`, { location: `${where}.server` })
      }
      kept.set(action.server, index)
    }
    const record = state[action.server]
    if (action.action !== 'create' && !record) {
      throw notFoundError(`action ${index + 1}: cannot ${action.action} server '${action.server}': it does not exist`, {
        location: `${where}.server`,
        hint: 'the plan does not match this workspace; run prov-server plan again',
      })
    }
    if (record && action.action !== 'create' && record.provider !== action.provider) {
      throw refuse(`action ${index + 1}: server '${action.server}' uses provider ${record.provider}, not ${action.provider}`, { location: `${where}.provider` })
    }
    if (action.action === 'keep' && deleted.has(action.server)) {
      throw refuse(`action ${index + 1}: server '${action.server}' cannot be deleted and kept`, { location: `${where}.server` })
    }
    if (action.spec) {
      specs.push(action.spec)
      specIndex.set(action.spec, index)
    }
  })
  for (const [index, action] of plan.actions.entries()) {
    if (action.action === 'update' && deleted.has(action.server)) {
      throw refuse(`action ${index + 1}: server '${action.server}' cannot be deleted and updated`, { location: `${source}.actions[${index}].server` })
    }
  }
  for (const kind of planActionKinds) {
    if (plan.summary[kind] !== counts[kind]) {
      throw refuse(`the plan's summary says ${plan.summary[kind]} ${kind}, its actions ${counts[kind]}`, { location: `${source}.summary.${kind}` })
    }
  }
  const locate = (spec: ServerSpec) => `${source}.actions[${specIndex.get(spec)}].spec`
  await checkSpecsWithProviders(env, specs, { locate, refuse })
  checkAddressCollisions(env, specs, { locate, refuse, deleted })
  if (stateFingerprint(Object.values(state), coveredByFingerprint(plan)) !== plan.state_fingerprint) {
    throw usageError('the plan is stale or was altered: it no longer matches the servers or the content it was computed with', {
      location: env.workspace.paths.servers,
      hint: `run prov-server plan${plan.infra ? ` --infra ${plan.infra}` : ''} again and apply the new plan`,
    })
  }
}
