import { gzipSync } from 'node:zlib'
import { type ExtensionManifest, failedError, forEachLimit, readManifest } from '@prov/core'
import { descriptorFor } from './digest'
import { parseManifest } from './manifest'
import { copyReferrers } from './sign'
import { collectEntries, createTar, type TarEntry } from './tarball'
import { copyBlob, type Target } from './target'
import { type Descriptor, type ImageManifest, MAX_INDEX_DEPTH, MEDIA, PROV_ARTIFACT, PROV_CONFIG } from './types'

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
  await forEachLimit(artifact.blobs, parallel, (blob) => target.pushBlob(blob.descriptor, blob.bytes, { verified: true }))
  await target.pushManifest(artifact.descriptor, artifact.manifestBytes, tag)
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
    await forEachLimit([parsed.value.config, ...parsed.value.layers], options.parallel ?? 4, async (blob) => {
      if (await dst.exists(blob)) return options.onBlob?.(blob, 'exists')
      if (await dst.mount?.(blob, src)) return options.onBlob?.(blob, 'mounted')
      await copyBlob(src, dst, blob)
      options.onBlob?.(blob, 'copied')
    })
  }
  await dst.pushManifest(descriptor, bytes, options.tag)
  if (options.referrers) await copyReferrers(src, dst, descriptor, options.parallel)
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
