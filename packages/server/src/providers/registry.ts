import { existsSync } from 'node:fs'
import { join } from 'node:path'
import { configError, discoverExtensions, type Extension, extensionSearchPath, findExtension } from '@prov/core'
import type { Provider } from './types'

/** Providers bundled with prov: their extension folders hold a manifest with `entry: builtin`. */
const builtins: Record<string, () => Promise<Provider>> = {
  local: () => import('./local/index').then((m) => m.localProvider),
  ssh: () => import('./ssh').then((m) => m.sshProvider),
  hcloud: () => import('./hcloud').then((m) => m.hcloudProvider as Provider),
  aws: () => import('./aws').then((m) => m.awsProvider as Provider),
  upcloud: () => import('./upcloud').then((m) => m.upcloudProvider as Provider),
}

export interface ProviderLookup {
  workspacePath?: string
  infra?: string
}

const cache = new Map<string, Promise<Provider>>()

/** Names of every provider visible from the workspace (all layers). */
export function providerNames(lookup: ProviderLookup = {}): string[] {
  const names = new Set(Object.keys(builtins))
  for (const ext of discoverExtensions('provider', { workspacePath: lookup.workspacePath, infra: lookup.infra })) names.add(ext.manifest.name)
  return [...names].sort()
}

/**
 * Which provider names exist, asked name by name: a bundled name answers without reading any
 * extension manifest (that reading is the slow part of a plan's start); the full list is read once,
 * when a name is not bundled or for a hint.
 */
export interface ProviderNameSet {
  has(name: string): boolean
  all(): string[]
}

export function knownProviders(lookup: ProviderLookup = {}): ProviderNameSet {
  let all: string[] | undefined
  const list = () => {
    all ??= providerNames(lookup)
    return all
  }
  return { has: (name) => Object.hasOwn(builtins, name) || list().includes(name), all: list }
}

export function providerExtensions(lookup: ProviderLookup = {}): Extension[] {
  return discoverExtensions('provider', { workspacePath: lookup.workspacePath, infra: lookup.infra })
}

function overriddenOutsideBundle(name: string, lookup: ProviderLookup): boolean {
  return extensionSearchPath('provider', { workspacePath: lookup.workspacePath, infra: lookup.infra })
    .filter((entry) => entry.layer !== 'bundled')
    .some((entry) => existsSync(join(entry.dir, name, 'manifest.yaml')))
}

const requiredMethods = ['validateConfig', 'list', 'create', 'delete', 'start', 'stop', 'info', 'plans', 'zones', 'price'] as const

/**
 * Loads a provider: a bundled one directly, any other from its extension folder with jiti
 * (`index.ts` or the manifest's `entry`, default export). Unknown names exit 5 with the nearest.
 */
export function loadProvider(name: string, lookup: ProviderLookup = {}): Promise<Provider> {
  const key = `${lookup.workspacePath ?? ''}\0${lookup.infra ?? ''}\0${name}`
  let pending = cache.get(key)
  if (!pending) {
    pending = resolveProvider(name, lookup)
    cache.set(key, pending)
    pending.catch(() => cache.delete(key))
  }
  return pending
}

async function resolveProvider(name: string, lookup: ProviderLookup): Promise<Provider> {
  // Fast path (cold start of `list`): a bundled provider nobody overrides needs no manifest parsing.
  // Own keys only: a name such as `constructor` is not a bundled provider.
  if (Object.hasOwn(builtins, name) && !overriddenOutsideBundle(name, lookup)) return builtins[name]()
  const ext = findExtension('provider', name, { workspacePath: lookup.workspacePath, infra: lookup.infra })
  const entryName = typeof ext.manifest.entry === 'string' ? ext.manifest.entry : 'index.ts'
  if (entryName === 'builtin') {
    const builtin = Object.hasOwn(builtins, ext.manifest.name) ? builtins[ext.manifest.name] : undefined
    if (!builtin)
      throw configError(`provider '${name}' says entry: builtin but prov has no such built-in provider`, { location: join(ext.dir, 'manifest.yaml') })
    return builtin()
  }
  const entry = join(ext.dir, entryName)
  if (!existsSync(entry))
    throw configError(`provider '${name}' has no ${entryName}`, { location: ext.dir, hint: 'a provider folder holds manifest.yaml and index.ts' })
  const { createJiti } = await import('jiti')
  const jiti = createJiti(import.meta.url, { interopDefault: true, moduleCache: false })
  let loaded: unknown
  try {
    loaded = await jiti.import(entry)
  } catch (error) {
    throw configError(`cannot load provider '${name}': ${(error as Error).message.split('\n')[0]}`, { location: entry })
  }
  const candidate = ((loaded as { default?: unknown })?.default ?? loaded) as Partial<Provider>
  const missing = requiredMethods.filter((method) => typeof candidate?.[method] !== 'function')
  if (missing.length) {
    throw configError(`provider '${name}' does not implement ${missing.join(', ')}`, { location: entry, hint: 'see docs/prov-server.md#providers' })
  }
  return {
    ...(candidate as Provider),
    name: candidate.name ?? name,
    capabilities: { start_stop: false, keep_storage: false, plans: false, zones: false, price: false, root: false, ...(candidate.capabilities ?? {}) },
  }
}
