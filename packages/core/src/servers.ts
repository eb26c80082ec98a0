import { createHash } from 'node:crypto'
import { notFoundError, usageError } from './errors'
import { zodLib } from './lazy'
import { type WorkspacePaths, workspacePaths } from './paths'
import { readJsonFile, updateJsonFile } from './state'
import { expectSchema } from './stdin'
import { didYouMean } from './suggest'
import { serialised } from './util/queue'

/** Schema id of one server record (docs/json-contract.md). */
export const SERVER_SCHEMA = 'prov.server/v1'

export const serverStatuses = ['running', 'stopped', 'creating', 'error', 'unknown'] as const
export type ServerStatus = (typeof serverStatuses)[number]

/** Server names: usable as hostnames, file names and in namespace names. */
export const serverNamePattern = /^[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?$/

function buildServerRecordSchema() {
  const { z } = zodLib()
  return z.looseObject({
    schema: z.literal(SERVER_SCHEMA),
    name: z.string().regex(serverNamePattern, 'a hostname-like name: lower-case letters, digits and -'),
    provider: z.string().min(1),
    status: z.enum(serverStatuses),
    hostname: z.string(),
    ip_address: z.string(),
    ssh: z.looseObject({ user: z.string().min(1), port: z.number().int().min(1).max(65535) }),
    labels: z.record(z.string(), z.string()),
    infra: z.string().nullable(),
    cores: z.number().nullable(),
    memory_mb: z.number().nullable(),
    disk_gb: z.number().nullable(),
    zone: z.string().nullable(),
    plan: z.string().nullable(),
    image: z.string().nullable(),
    created_at: z.string(),
  })
}

let builtRecordSchema: ReturnType<typeof buildServerRecordSchema> | undefined
/** The zod schema of a server record (built on first use: zod loads only when needed). */
export function serverRecordSchema(): ReturnType<typeof buildServerRecordSchema> {
  builtRecordSchema ??= buildServerRecordSchema()
  return builtRecordSchema
}

/** One server as every prov binary sees it (`prov.server/v1`). */
export interface ServerRecord {
  schema: typeof SERVER_SCHEMA
  name: string
  provider: string
  status: ServerStatus
  hostname: string
  ip_address: string
  ssh: { user: string; port: number }
  labels: Record<string, string>
  infra: string | null
  cores: number | null
  memory_mb: number | null
  disk_gb: number | null
  zone: string | null
  plan: string | null
  image: string | null
  created_at: string
}

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

/** Provider-private data of a server (e.g. sandbox pids). */
export function getProviderData<T extends Record<string, unknown>>(workspace: WorkspaceRef, name: string): T | undefined {
  return readServerState(workspace).provider_data[name] as T | undefined
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

/**
 * A fingerprint of the server state a plan was computed from: plans carry it, and apply
 * refuses a plan whose fingerprint no longer matches (state changed since planning).
 */
export function stateFingerprint(records: Iterable<ServerRecord>): string {
  const lines = [...records].map((r) => JSON.stringify([r.name, r.provider, r.status, r.ip_address, r.ssh?.port, r.created_at])).sort()
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
