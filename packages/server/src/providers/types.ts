import type { ServerSpec as CoreServerSpec, ServerRecord, ServerStatus, Workspace } from '@prov/core'
import type { ConsolaInstance } from 'consola'
import type { Provision } from '../dayzero/provision'

/**
 * One desired server: the fields @prov/core checks (`ServerSpec` there), plus the first-boot
 * fields of this package (docs/day-zero.md).
 */
export interface ServerSpec extends CoreServerSpec {
  /** First-boot configuration (`provision:` merged over defaults). */
  provision?: Provision
  /** Workspace-relative Butane file, instead of `provision:`. */
  butane?: string
}

export interface ProviderCapabilities {
  start_stop: boolean
  keep_storage: boolean
  plans: boolean
  zones: boolean
  price: boolean
  /** Needs to run as root on this machine. */
  root: boolean
}

export interface ProviderPlan {
  name: string
  cores: number | null
  memory_mb: number | null
  disk_gb: number | null
  description?: string
}

export interface ProviderZone {
  name: string
  description?: string
}

export interface ProviderPrice {
  plan: string
  zone: string | null
  currency: string
  hourly: number
  monthly: number
}

/** What a provider gets: workspace, its own config section, logger, and state access. */
export interface ProviderContext {
  workspace: Workspace
  /** `providers.<name>` of the resolved configuration. */
  config: Record<string, unknown>
  /** The whole resolved configuration (ssh timeouts...). */
  rootConfig: Record<string, unknown>
  log: ConsolaInstance
  /** Provider-private runtime data of a server (stored in .prov/servers.json). */
  getData(name: string): Record<string, unknown> | undefined
  /** Writes a record (and provider data) under the state lock; `mutate` sees the whole state. */
  save(record: ServerRecord, data?: Record<string, unknown>): Promise<void>
  /** Every server record of the workspace (all providers), for address allocation. */
  allServers(): ServerRecord[]
  /** Atomically picks something against the current state, then saves the record it returns. */
  allocate(fn: (all: ServerRecord[]) => ServerRecord): Promise<ServerRecord>
}

export interface DeleteOptions {
  keepStorage: boolean
}

/**
 * The provider interface (docs/prov-server.md#providers). A workspace can add its own in
 * `extensions/providers/<name>/index.ts` (default export, loaded with jiti).
 */
export interface Provider {
  name: string
  capabilities: ProviderCapabilities
  /** Problems with the provider's config section (empty when fine). */
  validateConfig(config: Record<string, unknown>): string[]
  /** Problems with one desired server for this provider (empty when fine). */
  validateSpec?(spec: ServerSpec, config: Record<string, unknown>): string[]
  /** Live status of known servers of this provider (cheap: called by `list`). */
  list(ctx: ProviderContext, records: ServerRecord[]): Promise<ServerRecord[]>
  /** Creates a server and returns its record once it is reachable over SSH. */
  create(ctx: ProviderContext, spec: ServerSpec, record: ServerRecord): Promise<ServerRecord>
  delete(ctx: ProviderContext, record: ServerRecord, options: DeleteOptions): Promise<void>
  start(ctx: ProviderContext, record: ServerRecord): Promise<ServerRecord>
  stop(ctx: ProviderContext, record: ServerRecord): Promise<ServerRecord>
  info(ctx: ProviderContext, record: ServerRecord): Promise<Record<string, unknown>>
  plans(ctx: ProviderContext): Promise<ProviderPlan[]>
  zones(ctx: ProviderContext): Promise<ProviderZone[]>
  price(ctx: ProviderContext, plan: string, zone: string | null): Promise<ProviderPrice | null>
}

export type { ServerRecord, ServerStatus }
