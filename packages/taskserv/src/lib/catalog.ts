import { join } from 'node:path'
import {
  bundledExtensionsDir,
  configError,
  type DependencyNode,
  didYouMean,
  discoverExtensions,
  type Extension,
  type ExtensionManifest,
  notFoundError,
  parseRequest,
} from '@prov/core'
import { SETTING_KEY_PATTERN, SETTING_TYPES, type SettingType, settingKeyProblem, settingTypeProblem } from '../engine'

/** One taskserv of the catalog (the winner across the extension layers). */
export interface CatalogEntry {
  name: string
  version: string
  dir: string
  layer: Extension['layer']
  manifest: ExtensionManifest & { settings?: Record<string, unknown>; services?: string[]; packages?: string[] }
  /** Default settings from the manifest. */
  settings: Record<string, unknown>
  /** Types of settings (`setting_types:`); when present, only these and the defaults are accepted. */
  settingTypes?: Record<string, SettingType>
  services: string[]
}

/** A daemon name: it names pid and unit files on the target. */
export const SERVICE_NAME_PATTERN = /^[a-z0-9][a-z0-9_.-]*$/

function manifestProblem(manifest: CatalogEntry['manifest'], settings: Record<string, unknown>, types: unknown): string | undefined {
  const keyProblem = settingKeyProblem(settings)
  if (keyProblem) return `settings: ${keyProblem}`
  if (types !== undefined) {
    if (!types || typeof types !== 'object' || Array.isArray(types)) return 'setting_types must map setting names to types'
    for (const [key, type] of Object.entries(types)) {
      if (!SETTING_KEY_PATTERN.test(key)) return `setting_types: invalid setting name '${key}'`
      if (!SETTING_TYPES.includes(type as SettingType)) return `setting_types.${key}: unknown type '${String(type)}' (one of ${SETTING_TYPES.join(', ')})`
    }
    for (const [key, value] of Object.entries(settings)) {
      const type = (types as Record<string, SettingType>)[key]
      const problem = type && type !== 'secret' ? settingTypeProblem(type, value) : undefined
      if (problem) return `the default of setting '${key}' ${problem}`
    }
  }
  if (
    manifest.services !== undefined &&
    (!Array.isArray(manifest.services) || !manifest.services.every((s) => typeof s === 'string' && SERVICE_NAME_PATTERN.test(s)))
  )
    return 'services must be a list of names (lower-case letters, digits and _ . -)'
  return undefined
}

export type Catalog = Map<string, CatalogEntry>

export function loadCatalog(workspacePath?: string, infra?: string): Catalog {
  const catalog: Catalog = new Map()
  for (const ext of discoverExtensions('taskserv', { workspacePath, infra })) {
    const manifest = ext.manifest as CatalogEntry['manifest'] & { setting_types?: unknown }
    const settings = manifest.settings && typeof manifest.settings === 'object' && !Array.isArray(manifest.settings) ? manifest.settings : {}
    const problem = manifestProblem(manifest, settings, manifest.setting_types)
    if (problem) throw configError(`taskserv '${manifest.name}': ${problem}`, { location: join(ext.dir, 'manifest.yaml') })
    const services = Array.isArray(manifest.services) ? (manifest.services as string[]) : [manifest.name]
    const settingTypes = manifest.setting_types as Record<string, SettingType> | undefined
    catalog.set(manifest.name, {
      name: manifest.name,
      version: manifest.version,
      dir: ext.dir,
      layer: ext.layer,
      manifest,
      settings,
      ...(settingTypes ? { settingTypes } : {}),
      services,
    })
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
