import { homedir } from 'node:os'
import { join } from 'node:path'
import { type CommonOptions, type ProvError, resolveWorkspace, usageError, type Workspace } from '@prov/core'
import { LayoutTarget } from './layout'
import { formatReference, type ParseOptions, parseReference, type Reference } from './ref'
import { RegistryTarget } from './registry'
import { RegistryClient, type RegistryOptions } from './registry-client'
import type { Target } from './target'
import { DEFAULT_MAX_UNPACKED_SIZE } from './types'

/** Flags shared by the commands that talk to registries. */
export const transportArgs = {
  'plain-http': { type: 'boolean', description: 'Plain HTTP for a non-loopback registry (loopback registries use it anyway)' },
  insecure: { type: 'boolean', description: 'TLS without certificate verification' },
} as const

export interface OciSettings {
  registry: string
  namespace: string
  tlsEnabled: boolean
  requireSignatures: boolean
  trustedKeys: string[]
  parallel: number
  chunkSize: number
  /** `oci.max_unpacked_size`: what one artifact may unpack to. */
  maxUnpackedSize: number
  cacheDir?: string
  /** Why pulls are refused: the mode requires signed artifacts and a later layer turned that off. */
  pullRefusal?: ProvError
  /** Mode enterprise: signatures are checked with the configured oci.trusted_keys only, never a key given on the command line. */
  trustedKeysOnly?: boolean
}

export interface OciContext {
  workspace?: Workspace
  settings: OciSettings
  dependencies: Record<string, unknown>
  parse(input: string, options?: ParseOptions): Reference
  /** The Target a reference points at (registry repository or layout). */
  target(ref: Reference): Target
  /** The content-addressed cache, scoped to a registry repository. */
  cache(ref: Reference & { type: 'registry' }): LayoutTarget
  client(registry: string): RegistryClient
  cacheRoot: string
}

/** Cache outside a workspace: `$XDG_CACHE_HOME/prov/oci`. */
export function userCacheDir(): string {
  return join(process.env.XDG_CACHE_HOME || join(homedir(), '.cache'), 'prov', 'oci')
}

/** Loads config (lazily, only commands that need it) and builds targets with the transport flags. */
export async function ociContext(common: CommonOptions, flags: { 'plain-http'?: boolean; insecure?: boolean } = {}, needConfig = true): Promise<OciContext> {
  let settings: OciSettings = {
    registry: 'localhost:5000',
    namespace: 'prov',
    tlsEnabled: true,
    requireSignatures: false,
    trustedKeys: [],
    parallel: 4,
    chunkSize: 64 * 1024 * 1024,
    maxUnpackedSize: DEFAULT_MAX_UNPACKED_SIZE,
  }
  let dependencies: Record<string, unknown> = {}
  let workspace: Workspace | undefined
  if (needConfig) {
    const { brokenModeRules, loadCommandConfig, modeRuleError } = await import('@prov/core/config')
    const loaded = await loadCommandConfig(common)
    workspace = loaded.workspace
    const oci = loaded.config.oci
    const [unsigned] = brokenModeRules(loaded.config, ['oci.require_signatures'])
    settings = {
      registry: oci.registry,
      namespace: oci.namespace,
      tlsEnabled: oci.tls_enabled,
      requireSignatures: oci.require_signatures,
      trustedKeys: oci.trusted_keys,
      parallel: oci.parallel,
      chunkSize: oci.chunk_size,
      maxUnpackedSize: oci.max_unpacked_size,
      cacheDir: oci.cache_dir,
      ...(unsigned ? { pullRefusal: modeRuleError(unsigned) } : {}),
      trustedKeysOnly: loaded.config.mode === 'enterprise',
    }
    dependencies = loaded.config.dependencies
  } else {
    workspace = resolveWorkspace(common.workspace)
  }
  if (common.parallel) settings.parallel = common.parallel
  const cacheRoot = process.env.PROV_OCI_CACHE || settings.cacheDir || (workspace ? workspace.paths.ociCache : userCacheDir())
  const clients = new Map<string, RegistryClient>()
  const registryOptions: RegistryOptions = {
    plainHttp: Boolean(flags['plain-http']) || !settings.tlsEnabled,
    insecure: Boolean(flags.insecure),
    chunkSize: settings.chunkSize,
  }
  const client = (registry: string) => {
    let c = clients.get(registry)
    if (!c) {
      c = new RegistryClient(registry, registryOptions)
      clients.set(registry, c)
    }
    return c
  }
  return {
    workspace,
    settings,
    dependencies,
    cacheRoot,
    client,
    parse: (input, options = {}) => parseReference(input, { defaultRegistry: settings.registry, defaultNamespace: settings.namespace, ...options }),
    target: (ref) => (ref.type === 'layout' ? new LayoutTarget(ref.path) : new RegistryTarget(client(ref.registry), ref.repository)),
    cache: (ref) => new LayoutTarget(cacheRoot, `${ref.registry}/${ref.repository}`, 'cache'),
  }
}

/** tag or digest of a reference (a reference without either is a usage error). */
export function referenceName(ref: Reference): string {
  const name = ref.digest ?? ref.tag
  if (!name) throw usageError(`reference '${formatReference(ref)}' needs a :tag or @sha256:digest`)
  return name
}
