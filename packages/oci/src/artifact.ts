import { Readable } from 'node:stream'
import { gzipSync } from 'node:zlib'
import { type ExtensionKind, type ExtensionManifest, failedError, readManifest } from '@prov/core'
import { descriptorFor } from './digest'
import { LayoutTarget } from './layout'
import { isDigest } from './ref'
import { pool, RegistryTarget } from './registry'
import { collectEntries, createTar, type TarEntry } from './tarball'
import type { Target } from './target'
import {
  type Descriptor,
  type ImageIndex,
  type ImageManifest,
  MAX_BLOB_BYTES,
  MAX_CONFIG_BYTES,
  MAX_INDEX_DEPTH,
  MAX_INDEX_MANIFESTS,
  MAX_LAYERS,
  MEDIA,
  manifestMediaTypes,
  PROV_ARTIFACT,
  PROV_CONFIG,
} from './types'
import type { LayerSource } from './unpack'

/** A built artifact: its manifest and every blob, ready to push to any Target. */
export interface BuiltArtifact {
  manifest: ImageManifest
  manifestBytes: Buffer
  descriptor: Descriptor
  blobs: { descriptor: Descriptor; bytes: Buffer }[]
}

/** The `created` annotation must not break reproducibility: SOURCE_DATE_EPOCH or a fixed instant unless given. */
export function createdTimestamp(given?: string): string {
  if (given) return given
  const epoch = Number(process.env.SOURCE_DATE_EPOCH)
  return new Date(Number.isFinite(epoch) && process.env.SOURCE_DATE_EPOCH ? epoch * 1000 : 0).toISOString().replace('.000Z', 'Z')
}

function mtimeSeconds(): number {
  const epoch = Number(process.env.SOURCE_DATE_EPOCH)
  return process.env.SOURCE_DATE_EPOCH && Number.isFinite(epoch) ? epoch : 0
}

/** gzip without name or timestamp: the same tar always gives the same bytes. */
export function gzipReproducible(tar: Buffer): Buffer {
  return gzipSync(tar, { level: 6 })
}

export function buildArtifact(options: {
  artifactType: string
  configMediaType: string
  config: unknown
  layers: { entries: TarEntry[]; title?: string }[]
  annotations: Record<string, string>
  subject?: Descriptor
}): BuiltArtifact {
  const configBytes = Buffer.from(JSON.stringify(options.config))
  const configDescriptor = descriptorFor(options.configMediaType, configBytes)
  const blobs: { descriptor: Descriptor; bytes: Buffer }[] = [{ descriptor: configDescriptor, bytes: configBytes }]
  for (const layer of options.layers) {
    const bytes = gzipReproducible(createTar(layer.entries, mtimeSeconds()))
    const descriptor = descriptorFor(MEDIA.layerTarGzip, bytes, layer.title ? { annotations: { 'org.opencontainers.image.title': layer.title } } : {})
    blobs.push({ descriptor, bytes })
  }
  const manifest: ImageManifest = {
    schemaVersion: 2,
    mediaType: MEDIA.manifest,
    artifactType: options.artifactType,
    config: configDescriptor,
    layers: blobs.slice(1).map((b) => b.descriptor),
    ...(options.subject ? { subject: options.subject } : {}),
    annotations: options.annotations,
  }
  const manifestBytes = Buffer.from(JSON.stringify(manifest))
  return { manifest, manifestBytes, descriptor: descriptorFor(MEDIA.manifest, manifestBytes, { artifactType: options.artifactType }), blobs }
}

/** An extension folder as an OCI artifact (reproducible: same folder, same digest). */
export function packageExtension(dir: string, options: { created?: string; source?: string } = {}): BuiltArtifact & { extension: ExtensionManifest } {
  const extension = readManifest(dir)
  const entries = collectEntries(dir, { exclude: (p) => p === '.git' || p.startsWith('.git/') })
  const annotations: Record<string, string> = {
    'org.opencontainers.image.title': extension.name,
    'org.opencontainers.image.version': extension.version,
    'org.opencontainers.image.source': options.source ?? extension.repository ?? extension.homepage ?? `prov:${extension.kind}s/${extension.name}`,
    'org.opencontainers.image.created': createdTimestamp(options.created),
    'dev.prov.kind': extension.kind,
    'dev.prov.name': extension.name,
  }
  if (extension.description) annotations['org.opencontainers.image.description'] = extension.description
  const built = buildArtifact({
    artifactType: PROV_ARTIFACT[extension.kind],
    configMediaType: PROV_CONFIG,
    config: extension,
    layers: [{ entries, title: `${extension.name}-${extension.version}.tar.gz` }],
    annotations,
  })
  return { ...built, extension }
}

export async function pushBuilt(target: Target, artifact: BuiltArtifact, tag?: string, parallel = 4): Promise<void> {
  await pool(artifact.blobs, parallel, (blob) => target.pushBlob(blob.descriptor, blob.bytes, { verified: true }))
  await target.pushManifest(artifact.descriptor, artifact.manifestBytes, tag)
}

export type ParsedManifest = { type: 'manifest'; value: ImageManifest } | { type: 'index'; value: ImageIndex }

/** Parses manifest bytes; an unknown media type is a clear error. */
export function parseManifest(bytes: Buffer, descriptor: Descriptor, where: string): ParsedManifest {
  let value: ImageManifest & ImageIndex
  try {
    value = JSON.parse(bytes.toString('utf8'))
  } catch {
    throw failedError(`manifest ${descriptor.digest} is not JSON`, { location: where })
  }
  const mediaType = value.mediaType ?? descriptor.mediaType
  if (!manifestMediaTypes.includes(mediaType)) {
    throw failedError(`unknown manifest media type '${mediaType ?? 'none'}'`, { location: where, hint: `prov-oci reads ${manifestMediaTypes.join(', ')}` })
  }
  if (value.schemaVersion !== 2) throw failedError(`manifest schemaVersion ${String(value.schemaVersion)} is not supported`, { location: where })
  if (mediaType === MEDIA.index || mediaType === MEDIA.dockerList) {
    if (!Array.isArray(value.manifests)) throw failedError('image index without manifests', { location: where })
    if (value.manifests.length > MAX_INDEX_MANIFESTS)
      throw failedError(`image index lists ${value.manifests.length} manifests, more than the ${MAX_INDEX_MANIFESTS} allowed: refused`, { location: where })
    for (const d of value.manifests) checkDescriptor(d, where)
    return { type: 'index', value }
  }
  if (!value.config || !Array.isArray(value.layers)) throw failedError('image manifest without config or layers', { location: where })
  if (value.layers.length > MAX_LAYERS)
    throw failedError(`manifest has ${value.layers.length} layers, more than the ${MAX_LAYERS} allowed: refused`, { location: where })
  for (const d of [value.config, ...value.layers]) checkDescriptor(d, where)
  return { type: 'manifest', value }
}

/** A descriptor from a manifest: a sha256 digest and a size within bounds, before anything is fetched. */
function checkDescriptor(d: Descriptor, where: string): void {
  if (typeof d !== 'object' || d === null || typeof d.digest !== 'string' || !isDigest(d.digest))
    throw failedError(`manifest references a blob without a sha256 digest: refused`, { location: where })
  if (typeof d.size !== 'number' || !Number.isInteger(d.size) || d.size < 0 || d.size > MAX_BLOB_BYTES)
    throw failedError(`blob ${d.digest} has an out-of-bounds size ${d.size}: refused`, { location: where })
}

/** A blob read as a stream when the target can (layers), else whole. */
export async function openBlob(target: Target, descriptor: Descriptor): Promise<Readable> {
  return target.openBlob ? target.openBlob(descriptor) : Readable.from([await target.fetchBlob(descriptor)])
}

/** The layers of a manifest as sources for unpacking. */
export function layerSources(target: Target, manifest: ImageManifest, display: string): LayerSource[] {
  return manifest.layers.map((layer) => ({ where: `layer ${layer.digest.slice(0, 19)} of ${display}`, open: () => openBlob(target, layer) }))
}

/** A small JSON blob (a config, a signature payload), its announced size checked before it is fetched. */
export async function readJsonBlob<T>(target: Target, descriptor: Descriptor, what: string): Promise<T> {
  if (descriptor.size > MAX_CONFIG_BYTES) throw failedError(`${what} of ${descriptor.size} bytes is larger than the ${MAX_CONFIG_BYTES} allowed: refused`)
  const bytes = await target.fetchBlob(descriptor)
  try {
    return JSON.parse(bytes.toString('utf8')) as T
  } catch {
    throw failedError(`${what} is not JSON`, { location: descriptor.digest })
  }
}

/** The kind of a prov artifact from its artifactType (undefined for foreign images). */
export function kindOf(manifest: ImageManifest): ExtensionKind | 'bundle' | 'signature' | undefined {
  const type = manifest.artifactType ?? manifest.config.mediaType
  const hit = Object.entries(PROV_ARTIFACT).find(([, v]) => v === type)
  return hit?.[0] as ExtensionKind | 'bundle' | 'signature' | undefined
}

export interface CopyOptions {
  tag?: string
  parallel?: number
  /** Also copy the referrers (signatures) of the manifest. */
  referrers?: boolean
  onBlob?: (descriptor: Descriptor, action: 'exists' | 'mounted' | 'copied') => void
}

/** Copies a manifest (or index) and everything it references from one Target to another. */
export async function copyGraph(src: Target, dst: Target, reference: string, options: CopyOptions = {}, depth = 0): Promise<Descriptor> {
  const { descriptor, bytes } = await src.fetchManifest(reference)
  const parsed = parseManifest(bytes, descriptor, `${src.name}:${reference}`)
  if (parsed.type === 'index') {
    if (depth >= MAX_INDEX_DEPTH) throw failedError(`image indexes nested deeper than ${MAX_INDEX_DEPTH}: refused`, { location: `${src.name}:${reference}` })
    for (const child of parsed.value.manifests) await copyGraph(src, dst, child.digest, { ...options, tag: undefined, referrers: false }, depth + 1)
  } else {
    const blobs = [parsed.value.config, ...parsed.value.layers]
    const sameRegistry = src instanceof RegistryTarget && dst instanceof RegistryTarget && src.client.registry === dst.client.registry
    await pool(blobs, options.parallel ?? 4, async (blob) => {
      if (await dst.exists(blob)) return options.onBlob?.(blob, 'exists')
      if (sameRegistry && (await (dst as RegistryTarget).mount(blob, (src as RegistryTarget).repository))) return options.onBlob?.(blob, 'mounted')
      if (src instanceof RegistryTarget && dst instanceof LayoutTarget) await src.downloadBlob(blob, dst.blobPath(blob.digest))
      // The registry checks the digest when the upload is committed: no local hashing pass needed.
      else if (src instanceof LayoutTarget && dst instanceof RegistryTarget) await dst.pushBlob(blob, src.readBlobForUpload(blob), { verified: true })
      else await dst.pushBlob(blob, await src.fetchBlob(blob), { verified: true })
      options.onBlob?.(blob, 'copied')
    })
  }
  await dst.pushManifest(descriptor, bytes, options.tag)
  if (options.referrers) {
    const { copyReferrers } = await import('./sign')
    await copyReferrers(src, dst, descriptor, options.parallel)
  }
  return descriptor
}

/** Whether a Target holds a manifest and every blob it references (no network for local targets). */
export async function isComplete(target: Target, digest: string, depth = 0): Promise<boolean> {
  try {
    const { descriptor, bytes } = await target.fetchManifest(digest)
    const parsed = parseManifest(bytes, descriptor, target.name)
    if (parsed.type === 'index') {
      if (depth >= MAX_INDEX_DEPTH) return false
      for (const child of parsed.value.manifests) if (!(await isComplete(target, child.digest, depth + 1))) return false
      return true
    }
    for (const blob of [parsed.value.config, ...parsed.value.layers]) if (!(await target.exists(blob))) return false
    return true
  } catch {
    return false
  }
}
