import { existsSync } from 'node:fs'
import { join } from 'node:path'
import {
  type ArgsDef,
  configError,
  confirmOrCancel,
  failedError,
  type ProvContext,
  type ServerRecord,
  type SshTarget,
  usageError,
  type Workspace,
} from '@prov/core'
import { type CommandConfig, loadCommandConfig, parseSetFlags } from '@prov/core/config'
import { ENV_NAME_PATTERN, settingKeyProblem, type TaskAction, type TaskItem, type TaskResult } from '../engine'
import { type Catalog, loadCatalog } from './catalog'
import { type BuiltPlan, buildPlan, type PlacedTaskserv } from './plan'
import { sshTarget } from './remote'
import { readState, type TaskservState } from './state'
import { placeServers, readTaskservsFile, resolveTargets, VERSION_PATTERN, workspaceServers } from './targets'

/** Flags shared by the commands that act on servers. */
export const targetArgs = {
  servers: { type: 'string', description: "Target servers by name: a,b ('all': every server of the workspace)", valueHint: 'a,b|all' },
  where: { type: 'string', description: 'Target servers by label: role=db[,zone=x]', valueHint: 'label=value' },
  timeout: { type: 'string', description: 'Seconds a script may run (default taskservs.timeout)', valueHint: 'S' },
} as const satisfies ArgsDef

export const settingArgs = {
  set: { type: 'string', description: 'Setting for the named taskservs: key=value (repeat or comma-separate)', valueHint: 'k=v' },
  version: { type: 'string', description: 'Desired version of the named taskservs (PROV_VERSION)' },
} as const satisfies ArgsDef

export interface Prepared {
  config: CommandConfig
  workspace: Workspace | undefined
  catalog: Catalog
  state: TaskservState
}

export async function prepare(ctx: ProvContext<any>): Promise<Prepared> {
  const config = await loadCommandConfig(ctx.common)
  // Every script gets these variables: a name no shell variable can have is a configuration error.
  for (const key of Object.keys(config.config.taskservs.env)) {
    if (!ENV_NAME_PATTERN.test(key))
      throw configError(`invalid variable name '${key}' in taskservs.env`, { location: 'taskservs.env', hint: 'letters, digits and _' })
  }
  const workspace = config.workspace
  const catalog = loadCatalog(workspace?.path, ctx.common.infra)
  return { config, workspace, catalog, state: readState(workspace?.paths) }
}

export function parseTimeout(value: unknown): number | undefined {
  if (value === undefined || value === '') return undefined
  const n = Number(value)
  if (!Number.isFinite(n) || n <= 0) throw usageError(`--timeout must be a positive number of seconds, got '${String(value)}'`, { location: '--timeout' })
  return n
}

export function parseSettings(value: unknown): Record<string, unknown> | undefined {
  if (value === undefined) return undefined
  const words = (Array.isArray(value) ? value : [value]).flatMap((v) => String(v).split(/,(?=[A-Za-z0-9_.-]+=)/))
  for (const w of words) if (!/^[A-Za-z0-9_.-]+=/.test(w)) throw usageError(`--set expects key=value, got '${w}'`, { location: '--set' })
  const keys = Object.fromEntries(words.map((w) => [w.slice(0, w.indexOf('=')), true]))
  const problem = settingKeyProblem(keys)
  if (problem) throw usageError(`--set: ${problem}`, { location: '--set' })
  return parseSetFlags(words)
}

export function parseVersion(value: unknown): string | undefined {
  if (value === undefined) return undefined
  const version = String(value)
  if (!VERSION_PATTERN.test(version))
    throw usageError(`--version must be a version such as 1.2.3, got '${version}'`, { location: '--version', hint: 'letters, digits and . _ + ~ -' })
  return version
}

export interface TargetChoice {
  /** Fail when nothing selects a target (default true). */
  required?: boolean
  /** Nothing selects a target: every server of the workspace (status, health). */
  defaultAll?: boolean
}

/** Servers from stdin / --servers / --where (`--servers all`: every one); see TargetChoice for none. */
export async function targetsOf(ctx: ProvContext<any>, prepared: Prepared, choice: TargetChoice = {}): Promise<ServerRecord[]> {
  const stdin = await ctx.stdin()
  const servers = ctx.args.servers as string | undefined
  const where = ctx.args.where as string | undefined
  if (choice.defaultAll && stdin === undefined && servers === undefined && where === undefined) return workspaceServers(prepared.workspace)
  return resolveTargets({ stdin, servers, where, workspace: prepared.workspace, required: choice.required })
}

/** taskservs.yaml placements of an infra (names filter the entries; the server pool may be narrowed). */
export function infraPlacements(prepared: Prepared, infra: string, names: string[], pool?: ServerRecord[]): PlacedTaskserv[] {
  if (!prepared.workspace) throw usageError('--infra needs a workspace', { hint: 'pass --workspace' })
  const entries = readTaskservsFile(prepared.workspace, infra)
  const servers = pool ?? workspaceServers(prepared.workspace).filter((s) => !s.infra || s.infra === infra)
  const chosen = names.length ? entries.filter((e) => names.includes(e.name.split('@')[0])) : entries
  for (const n of names) {
    if (!entries.some((e) => e.name === n))
      throw usageError(`taskserv '${n}' is not in infra/${infra}/taskservs.yaml`, { hint: `listed there: ${entries.map((e) => e.name).join(', ')}` })
  }
  return chosen.map((e) => ({
    name: e.name,
    servers: placeServers(e.servers, servers, `infra/${infra}/taskservs.yaml (${e.name})`),
    settings: e.settings,
    version: e.version,
  }))
}

/** The plan for a command over direct targets or an infra's taskservs.yaml. */
export async function planFor(
  ctx: ProvContext<any>,
  prepared: Prepared,
  action: TaskAction,
  options: { expand: boolean; itemEnv?: Record<string, string>; names?: string[]; defaultAll?: boolean } = { expand: false },
): Promise<BuiltPlan<SshTarget> & { placed: boolean }> {
  const names = options.names ?? ctx.positionals
  const infra = ctx.common.infra
  const stdin = await ctx.stdin()
  const direct = stdin !== undefined || ctx.args.servers !== undefined || ctx.args.where !== undefined
  const placed = Boolean(infra && prepared.workspace && !direct && existsSync(join(prepared.workspace.paths.infra, infra, 'taskservs.yaml')))
  const targets = placed
    ? { requests: [], placements: infraPlacements(prepared, infra as string, names) }
    : { requests: names, servers: await targetsOf(ctx, prepared, { defaultAll: options.defaultAll }) }
  const built = buildPlan<SshTarget>(
    {
      catalog: prepared.catalog,
      action,
      ...targets,
      version: parseVersion(ctx.args.version),
      settings: parseSettings(ctx.args.set === undefined ? undefined : ctx.values('set')),
      state: prepared.state,
      expand: options.expand,
      check: ctx.common.check,
      itemEnv: options.itemEnv,
    },
    sshTarget,
  )
  return { ...built, placed }
}

/**
 * Confirmation of a destructive action (remove, restart) before anything connects: --yes goes on,
 * no terminal on stdin refuses (exit 2), a terminal is asked what will happen where.
 */
export async function confirmAction(ctx: ProvContext<any>, verb: string, items: TaskItem<SshTarget>[], subject = 'taskservs'): Promise<void> {
  const where = new Map<string, string[]>()
  for (const item of items) where.set(item.unit.name, [...(where.get(item.unit.name) ?? []), item.host.name])
  const question = `${verb} ${[...where].map(([name, servers]) => `${name} on ${servers.join(', ')}`).join('; ')}?`
  await confirmOrCancel({ yes: ctx.common.yes, what: `${verb} ${subject}`, question })
}

/** Streams results with --out ndjson, collects them otherwise. */
export function resultWriter(ctx: ProvContext<any>) {
  const writer = ctx.writer()
  return {
    write: (result: TaskResult) => writer.write(result),
    end: () => writer.end(),
  }
}
