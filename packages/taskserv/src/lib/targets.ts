import { existsSync, readFileSync } from 'node:fs'
import { join } from 'node:path'
import {
  assertSafeStructure,
  assertYamlDepth,
  configError,
  didYouMean,
  ExitCode,
  isStackOverflow,
  notFoundError,
  type ParsedInput,
  type ServerRecord,
  serversFromRecords,
  tooDeepError,
  usageError,
  type Workspace,
} from '@prov/core'
import { type Document, LineCounter, parseDocument } from 'yaml'
import { z } from 'zod/v4'
import { loadWorkspaceServers } from './remote'

/** A version asked for (`--version`, `version:` in taskservs.yaml or a cluster): one plain word. */
export const VERSION_PATTERN = /^[A-Za-z0-9][A-Za-z0-9._+~-]{0,63}$/

/** Servers from piped records: only `prov.server/v1` is accepted (anything else: exit 2). */
export function serversFromInput(input: ParsedInput): ServerRecord[] {
  return serversFromRecords(input.records)
}

/** `role=db,zone=a` -> {role: 'db', zone: 'a'} */
export function parseWhere(where: string | undefined): Record<string, string> | undefined {
  if (where === undefined) return undefined
  const out: Record<string, string> = {}
  for (const part of where.split(',').filter(Boolean)) {
    const eq = part.indexOf('=')
    if (eq <= 0) throw usageError(`--where expects label=value, got '${part}'`, { location: '--where', hint: 'for example --where role=db' })
    out[part.slice(0, eq).trim()] = part.slice(eq + 1).trim()
  }
  if (!Object.keys(out).length) throw usageError('--where is empty', { location: '--where' })
  return out
}

export const matchesLabels = (server: ServerRecord, where: Record<string, string>) =>
  Object.entries(where).every(([k, v]) => (k === 'name' ? server.name === v : String(server.labels?.[k] ?? '') === v))

/** `all` alone, wherever servers are named: every server (of the workspace, or of the piped records). */
export const isAll = (names: readonly string[]) => names.length === 1 && names[0] === 'all'

export function pickByName(all: ServerRecord[], names: string[], source = '--servers'): ServerRecord[] {
  return names.map((name) => {
    const hit = all.find((s) => s.name === name)
    if (!hit) {
      throw notFoundError(`unknown server '${name}'`, {
        location: source,
        hint:
          didYouMean(
            name,
            all.map((s) => s.name),
          ) ?? (all.length ? `servers: ${all.map((s) => s.name).join(', ')}` : 'create servers with prov-server first'),
      })
    }
    return hit
  })
}

export interface TargetOptions {
  stdin?: ParsedInput
  servers?: string
  where?: string
  workspace?: Workspace
  /** Fail when nothing selects a target (default true). */
  required?: boolean
}

/** The target servers of a command: stdin records, --servers, --where (labels), in that order of precedence. */
export function resolveTargets(options: TargetOptions): ServerRecord[] {
  const where = parseWhere(options.where)
  let servers: ServerRecord[] | undefined
  if (options.stdin) servers = serversFromInput(options.stdin)
  if (options.servers !== undefined) {
    const names = options.servers
      .split(',')
      .map((s) => s.trim())
      .filter(Boolean)
    if (!names.length) throw usageError('--servers is empty', { location: '--servers' })
    const pool = servers ?? workspaceServers(options.workspace)
    servers = isAll(names) ? pool : pickByName(pool, names)
  }
  if (where) {
    const pool = servers ?? workspaceServers(options.workspace)
    servers = pool.filter((s) => matchesLabels(s, where))
    if (!servers.length) throw notFoundError(`no server matches --where ${options.where}`, { hint: 'check the labels with prov-server list' })
  }
  if (!servers && options.required !== false) {
    throw usageError('no target servers', { hint: 'pipe prov-server list, or pass --servers a,b, --where label=value or --infra NAME' })
  }
  return dedupe(servers ?? [])
}

function dedupe(servers: ServerRecord[]): ServerRecord[] {
  const seen = new Map<string, ServerRecord>()
  for (const s of servers) if (!seen.has(s.name)) seen.set(s.name, s)
  return [...seen.values()]
}

export function workspaceServers(workspace: Workspace | undefined): ServerRecord[] {
  if (!workspace) throw usageError('no workspace: cannot look up servers by name or label', { hint: 'pass --workspace or pipe prov-server list' })
  return loadWorkspaceServers(workspace)
}

// ---------------------------------------------------------------------------------------------
// Placement: which servers a taskserv goes on (taskservs.yaml entries, cluster components).

const labelMap = z.record(
  z.string(),
  z.union([z.string(), z.number(), z.boolean()]).transform((v) => String(v)),
)
export const placementSchema = z.union([
  z.literal('all'),
  z.array(z.string().min(1)),
  z.strictObject({
    names: z.array(z.string().min(1)).optional(),
    where: labelMap.optional(),
    /** Use only the first N matching servers (by name). */
    count: z.number().int().min(1).optional(),
  }),
])
export type Placement = z.infer<typeof placementSchema>

/** Servers of a placement among a pool. */
export function placeServers(placement: Placement | undefined, pool: ServerRecord[], source: string): ServerRecord[] {
  if (placement === undefined || placement === 'all') return pool
  if (Array.isArray(placement)) return isAll(placement) ? pool : pickByName(pool, placement, source)
  let servers = placement.names && !isAll(placement.names) ? pickByName(pool, placement.names, source) : pool
  if (placement.where) servers = servers.filter((s) => matchesLabels(s, placement.where as Record<string, string>))
  servers = [...servers].sort((a, b) => a.name.localeCompare(b.name))
  if (placement.count) servers = servers.slice(0, placement.count)
  return servers
}

// ---------------------------------------------------------------------------------------------
// infra/<name>/taskservs.yaml

export const taskservEntrySchema = z.strictObject({
  name: z.string().regex(/^[a-z0-9][a-z0-9_.-]*$/, 'a taskserv name'),
  version: z.string().regex(VERSION_PATTERN, 'a version such as 1.2.3').optional(),
  servers: placementSchema.optional(),
  settings: z.record(z.string(), z.unknown()).optional(),
  role: z.string().optional(),
})
export const taskservsFileSchema = z.strictObject({
  taskservs: z.array(taskservEntrySchema),
})
export type TaskservEntry = z.infer<typeof taskservEntrySchema>

/** file:line of a path inside a YAML document. */
export function yamlLocation(file: string, doc: Document, counter: LineCounter, path: (string | number)[]): string {
  for (let depth = path.length; depth >= 0; depth--) {
    const node = doc.getIn(path.slice(0, depth), true) as { range?: [number, number, number] } | undefined
    if (node && typeof node === 'object' && node.range) return `${file}:${counter.linePos(node.range[0]).line}`
    const parent =
      depth > 0
        ? (doc.getIn(path.slice(0, depth - 1), true) as { items?: { key?: { value?: unknown; range?: [number, number, number] } }[] } | undefined)
        : undefined
    const key = parent?.items?.find((item) => item.key?.value === path[depth - 1])?.key
    if (key?.range) return `${file}:${counter.linePos(key.range[0]).line}`
  }
  return `${file}:1`
}

/** Parses and validates a YAML file against a zod schema; errors name file:line and the field. */
export function readYamlFile<T>(file: string, schema: z.ZodType<T>, what: string): T {
  if (!existsSync(file)) throw notFoundError(`no ${what}`, { location: file })
  const text = readFileSync(file, 'utf8')
  // Hostile nesting is refused before the composer (which recurses per level) sees it.
  assertYamlDepth(text, file)
  const counter = new LineCounter()
  const doc = parseDocument(text, { lineCounter: counter, prettyErrors: false, uniqueKeys: true })
  if (doc.errors[0] && isStackOverflow(doc.errors[0])) throw tooDeepError(file)
  if (doc.errors[0]) {
    const line = doc.errors[0].linePos?.[0]?.line ?? 1
    throw configError(`malformed ${what}: ${doc.errors[0].message.split('\n')[0]}`, { location: `${file}:${line}` })
  }
  let data: unknown
  try {
    data = doc.toJS({ maxAliasCount: 100 })
  } catch (error) {
    if (isStackOverflow(error)) throw tooDeepError(file)
    throw configError(`malformed ${what}: ${(error as Error).message.split('\n')[0]}`, { location: `${file}:1` })
  }
  // Settings reach scripts and merges: a prototype key is refused by name, not dropped by the schema.
  assertSafeStructure(data, { source: file, keyCode: ExitCode.CONFIG, locate: (path) => yamlLocation(file, doc, counter, path.split('.')) })
  const parsed = schema.safeParse(data ?? {})
  if (!parsed.success) {
    const issue = parsed.error.issues[0]
    const path = issue.path.filter((p): p is string | number => typeof p !== 'symbol')
    const unknownKey = issue.code === 'unrecognized_keys' ? ` '${issue.keys.join("', '")}'` : ''
    throw configError(`invalid ${what} at '${path.join('.') || '(root)'}': ${issue.message}${unknownKey}`, {
      location: yamlLocation(file, doc, counter, issue.code === 'unrecognized_keys' ? [...path, issue.keys[0]] : path),
    })
  }
  return parsed.data
}

export function infraTaskservsFile(workspace: Workspace, infra: string): string {
  return join(workspace.paths.infra, infra, 'taskservs.yaml')
}

export function readTaskservsFile(workspace: Workspace, infra: string): TaskservEntry[] {
  const file = infraTaskservsFile(workspace, infra)
  if (!existsSync(join(workspace.paths.infra, infra))) {
    throw notFoundError(`unknown infra '${infra}'`, { location: workspace.paths.infra })
  }
  const data = readYamlFile(file, taskservsFileSchema, 'taskservs.yaml')
  const names = new Set<string>()
  for (const [index, entry] of data.taskservs.entries()) {
    if (names.has(entry.name)) throw configError(`taskserv '${entry.name}' is listed twice`, { location: `${file} (taskservs[${index}])` })
    names.add(entry.name)
  }
  return data.taskservs
}
