import { join } from 'node:path'
import {
  bundledExtensionsDir,
  type DependencyNode,
  didYouMean,
  discoverExtensions,
  type Extension,
  type ExtensionManifest,
  notFoundError,
  parseRequest,
} from '@prov/core'

/** One taskserv of the catalog (the winner across the extension layers). */
export interface CatalogEntry {
  name: string
  version: string
  dir: string
  layer: Extension['layer']
  manifest: ExtensionManifest & { settings?: Record<string, unknown>; services?: string[]; packages?: string[] }
  /** Default settings from the manifest. */
  settings: Record<string, unknown>
  services: string[]
}

export type Catalog = Map<string, CatalogEntry>

export function loadCatalog(workspacePath?: string, infra?: string): Catalog {
  const catalog: Catalog = new Map()
  for (const ext of discoverExtensions('taskserv', { workspacePath, infra })) {
    const manifest = ext.manifest as CatalogEntry['manifest']
    const settings = manifest.settings && typeof manifest.settings === 'object' && !Array.isArray(manifest.settings) ? manifest.settings : {}
    const services = Array.isArray(manifest.services) ? manifest.services.filter((s): s is string => typeof s === 'string') : [manifest.name]
    catalog.set(manifest.name, { name: manifest.name, version: manifest.version, dir: ext.dir, layer: ext.layer, manifest, settings, services })
  }
  return catalog
}

export function catalogNodes(catalog: Catalog): Map<string, DependencyNode> {
  return new Map([...catalog].map(([name, entry]) => [name, entry.manifest as DependencyNode]))
}

/** The shared script library uploaded with every taskserv (extensions/taskservs/_lib). */
export function libDir(): string {
  return join(bundledExtensionsDir(), 'taskservs', '_lib')
}

/** Checks that every requested name (`name` or `name@range`) exists: exit 5 with the nearest names. */
export function requireKnown(catalog: Catalog, requests: string[]): void {
  for (const request of requests) {
    const { name } = parseRequest(request)
    if (!catalog.has(name)) {
      throw notFoundError(`unknown taskserv '${name}'`, {
        hint: didYouMean(name, catalog.keys()) ?? `available: ${[...catalog.keys()].join(', ')}`,
      })
    }
  }
}
