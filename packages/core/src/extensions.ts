import { existsSync, readdirSync, readFileSync } from 'node:fs'
import { join } from 'node:path'
import type { z as Z } from 'zod'
import { configError, ExitCode, notFoundError } from './errors'
import { semverLib, yamlLib, zodLib } from './lazy'
import { bundledExtensionsDir, workspacePaths } from './paths'
import { didYouMean } from './suggest'
import { assertSafeStructure, assertYamlDepth, isStackOverflow, tooDeepError } from './util/structure'

export const extensionKinds = ['provider', 'taskserv', 'cluster'] as const
export type ExtensionKind = (typeof extensionKinds)[number]

/** Discovery layers, highest priority first (docs/extensions.md). */
export const extensionLayers = ['infra', 'workspace', 'registry', 'bundled'] as const
export type ExtensionLayer = (typeof extensionLayers)[number]

function buildManifestSchema() {
  const { z } = zodLib()
  const name = z.string().regex(/^[a-z0-9][a-z0-9_.-]*$/, 'lower-case letters, digits, dot, dash, underscore')
  const range = z.string().refine((r) => semverLib().validRange(r) !== null, 'a semver range such as ">=1.7.0" or "^7"')
  /** `requires` / `optional` accept a map name -> range, or a list of names (any version). */
  const dependencyMap = z
    .union([z.record(name, range), z.array(name)])
    .transform((value) => (Array.isArray(value) ? Object.fromEntries(value.map((n) => [n, '*'])) : value))

  return z.looseObject({
    name,
    kind: z.enum(extensionKinds),
    version: z.string().refine((v) => semverLib().valid(v) !== null, 'a semver version such as 1.2.3'),
    description: z.string().default(''),
    requires: dependencyMap.default({}),
    optional: dependencyMap.default({}),
    conflicts: z.array(name).default([]),
    provides: z.array(name).default([]),
    platforms: z.array(z.string()).default([]),
    min_prov_version: z.string().optional(),
    tags: z.array(z.string()).default([]),
    author: z.string().optional(),
    license: z.string().optional(),
    homepage: z.string().optional(),
    repository: z.string().optional(),
  })
}

let builtSchema: ReturnType<typeof buildManifestSchema> | undefined
/** The manifest.yaml schema (built on first use: zod loads only when manifests are read). */
export function manifestSchema(): ReturnType<typeof buildManifestSchema> {
  builtSchema ??= buildManifestSchema()
  return builtSchema
}

export type ExtensionManifest = Z.infer<ReturnType<typeof buildManifestSchema>>

export interface Extension {
  manifest: ExtensionManifest
  /** Folder holding manifest.yaml and the scripts. */
  dir: string
  layer: ExtensionLayer
}

/** Parses and validates a manifest.yaml (`type` and `dependencies` are accepted as aliases of `kind` and `requires`). */
export function readManifest(dir: string): ExtensionManifest {
  const file = join(dir, 'manifest.yaml')
  let text: string
  try {
    text = readFileSync(file, 'utf8')
  } catch {
    throw notFoundError('no manifest.yaml in extension folder', { location: dir })
  }
  // A manifest comes from whoever published the extension: nesting and prototype keys are checked
  // like every other input before anything reads it.
  assertYamlDepth(text, file)
  const doc = yamlLib().parseDocument(text, { uniqueKeys: true, prettyErrors: false })
  if (doc.errors[0] && isStackOverflow(doc.errors[0])) throw tooDeepError(file)
  if (doc.errors[0]) {
    throw configError(`malformed manifest: ${doc.errors[0].message.split('\n')[0]}`, { location: `${file}:${doc.errors[0].linePos?.[0]?.line ?? 1}` })
  }
  let data: Record<string, unknown>
  try {
    data = (doc.toJS({ maxAliasCount: 100 }) ?? {}) as Record<string, unknown>
  } catch (error) {
    if (isStackOverflow(error)) throw tooDeepError(file)
    throw configError(`malformed manifest: ${(error as Error).message.split('\n')[0]}`, { location: file })
  }
  assertSafeStructure(data, { source: file, keyCode: ExitCode.CONFIG })
  if (data.kind === undefined && data.type !== undefined) data.kind = data.type
  if (data.requires === undefined && data.dependencies !== undefined) data.requires = data.dependencies
  if (data.min_prov_version === undefined && data.min_provisioning_version !== undefined) data.min_prov_version = data.min_provisioning_version
  const result = manifestSchema().safeParse(data)
  if (!result.success) {
    const issue = result.error.issues[0]
    const field = issue.path.join('.')
    const line = doc.contents && field ? lineOfKey(text, issue.path[0] as string) : undefined
    throw configError(`invalid manifest field '${field}': ${issue.message}`, { location: `${file}${line ? `:${line}` : ''}` })
  }
  return result.data
}

function lineOfKey(text: string, key: string): number | undefined {
  const index = text.split('\n').findIndex((l) => l.startsWith(`${key}:`))
  return index >= 0 ? index + 1 : undefined
}

export interface DiscoveryOptions {
  workspacePath?: string
  infra?: string
  /** Override the bundled folder (tests). */
  bundledDir?: string
}

/** The folders searched for one kind, highest priority first. */
export function extensionSearchPath(kind: ExtensionKind, options: DiscoveryOptions = {}): { layer: ExtensionLayer; dir: string }[] {
  const plural = `${kind}s`
  const dirs: { layer: ExtensionLayer; dir: string }[] = []
  if (options.workspacePath) {
    const ws = workspacePaths(options.workspacePath)
    if (options.infra) dirs.push({ layer: 'infra', dir: join(ws.infra, options.infra, 'extensions', plural) })
    dirs.push({ layer: 'workspace', dir: join(ws.extensions, plural) })
    dirs.push({ layer: 'registry', dir: join(ws.registryExtensions, plural) })
  }
  dirs.push({ layer: 'bundled', dir: join(options.bundledDir ?? bundledExtensionsDir(), plural) })
  return dirs
}

/**
 * Every extension of a kind across the layers; a name in a higher layer shadows the lower ones.
 * With `all`, shadowed ones are returned too (after the winner).
 */
export function discoverExtensions(kind: ExtensionKind, options: DiscoveryOptions & { all?: boolean } = {}): Extension[] {
  const found: Extension[] = []
  const seen = new Set<string>()
  for (const { layer, dir } of extensionSearchPath(kind, options)) {
    if (!existsSync(dir)) continue
    for (const entry of readdirSync(dir, { withFileTypes: true }).sort((a, b) => a.name.localeCompare(b.name))) {
      if (!entry.isDirectory() && !entry.isSymbolicLink()) continue
      const extDir = join(dir, entry.name)
      if (!existsSync(join(extDir, 'manifest.yaml'))) continue
      const manifest = readManifest(extDir)
      if (manifest.kind !== kind) {
        throw configError(`extension '${manifest.name}' declares kind '${manifest.kind}' but lives under ${kind}s/`, {
          location: join(extDir, 'manifest.yaml'),
        })
      }
      if (seen.has(manifest.name) && !options.all) continue
      seen.add(manifest.name)
      found.push({ manifest, dir: extDir, layer })
    }
  }
  return found
}

/** Finds one extension by name (exit 5 with the nearest names when unknown). */
export function findExtension(kind: ExtensionKind, extName: string, options: DiscoveryOptions = {}): Extension {
  const all = discoverExtensions(kind, options)
  const hit = all.find((e) => e.manifest.name === extName)
  if (hit) return hit
  throw notFoundError(`unknown ${kind} '${extName}'`, {
    hint:
      didYouMean(
        extName,
        all.map((e) => e.manifest.name),
      ) ?? `available: ${all.map((e) => e.manifest.name).join(', ') || 'none'}`,
  })
}
