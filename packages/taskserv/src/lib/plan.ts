import { configError, type DependencyNode, didYouMean, PROV_VERSION, parseRequest, resolveDependencies, type ServerRecord, usageError } from '@prov/core'
import { settingKeyProblem, settingTypeProblem, type TaskAction, type TaskItem, type TaskUnit } from '../engine'
import { type Catalog, type CatalogEntry, catalogNodes, requireKnown } from './catalog'
import type { TaskservState } from './state'

export const PLAN_SCHEMA = 'prov.taskserv.plan/v1'

/** One taskserv placed on a set of servers with its settings. */
export interface PlacedTaskserv {
  name: string
  servers: ServerRecord[]
  settings?: Record<string, unknown>
  version?: string
}

export interface PlanServerAction {
  name: string
  version: string
  level: number
  /** What will happen: install (or update) unless the state says it is there, then `check` (ok expected). */
  action: string
  reason: string
}

export interface TaskservPlan {
  schema: typeof PLAN_SCHEMA
  action: TaskAction
  requested: string[]
  added: string[]
  levels: string[][]
  servers: { server: string; ip_address?: string; taskservs: PlanServerAction[] }[]
  check: boolean
}

export interface BuiltPlan<T> {
  plan: TaskservPlan
  levels: TaskItem<T>[][]
}

export interface PlanInput {
  catalog: Catalog
  action: TaskAction
  /** Requested names (`name` or `name@range`). */
  requests: string[]
  /** Direct targets: every requested taskserv (and its requirements) goes on each of them. */
  servers?: ServerRecord[]
  /** Placed mode (taskservs.yaml, clusters): requirements may be satisfied on other servers. */
  placements?: PlacedTaskserv[]
  /** --version: desired version of the requested taskservs. */
  version?: string
  /** --set key=value settings for the requested taskservs. */
  settings?: Record<string, unknown>
  state: TaskservState
  /** Expand requirements (install: yes; remove, status...: no). */
  expand: boolean
  check: boolean
  /** Extra environment per item. */
  itemEnv?: Record<string, string>
}

/** Host environment: the address and labels of the server. */
export function hostEnv(server: ServerRecord): Record<string, string> {
  const env: Record<string, string> = { PROV_SERVER_IP: server.ip_address ?? '', PROV_SERVER_HOSTNAME: server.hostname ?? server.name }
  for (const [k, v] of Object.entries(server.labels ?? {})) env[`PROV_LABEL_${k.replace(/[^A-Za-z0-9]+/g, '_').toUpperCase()}`] = String(v)
  return env
}

function installedNodes(catalog: Catalog, state: TaskservState, server: string): DependencyNode[] {
  return Object.entries(state.servers[server] ?? {}).map(([name, entry]) => {
    const manifest = catalog.get(name)?.manifest
    return { name, version: entry.version, requires: {}, conflicts: manifest?.conflicts ?? [], provides: manifest?.provides ?? [] }
  })
}

/** `{{hosts.webapp}}`, `{{hosts.webapp:8080}}`, `{{host.postgres}}` in settings: addresses of placed servers. */
export function interpolateSettings(settings: Record<string, unknown>, placed: Map<string, ServerRecord[]>, where: string): Record<string, unknown> {
  const out: Record<string, unknown> = {}
  for (const [key, value] of Object.entries(settings)) {
    if (typeof value !== 'string' || !value.includes('{{')) {
      out[key] = value
      continue
    }
    out[key] = value.replace(/\{\{\s*(hosts?)\.([a-z0-9_.-]+?)(?::(\d+))?\s*\}\}/g, (_match, kind: string, name: string, port?: string) => {
      const servers = placed.get(name)
      if (!servers?.length) throw configError(`setting '${key}' of ${where} refers to '${name}', which is placed on no server`, { hint: `place ${name} too` })
      const addresses = servers.map((s) => `${s.ip_address ?? s.name}${port ? `:${port}` : ''}`)
      return kind === 'host' ? addresses[0] : addresses.join(',')
    })
    if (/\{\{/.test(out[key] as string))
      throw configError(`unknown reference in setting '${key}' of ${where}: ${String(out[key])}`, {
        hint: 'use {{host.NAME}}, {{hosts.NAME}} or {{hosts.NAME:PORT}}',
      })
  }
  return out
}

/**
 * Why settings do not suit a taskserv, or undefined: names no variable can carry, and — when its
 * manifest declares `setting_types` — names it does not know and values that do not fit their type.
 * A value is never repeated in the message (it may be a password).
 */
export function settingsProblem(entry: CatalogEntry | undefined, settings: Record<string, unknown>): string | undefined {
  const keyProblem = settingKeyProblem(settings)
  if (keyProblem || !entry) return keyProblem && `${keyProblem}${entry ? ` (taskserv ${entry.name})` : ''}`
  const types = entry.settingTypes
  if (!types) return undefined
  for (const [key, value] of Object.entries(settings)) {
    const type = types[key]
    if (!type && !(key in entry.settings)) {
      const known = [...new Set([...Object.keys(entry.settings), ...Object.keys(types)])]
      return `unknown setting '${key}' for taskserv ${entry.name}; ${didYouMean(key, known) ?? `it knows ${known.join(', ')}`}`
    }
    const problem = type && settingTypeProblem(type, value)
    if (problem) return `setting '${key}' of ${entry.name} ${problem}`
  }
  return undefined
}

/** Settings with their placement references resolved, checked against the taskserv (exit 3). */
function checkedSettings(entry: CatalogEntry, merged: Record<string, unknown>, placed: Map<string, ServerRecord[]>): Record<string, unknown> {
  const settings = interpolateSettings(merged, placed, `taskserv ${entry.name}`)
  const problem = settingsProblem(entry, settings)
  if (problem) throw configError(problem, { hint: `see the manifest of ${entry.name}: ${entry.dir}/manifest.yaml` })
  return settings
}

/** Expands, orders and places taskservs; the result is a plan record and the engine's levels. */
export function buildPlan<T>(input: PlanInput, targetOf: (server: ServerRecord) => T): BuiltPlan<T> {
  const { catalog } = input
  const requests = input.placements ? input.placements.map((p) => p.name) : input.requests
  if (!requests.length) throw usageError('name at least one taskserv', { hint: 'for example: prov-taskserv install redis' })
  requireKnown(catalog, requests)
  const nodes = catalogNodes(catalog)
  const full = resolveDependencies(requests, nodes, { provVersion: PROV_VERSION })
  const requestedNames = new Set(requests.map((r) => parseRequest(r).name))
  // Only install expands requirements; the others act on the named taskservs, in the same order
  // (remove: dependents first).
  const keep = (n: string) => input.expand || requestedNames.has(n)
  const orderedLevels = full.levels.map((level) => level.filter(keep)).filter((level) => level.length)
  if (input.action === 'remove') orderedLevels.reverse()
  const resolution = { levels: orderedLevels, order: orderedLevels.flat(), added: input.expand ? full.added : [] }
  const levelOf = new Map<string, number>()
  resolution.levels.forEach((names, index) => {
    for (const n of names) levelOf.set(n, index)
  })

  // Where each taskserv goes.
  const placed = new Map<string, ServerRecord[]>()
  const settingsOf = new Map<string, Record<string, unknown>>()
  const versionOf = new Map<string, string>()
  if (input.placements) {
    for (const p of input.placements) {
      placed.set(p.name, p.servers)
      if (p.settings) settingsOf.set(p.name, p.settings)
      if (p.version) versionOf.set(p.name, p.version)
    }
    // A requirement placed nowhere goes where its dependents are.
    for (const name of [...resolution.order].reverse()) {
      if (placed.has(name)) continue
      const hosts = new Map<string, ServerRecord>()
      for (const [other, servers] of placed) {
        if (catalog.get(other)?.manifest.requires?.[name] !== undefined) for (const s of servers) hosts.set(s.name, s)
      }
      placed.set(name, [...hosts.values()])
    }
  } else {
    for (const name of resolution.order) placed.set(name, input.servers ?? [])
  }
  for (const name of requestedNames) {
    if (input.version) versionOf.set(name, input.version)
    if (input.settings) {
      const problem = settingsProblem(catalog.get(name), input.settings)
      if (problem) throw usageError(`--set: ${problem}`, { location: '--set' })
      settingsOf.set(name, { ...settingsOf.get(name), ...input.settings })
    }
  }

  // Conflicts with what each server already has (from the workspace state; no SSH).
  const allServers = new Map<string, ServerRecord>()
  for (const servers of placed.values()) for (const s of servers) allServers.set(s.name, s)
  if (input.action === 'install') {
    for (const server of allServers.values()) {
      const here = [...placed].filter(([, servers]) => servers.some((s) => s.name === server.name)).map(([n]) => n)
      const installed = installedNodes(catalog, input.state, server.name).filter((n) => !here.includes(n.name))
      try {
        resolveDependencies(here, nodes, { installed, expand: false })
      } catch (error) {
        const message = (error as Error).message
        if (/conflict/.test(message))
          throw configError(`${message} on server ${server.name}`, { location: server.name, hint: (error as { hint?: string }).hint })
        if (!/requires|not in the set/.test(message)) throw error
      }
    }
  }

  const placedEnv = new Map<string, Record<string, unknown>>()
  const items: TaskItem<T>[][] = resolution.levels.map(() => [])
  const perServer = new Map<string, PlanServerAction[]>()
  for (const name of resolution.order) {
    const entry = catalog.get(name)
    if (!entry) continue
    const level = levelOf.get(name) ?? 0
    const version = versionOf.get(name) ?? entry.version
    const settings = checkedSettings(entry, { ...entry.settings, ...settingsOf.get(name) }, placed)
    placedEnv.set(name, settings)
    const unit: TaskUnit = {
      name,
      version,
      dir: entry.dir,
      settings,
      services: entry.services,
      ...(entry.settingTypes ? { settingTypes: entry.settingTypes } : {}),
    }
    const requires = Object.keys(entry.manifest.requires ?? {}).filter((d) => placed.has(d))
    for (const server of placed.get(name) ?? []) {
      const known = input.state.servers[server.name]?.[name]
      const reason =
        input.action === 'install'
          ? known
            ? known.version === version
              ? 'recorded as installed: check.sh decides'
              : `recorded ${known.version}, wanted ${version}`
            : requestedNames.has(name)
              ? 'requested'
              : `required by ${[...requestedNames].filter((r) => catalog.get(r)?.manifest.requires?.[name] !== undefined).join(', ') || 'a requested taskserv'}`
          : input.action
      const list = perServer.get(server.name) ?? []
      list.push({ name, version, level, action: input.action === 'install' && known?.version === version ? 'check' : input.action, reason })
      perServer.set(server.name, list)
      // Other actions use the settings recorded at install (secret references stay references).
      // manifest defaults < what the install used (recorded) < what is given now, interpolated and checked alike.
      const recorded = input.action !== 'install' && known?.settings ? known.settings : undefined
      const hostUnit = recorded ? { ...unit, settings: checkedSettings(entry, { ...entry.settings, ...recorded, ...settingsOf.get(name) }, placed) } : unit
      items[level].push({
        host: { name: server.name, target: targetOf(server), env: hostEnv(server) },
        unit: hostUnit,
        action: input.action,
        dependsOn: requires,
        env: input.itemEnv,
      })
    }
  }
  const plan: TaskservPlan = {
    schema: PLAN_SCHEMA,
    action: input.action,
    requested: [...requestedNames],
    added: resolution.added,
    levels: resolution.levels,
    servers: [...allServers.values()]
      .sort((a, b) => a.name.localeCompare(b.name))
      .map((s) => ({ server: s.name, ...(s.ip_address ? { ip_address: s.ip_address } : {}), taskservs: perServer.get(s.name) ?? [] })),
    check: input.check,
  }
  return { plan, levels: items.filter((level) => level.length) }
}
