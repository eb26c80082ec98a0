import { existsSync } from 'node:fs'
import { join } from 'node:path'
import {
  configError,
  type DependencyNode,
  discoverExtensions,
  type ExtensionKind,
  type ExtensionManifest,
  extensionKinds,
  manifestSchema,
  notFoundError,
  PROV_VERSION,
  readJsonFile,
  resolveDependencies,
  usageError,
  writeFileAtomic,
} from '@prov/core'
import semver from 'semver'
import type { OciContext } from './context'
import { kindOf } from './manifest'
import { pullArtifact } from './pull'
import { formatReference, parseReference, type Reference } from './ref'
import { readJsonBlob } from './target'

export const LOCK_FILE = 'prov.lock.json'

export interface LockEntry {
  kind: ExtensionKind
  version: string
  /** registry/repository:tag */
  reference: string
  digest: string
}
export interface LockFile {
  schema: 'prov.lock/v1'
  extensions: Record<string, LockEntry>
}

export interface Root {
  ref: Reference & { type: 'registry' }
  kind?: ExtensionKind
  /** A semver range when the reference was `name@range` (tag picked from the registry). */
  range?: string
}

/** Reads `dependencies.extensions` (`oci` + `modules` sections, or kinds directly under it). */
export function configuredRoots(oci: OciContext): Root[] {
  const section = (oci.dependencies.extensions ?? {}) as Record<string, unknown>
  if (typeof section !== 'object' || Array.isArray(section))
    throw configError('dependencies.extensions must be a mapping', { location: 'dependencies.extensions' })
  const nested = (section.oci ?? {}) as { registry?: string; namespace?: string }
  const registry = (section.registry as string | undefined) ?? nested.registry ?? oci.settings.registry
  const namespace = (section.namespace as string | undefined) ?? nested.namespace ?? oci.settings.namespace
  const modules = (section.modules ?? section) as Record<string, unknown>
  const roots: Root[] = []
  for (const kind of extensionKinds) {
    const list = modules[`${kind}s`]
    if (list === undefined) continue
    if (!Array.isArray(list))
      throw configError(`dependencies.extensions ${kind}s must be a list of references`, { location: `dependencies.extensions.modules.${kind}s` })
    for (const item of list) {
      if (typeof item !== 'string')
        throw configError(`dependencies.extensions ${kind}s holds a non-string entry`, { location: `dependencies.extensions.modules.${kind}s` })
      roots.push(parseRoot(item, registry, namespace, kind))
    }
  }
  return roots
}

/** `oci://host/ns/name:tag`, `name:tag`, `name@^1.2` (a range), or `name` (latest semver tag). */
export function parseRoot(item: string, registry: string, namespace: string, kind?: ExtensionKind): Root {
  const rangeMatch = item.match(/^(?:oci:\/\/)?([^@]+)@(?!sha256:)(.+)$/)
  if (rangeMatch) {
    if (!semver.validRange(rangeMatch[2])) throw usageError(`invalid version range '${rangeMatch[2]}' in '${item}'`)
    const ref = parseReference(rangeMatch[1], { defaultRegistry: registry, defaultNamespace: namespace, allowBare: true })
    return { ref: ref as Root['ref'], kind, range: rangeMatch[2] }
  }
  const ref = parseReference(item, { defaultRegistry: registry, defaultNamespace: namespace, allowBare: true })
  if (ref.type !== 'registry') throw usageError(`dependency '${item}' must be a registry reference`)
  return { ref, kind, range: ref.tag || ref.digest ? undefined : '*' }
}

function pickTag(tags: string[], range: string): string | undefined {
  const versions = tags.filter((t) => semver.valid(t) && !semver.prerelease(t))
  return semver.maxSatisfying(versions, range) ?? undefined
}

export interface ResolvedExtension {
  schema: 'prov.oci.resolved/v1'
  name: string
  kind: ExtensionKind
  version: string
  reference: string
  digest: string
  level: number
  required_by: string[]
  action: 'installed' | 'unchanged' | 'planned'
  installed?: string
}

interface Node extends DependencyNode {
  kind: ExtensionKind
  ref: Reference & { type: 'registry' }
  digest: string
  requiredBy: string[]
}

function readLock(path: string): LockFile {
  const lock = readJsonFile<LockFile>(path, { schema: 'prov.lock/v1', extensions: {} })
  if (lock.schema !== 'prov.lock/v1' || typeof lock.extensions !== 'object') throw configError('not a prov lock file', { location: path })
  return lock
}

/**
 * Pulls the configured extensions and, recursively, the registry extensions they require (the
 * highest tag satisfying each range), orders them with core's resolver (cycles, conflicts),
 * installs them into the workspace registry layer and records the digests in prov.lock.json.
 */
export async function resolveFromRegistries(
  oci: OciContext,
  options: {
    roots?: Root[]
    update?: boolean
    dryRun?: boolean
    log?: { info: (m: string) => void; warn: (m: string) => void; debug: (m: string) => void }
  } = {},
): Promise<ResolvedExtension[]> {
  const workspace = oci.workspace
  if (!workspace) throw usageError('prov-oci resolve needs a workspace', { hint: 'run inside a workspace or pass --workspace' })
  const lockPath = join(workspace.path, LOCK_FILE)
  const lock = options.update ? { schema: 'prov.lock/v1' as const, extensions: {} } : readLock(lockPath)
  const roots = options.roots ?? configuredRoots(oci)
  if (!roots.length) return []
  // Extensions present in other layers (infra, workspace, bundled) satisfy requirements as installed.
  const local = new Map<string, DependencyNode>()
  for (const kind of extensionKinds) {
    for (const ext of discoverExtensions(kind, { workspacePath: workspace.path })) {
      if (ext.layer !== 'registry') local.set(ext.manifest.name, toNode(ext.manifest))
    }
  }
  const nodes = new Map<string, Node>()
  const queue: { root: Root; requiredBy?: string }[] = roots.map((root) => ({ root }))
  while (queue.length) {
    const { root, requiredBy } = queue.shift() as { root: Root; requiredBy?: string }
    const name = root.ref.repository.split('/').pop() as string
    const seen = nodes.get(name)
    if (seen) {
      if (root.range && !semver.satisfies(seen.version, root.range)) {
        throw configError(
          `conflict: '${requiredBy}' requires ${name} ${root.range}, but ${seen.version} is selected (required by ${seen.requiredBy.join(', ') || 'the workspace'})`,
          {
            hint: 'align the versions in dependencies.extensions',
          },
        )
      }
      if (requiredBy) seen.requiredBy.push(requiredBy)
      continue
    }
    let tag = root.ref.tag
    const target = oci.target(root.ref)
    if (!tag && !root.ref.digest) {
      const tags = await target.tags()
      tag = pickTag(tags, root.range ?? '*')
      if (!tag) {
        throw notFoundError(`no tag of ${formatReference(root.ref)} satisfies ${root.range ?? '*'}${requiredBy ? ` (required by '${requiredBy}')` : ''}`, {
          hint: `tags: ${tags.join(', ') || 'none'}`,
        })
      }
    }
    const reference = formatReference({ ...root.ref, tag, digest: undefined })
    const locked = Object.values(lock.extensions).find((e) => e.reference === reference)
    const ref: Root['ref'] = { ...root.ref, tag, digest: locked?.digest ?? root.ref.digest }
    const pulled = await pullArtifact(oci, ref, { install: false, cache: !options.dryRun, log: options.log })
    const kind = kindOf(pulled.manifest)
    if (kind !== 'provider' && kind !== 'taskserv' && kind !== 'cluster')
      throw configError(`${reference} is not a prov extension artifact (${pulled.manifest.artifactType ?? 'no artifactType'})`)
    if (root.kind && kind !== root.kind) throw configError(`${reference} is a ${kind}, listed under ${root.kind}s`, { location: 'dependencies.extensions' })
    const config = manifestSchema().parse(await readJsonBlob(pulled.source, pulled.manifest.config, `artifact config of ${reference}`)) as ExtensionManifest
    if (config.name !== name) options.log?.debug(`${reference} names itself '${config.name}'`)
    if (root.range && !semver.satisfies(config.version, root.range)) {
      throw configError(`${reference} holds version ${config.version}, which does not satisfy ${root.range}${requiredBy ? ` required by '${requiredBy}'` : ''}`)
    }
    nodes.set(config.name, { ...toNode(config), kind, ref, digest: pulled.digest, requiredBy: requiredBy ? [requiredBy] : [] })
    for (const [dep, range] of Object.entries(config.requires)) {
      const have = local.get(dep)
      if (have && semver.satisfies(have.version, range)) continue
      const siblings = root.ref.repository.split('/').slice(0, -1)
      queue.push({ root: { ref: { type: 'registry', registry: root.ref.registry, repository: [...siblings, dep].join('/') }, range }, requiredBy: config.name })
    }
  }
  const resolution = resolveDependencies([...nodes.keys()], new Map(nodes), { installed: [...local.values()], provVersion: PROV_VERSION })
  const results: ResolvedExtension[] = []
  const nextLock: LockFile = { schema: 'prov.lock/v1', extensions: { ...lock.extensions } }
  for (const [level, names] of resolution.levels.entries()) {
    for (const name of names) {
      const node = nodes.get(name)
      if (!node) continue
      const dest = join(workspace.paths.registryExtensions, `${node.kind}s`, name)
      const reference = formatReference({ ...node.ref, digest: undefined })
      const previous = lock.extensions[name]
      let action: ResolvedExtension['action'] = 'planned'
      if (!options.dryRun) {
        if (previous?.digest === node.digest && existsSync(join(dest, 'manifest.yaml'))) action = 'unchanged'
        else {
          await pullArtifact(oci, { ...node.ref, digest: node.digest }, { log: options.log })
          action = 'installed'
        }
        nextLock.extensions[name] = { kind: node.kind, version: node.version, reference, digest: node.digest }
      }
      results.push({
        schema: 'prov.oci.resolved/v1',
        name,
        kind: node.kind,
        version: node.version,
        reference,
        digest: node.digest,
        level,
        required_by: node.requiredBy,
        action,
        ...(action !== 'planned' ? { installed: dest } : {}),
      })
    }
  }
  if (!options.dryRun) {
    nextLock.extensions = Object.fromEntries(Object.entries(nextLock.extensions).sort(([a], [b]) => a.localeCompare(b)))
    writeFileAtomic(lockPath, `${JSON.stringify(nextLock, null, 2)}\n`)
  }
  return results
}

function toNode(m: ExtensionManifest): DependencyNode {
  return {
    name: m.name,
    version: m.version,
    requires: m.requires,
    optional: m.optional,
    conflicts: m.conflicts,
    provides: m.provides,
    min_prov_version: m.min_prov_version,
  }
}

export interface UpdateInfo {
  schema: 'prov.oci.update/v1'
  name: string
  reference: string
  current: string
  latest: string | null
  latest_compatible: string | null
  update_available: boolean
}

/** Newer tags of the locked (or configured) extensions; compatible = satisfies what dependents require. */
export async function checkUpdates(oci: OciContext): Promise<UpdateInfo[]> {
  const workspace = oci.workspace
  if (!workspace) throw usageError('check-updates needs a workspace')
  const lock = readLock(join(workspace.path, LOCK_FILE))
  const entries: { name: string; ref: Reference & { type: 'registry' }; current: string }[] = Object.entries(lock.extensions).map(([name, e]) => ({
    name,
    ref: oci.parse(e.reference) as Reference & { type: 'registry' },
    current: e.version,
  }))
  for (const root of configuredRoots(oci)) {
    const name = root.ref.repository.split('/').pop() as string
    if (!entries.some((e) => e.name === name) && root.ref.tag) entries.push({ name, ref: root.ref, current: root.ref.tag })
  }
  // Ranges the installed extensions require of each other.
  const constraints = new Map<string, string[]>()
  for (const kind of extensionKinds) {
    for (const ext of discoverExtensions(kind, { workspacePath: workspace.path })) {
      for (const [dep, range] of Object.entries(ext.manifest.requires)) constraints.set(dep, [...(constraints.get(dep) ?? []), range])
    }
  }
  const out: UpdateInfo[] = []
  for (const entry of entries) {
    const tags = (await oci.target(entry.ref).tags()).filter((t) => semver.valid(t) && !semver.prerelease(t))
    const latest = semver.maxSatisfying(tags, '*')
    const ranges = constraints.get(entry.name) ?? []
    const compatible = semver.maxSatisfying(
      tags.filter((t) => ranges.every((r) => semver.satisfies(t, r))),
      '*',
    )
    out.push({
      schema: 'prov.oci.update/v1',
      name: entry.name,
      reference: formatReference({ ...entry.ref, tag: undefined, digest: undefined }),
      current: entry.current,
      latest,
      latest_compatible: compatible,
      update_available: Boolean(compatible && semver.valid(entry.current) && semver.gt(compatible, entry.current)),
    })
  }
  return out
}
