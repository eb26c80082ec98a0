import type { KeyObject } from 'node:crypto'
import { readdirSync } from 'node:fs'
import { basename, dirname, join, resolve } from 'node:path'
import { configError, type ExtensionManifest, failedError, readManifest, removeContained, usageError } from '@prov/core'
import { copyGraph, isComplete } from './artifact'
import type { OciContext } from './context'
import { kindOf, parseManifest } from './manifest'
import { formatReference, type Reference } from './ref'
import { isNetworkError } from './registry-client'
import { copyReferrers, trustedKeys, type VerifyResult, verifyManifest } from './sign'
import { readJsonBlob, type Target } from './target'
import type { Descriptor, ImageManifest } from './types'
import { layerSources, UnpackBudget, unpackLayers } from './unpack'

export interface PullOptions {
  /** Extract into this folder (default: the workspace registry layer for extensions). */
  to?: string
  /** Install into the workspace registry layer (default true). */
  install?: boolean
  verify?: boolean
  keys?: KeyObject[]
  /** Read a registry artifact straight from the registry, writing nothing to the cache (a dry run). */
  cache?: boolean
  log?: { warn: (m: string) => void; debug: (m: string) => void }
}

export interface PullResult {
  schema: 'prov.oci.pull/v1'
  reference: string
  digest: string
  kind?: string
  name?: string
  version?: string
  cached: boolean
  verified: boolean
  signature?: string
  installed?: string
  layer?: 'registry'
  files?: number
}

/**
 * What a pull may do and the keys it verifies with, refused before anything is fetched: the same
 * answer for a real pull and for its --check preview.
 */
export function pullKeys(oci: OciContext, options: Pick<PullOptions, 'verify' | 'keys'>): { mustVerify: boolean; keys: KeyObject[] } {
  if (oci.settings.pullRefusal) throw oci.settings.pullRefusal
  if (oci.settings.trustedKeysOnly && options.keys?.length)
    throw configError('mode enterprise verifies signatures with oci.trusted_keys only, not a key given with --key', {
      location: 'mode',
      hint: 'add the key to oci.trusted_keys in the configuration your organisation manages, or prov mode set solo',
    })
  const mustVerify = Boolean(options.verify || oci.settings.requireSignatures)
  let keys = options.keys ?? []
  if (mustVerify && !keys.length) {
    if (!oci.settings.trustedKeys.length) {
      throw configError('signature verification is required but no key is trusted', {
        location: 'oci.trusted_keys',
        hint: 'set oci.trusted_keys or pass --key PUB.pem',
      })
    }
    keys = trustedKeys(oci.settings.trustedKeys)
  }
  return { mustVerify, keys }
}

/** Fetches an artifact into the cache (no network when the digest is already there), verifies, installs. */
export async function pullArtifact(
  oci: OciContext,
  ref: Reference,
  options: PullOptions = {},
): Promise<PullResult & { manifest: ImageManifest; source: Target }> {
  const { mustVerify, keys } = pullKeys(oci, options)
  const display = formatReference(ref)
  let source: Target
  let descriptor: Descriptor
  let cached = false
  let verification: VerifyResult | undefined
  if (ref.type === 'layout') {
    source = oci.target(ref)
    descriptor = await source.resolve(ref.digest ?? ref.tag ?? 'latest')
    if (mustVerify) verification = await verifyManifest(source, descriptor, keys, display)
  } else if (options.cache === false) {
    source = oci.target(ref)
    descriptor = await source.resolve(ref.digest ?? ref.tag ?? 'latest')
    if (mustVerify) verification = await verifyManifest(source, descriptor, keys, display)
  } else {
    const remote = oci.target(ref)
    const cache = oci.cache(ref)
    source = cache
    let digest = ref.digest
    if (!digest) {
      try {
        digest = (await remote.resolve(ref.tag ?? 'latest')).digest
      } catch (error) {
        if (!isNetworkError(error)) throw error
        // Registry unreachable: a tag seen before is served from the cache.
        digest = (
          await cache.resolve(ref.tag ?? 'latest').catch(() => {
            throw error
          })
        ).digest
        options.log?.warn(`registry ${ref.registry} unreachable; using the cached ${display}`)
      }
    }
    cached = await isComplete(cache, digest)
    if (mustVerify) {
      const local = cached ? await verifyManifest(cache, await cache.resolve(digest), keys, display).catch(() => undefined) : undefined
      if (local) verification = local
      else {
        const subject = await remote.resolve(digest)
        verification = await verifyManifest(remote, subject, keys, display)
        await copyReferrers(remote, cache, subject, oci.settings.parallel)
      }
    }
    if (!cached) await copyGraph(remote, cache, digest, { tag: ref.tag, parallel: oci.settings.parallel })
    else if (ref.tag) {
      const tagged = await cache.resolve(ref.tag).catch(() => undefined)
      if (tagged?.digest !== digest) {
        const m = await cache.fetchManifest(digest)
        await cache.pushManifest(m.descriptor, m.bytes, ref.tag)
      }
    }
    descriptor = await cache.resolve(digest)
  }
  const { bytes } = await source.fetchManifest(descriptor.digest)
  const parsed = parseManifest(bytes, descriptor, display)
  if (parsed.type !== 'manifest') throw failedError(`${display} is an image index; pull one of its manifests by digest`)
  const manifest = parsed.value
  const kind = kindOf(manifest)
  let extension: ExtensionManifest | undefined
  if (kind === 'provider' || kind === 'taskserv' || kind === 'cluster') {
    // A light check here (no schema library on the cached fast path); the installed
    // manifest.yaml is validated in full by readManifest below.
    const config = await readJsonBlob<Partial<ExtensionManifest>>(source, manifest.config, `artifact config of ${display}`)
    if (typeof config.name !== 'string' || !/^[a-z0-9][a-z0-9_.-]*$/.test(config.name) || config.kind !== kind || typeof config.version !== 'string') {
      throw failedError(`artifact config of ${display} is not a valid ${kind} manifest: refused`)
    }
    extension = config as ExtensionManifest
  }
  const result: PullResult = {
    schema: 'prov.oci.pull/v1',
    reference: display,
    digest: descriptor.digest,
    ...(kind ? { kind } : {}),
    ...(extension ? { name: extension.name, version: extension.version } : {}),
    cached,
    verified: Boolean(verification),
    ...(verification?.signature ? { signature: verification.signature } : {}),
  }
  const dest = destinationOf(oci, options, extension)
  if (dest) {
    const budget = new UnpackBudget(oci.settings.maxUnpackedSize, display)
    result.files = await unpackLayers(layerSources(source, manifest, display), dest, budget)
    const installed = join(dest.root, ...dest.segments)
    result.installed = installed
    if (extension) {
      try {
        const unpacked = readManifest(installed)
        if (unpacked.name !== extension.name || unpacked.kind !== extension.kind) throw new Error('manifest.yaml does not match the artifact config')
      } catch (error) {
        removeContained(dest.root, dest.segments)
        throw failedError(`${display} does not hold a matching manifest.yaml: ${(error as Error).message}`)
      }
      if (!options.to) result.layer = 'registry'
    }
  }
  return { ...result, manifest, source }
}

/**
 * Where a pull unpacks, as a folder contained in the one that owns it: `--to DIR` (in its parent),
 * or the workspace registry layer for an extension (the name comes from the artifact).
 */
function destinationOf(oci: OciContext, options: PullOptions, extension: ExtensionManifest | undefined): { root: string; segments: string[] } | undefined {
  if (options.to) {
    const to = resolve(options.to)
    if (to === dirname(to)) throw usageError(`--to must name a folder to create or replace, not '${to}'`, { location: '--to' })
    return { root: dirname(to), segments: [basename(to)] }
  }
  if (!extension || options.install === false || !oci.workspace) return undefined
  return { root: oci.workspace.paths.registryExtensions, segments: [`${extension.kind}s`, extension.name] }
}

/** A folder that exists and holds something: pulling over it replaces what is there. */
export function isNonEmptyFolder(path: string): boolean {
  try {
    return readdirSync(path).length > 0
  } catch {
    return false
  }
}

export interface PullPlan {
  schema: 'prov.oci.pull/v1'
  reference: string
  /** Known without a connection: pinned, in a layout, or a tag already in the cache. */
  digest: string | null
  cached: boolean
  verified: false
  planned: true
  installed?: string
  replaces?: boolean
}

/** What a pull would do, from what is on this machine only: no connection, nothing written. */
export async function planPull(oci: OciContext, ref: Reference, to?: string): Promise<PullPlan> {
  if (oci.settings.pullRefusal) throw oci.settings.pullRefusal
  let digest: string | null = ref.digest ?? null
  let cached = false
  if (ref.type === 'layout') {
    digest = (await oci.target(ref).resolve(ref.digest ?? ref.tag ?? 'latest')).digest
    cached = true
  } else {
    const cache = oci.cache(ref)
    if (!digest && ref.tag) digest = (await cache.resolve(ref.tag).catch(() => undefined))?.digest ?? null
    if (digest) cached = await isComplete(cache, digest)
  }
  const destination = to ? resolve(to) : undefined
  return {
    schema: 'prov.oci.pull/v1',
    reference: formatReference(ref),
    digest,
    cached,
    verified: false,
    planned: true,
    ...(destination ? { installed: destination, replaces: isNonEmptyFolder(destination) } : {}),
  }
}
