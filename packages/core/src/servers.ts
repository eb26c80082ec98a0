import { createHash } from 'node:crypto'
import { notFoundError, usageError } from './errors'
import { type WorkspacePaths, workspacePaths } from './paths'
import { SERVER_SCHEMA, type ServerRecord, serverRecordSchema } from './server-schema'
import { readJsonFile, updateJsonFile } from './state'
import { expectSchema } from './stdin'
import { didYouMean } from './suggest'
import { serialised } from './util/queue'

export * from './server-schema'

/**
 * `.prov/servers.json`: the records plus provider-private runtime data (pids, namespaces...),
 * kept apart so records stay clean when emitted.
 */
export interface ServerState {
  version: 1
  servers: Record<string, ServerRecord>
  provider_data: Record<string, Record<string, unknown>>
}

export type WorkspaceRef = string | { paths: WorkspacePaths } | WorkspacePaths

function pathsOf(workspace: WorkspaceRef): WorkspacePaths {
  if (typeof workspace === 'string') return workspacePaths(workspace)
  return 'paths' in workspace ? workspace.paths : workspace
}

const emptyState = (): ServerState => ({ version: 1, servers: {}, provider_data: {} })

function normalise(state: Partial<ServerState> | undefined): ServerState {
  return {
    version: 1,
    servers: state?.servers && typeof state.servers === 'object' ? state.servers : {},
    provider_data: state?.provider_data && typeof state.provider_data === 'object' ? state.provider_data : {},
  }
}

/** The whole state file (read without the lock: writes are atomic renames). */
export function readServerState(workspace: WorkspaceRef): ServerState {
  return normalise(readJsonFile<Partial<ServerState>>(pathsOf(workspace).servers, emptyState()))
}

/** Locked read-modify-write of the server state: concurrent creates never lose a server. */
export async function updateServerState(
  workspace: WorkspaceRef,
  update: (state: ServerState) => ServerState | void | Promise<ServerState | void>,
): Promise<ServerState> {
  const file = pathsOf(workspace).servers
  return serialised(file, () =>
    updateJsonFile<ServerState>(file, emptyState(), async (current) => {
      const state = normalise(current)
      return (await update(state)) ?? state
    }),
  )
}

/** All known servers, sorted by name. */
export function listServers(workspace: WorkspaceRef): ServerRecord[] {
  return Object.values(readServerState(workspace).servers).sort((a, b) => a.name.localeCompare(b.name))
}

/** One server by name; exit 5 with the nearest names when unknown. */
export function getServer(workspace: WorkspaceRef, name: string): ServerRecord {
  const state = readServerState(workspace)
  const record = state.servers[name]
  if (!record) {
    const names = Object.keys(state.servers)
    throw notFoundError(`unknown server '${name}'`, {
      location: pathsOf(workspace).servers,
      hint: didYouMean(name, names) ?? (names.length ? `known servers: ${names.sort().join(', ')}` : 'no servers exist yet; see prov-server plan/apply'),
    })
  }
  return record
}

/** Adds or replaces a server record (and optionally its provider data) under the lock. */
export async function putServer(workspace: WorkspaceRef, record: ServerRecord, providerData?: Record<string, unknown>): Promise<void> {
  await updateServerState(workspace, (state) => {
    state.servers[record.name] = record
    if (providerData !== undefined) state.provider_data[record.name] = providerData
  })
}

/** Forgets a server (no error when it is already gone). */
export async function removeServer(workspace: WorkspaceRef, name: string): Promise<void> {
  await updateServerState(workspace, (state) => {
    delete state.servers[name]
    delete state.provider_data[name]
  })
}

/**
 * Validates piped records as `prov.server/v1` (exit 2 on another schema or a malformed record).
 * `source` names the input in messages.
 */
export function serversFromRecords(records: unknown[], source = 'stdin'): ServerRecord[] {
  return expectSchema(records, [SERVER_SCHEMA], source).map((record, index) => {
    const parsed = serverRecordSchema().safeParse(record)
    if (!parsed.success) {
      const issue = parsed.error.issues[0]
      const field = issue.path.join('.')
      throw usageError(`${source} record ${index + 1} is not a valid ${SERVER_SCHEMA} record: ${field ? `${field}: ` : ''}${issue.message}`, {
        location: `${source}[${index}]${field ? `.${field}` : ''}`,
      })
    }
    return parsed.data as unknown as ServerRecord
  })
}

/** JSON with object keys sorted at every level: equal data gives equal text. Depth-bounded input only. */
function canonicalJson(value: unknown): string {
  if (Array.isArray(value)) return `[${value.map(canonicalJson).join(',')}]`
  if (value && typeof value === 'object') {
    const entries = Object.entries(value)
      .filter(([, v]) => v !== undefined)
      .sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0))
    return `{${entries.map(([k, v]) => `${JSON.stringify(k)}:${canonicalJson(v)}`).join(',')}}`
  }
  return JSON.stringify(value) ?? 'null'
}

/**
 * A fingerprint of the server state a plan was computed from and of what the plan says (its
 * actions, summary, source): plans carry it, and apply refuses a plan whose fingerprint no longer
 * matches, because servers changed since planning or the plan was edited afterwards. `covered`
 * must be depth-bounded (validated) data.
 */
export function stateFingerprint(records: Iterable<ServerRecord>, covered?: unknown): string {
  const lines = [...records].map((r) => JSON.stringify([r.name, r.provider, r.status, r.ip_address, r.ssh?.port, r.created_at])).sort()
  if (covered !== undefined) lines.push(canonicalJson(covered))
  return `sha256:${createHash('sha256').update(lines.join('\n')).digest('hex')}`
}

/** A blank record with the required fields filled (providers complete it). */
export function newServerRecord(fields: Partial<ServerRecord> & { name: string; provider: string }): ServerRecord {
  const { name, provider, ...rest } = fields
  return {
    schema: SERVER_SCHEMA,
    name,
    provider,
    status: 'creating',
    hostname: name,
    ip_address: '',
    ssh: { user: 'root', port: 22 },
    labels: {},
    infra: null,
    cores: null,
    memory_mb: null,
    disk_gb: null,
    zone: null,
    plan: null,
    image: null,
    created_at: new Date().toISOString(),
    ...rest,
  }
}
