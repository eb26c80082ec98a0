import type { ServerSpec as CoreServerSpec, ServerRecord, ServerStatus, Workspace } from '@prov/core'
import type { ProvConfig } from '@prov/core/config'
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

/** `providers.local` as the configuration schema validated it (defaults applied). */
export type LocalProviderConfig = ProvConfig['providers']['local']

/** A provider's own section `providers.<name>`: typed for bundled providers, free-form for others. */
export type ProviderConfig = Record<string, unknown>

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

/**
 * What a provider gets: workspace, its own config section, logger, and state access. `C` is the
 * type of its section; the configuration was validated before, so a provider reads it as it is
 * (no defaults of its own).
 */
export interface ProviderContext<C = ProviderConfig> {
  workspace: Workspace
  /** `providers.<name>` of the resolved configuration. */
  config: C
  /** The whole resolved configuration (ssh timeouts...). */
  rootConfig: ProvConfig
  log: ConsolaInstance
  /** Provider-private runtime data of a server (stored in .prov/servers.json). */
  getData(name: string): Record<string, unknown> | undefined
  /** Writes a record (and provider data, when given) under the state lock. */
  save(record: ServerRecord, data?: Record<string, unknown>): Promise<void>
  /** Every server record of the workspace (all providers), for address allocation. */
  allServers(): ServerRecord[]
  /** Atomically picks something against the current state, then saves the record it returns. */
  allocate(fn: (all: ServerRecord[]) => ServerRecord): Promise<ServerRecord>
}

/** What `create` hands a provider besides the spec. */
export interface CreateOptions {
  /**
   * The server's first-boot document (cloud-init or Ignition, secrets resolved) as the machine
   * reads it; absent when the server declares no provision:/butane:.
   */
  userData?: string
  /** Its format, for providers that pass the two differently. */
  userDataFormat?: 'ignition' | 'cloud-init'
}

export interface DeleteOptions {
  keepStorage: boolean
}

/**
 * The provider interface (docs/prov-server.md#providers). A workspace can add its own in
 * `extensions/providers/<name>/index.ts` (default export, loaded with jiti).
 */
export interface Provider<C = ProviderConfig> {
  name: string
  capabilities: ProviderCapabilities
  /** Problems with the provider's config section (empty when fine). */
  validateConfig(config: C): string[]
  /**
   * Problems with one desired server for this provider (empty when fine). May throw a ProvError
   * of its own kind (e.g. not found for an unknown image, with the names there are).
   */
  validateSpec?(spec: ServerSpec, config: C, where?: { workspacePath?: string }): string[]
  /**
   * Read-only checks of desired servers against what the provider offers (plans, zones, images),
   * run when a plan is made (also under --check): an unknown value is exit 2 naming the valid ones.
   */
  checkSpecs?(ctx: ProviderContext<C>, specs: ServerSpec[]): Promise<void>
  /** Live status of known servers of this provider (cheap: called by `list`). */
  list(ctx: ProviderContext<C>, records: ServerRecord[]): Promise<ServerRecord[]>
  /**
   * Creates a server and returns its record once it is ready (reachable over SSH by default). A
   * provider that makes remote resources finds one it made before by its labels and adopts it.
   */
  create(ctx: ProviderContext<C>, spec: ServerSpec, record: ServerRecord, options?: CreateOptions): Promise<ServerRecord>
  delete(ctx: ProviderContext<C>, record: ServerRecord, options: DeleteOptions): Promise<void>
  start(ctx: ProviderContext<C>, record: ServerRecord): Promise<ServerRecord>
  stop(ctx: ProviderContext<C>, record: ServerRecord): Promise<ServerRecord>
  info(ctx: ProviderContext<C>, record: ServerRecord): Promise<Record<string, unknown>>
  plans(ctx: ProviderContext<C>): Promise<ProviderPlan[]>
  zones(ctx: ProviderContext<C>): Promise<ProviderZone[]>
  price(ctx: ProviderContext<C>, plan: string, zone: string | null): Promise<ProviderPrice | null>
}

export type { ServerRecord, ServerStatus }
