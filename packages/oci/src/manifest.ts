import type { ExtensionKind } from '@prov/core'
import { failedError } from '@prov/core'
import { parseJson } from './json'
import { isDigest } from './ref'
import {
  type Descriptor,
  type ImageIndex,
  type ImageManifest,
  MAX_BLOB_BYTES,
  MAX_INDEX_MANIFESTS,
  MAX_LAYERS,
  MEDIA,
  manifestMediaTypes,
  PROV_ARTIFACT,
} from './types'

export type ParsedManifest = { type: 'manifest'; value: ImageManifest } | { type: 'index'; value: ImageIndex }

/** Parses manifest bytes; an unknown media type is a clear error. */
export function parseManifest(bytes: Buffer, descriptor: Descriptor, where: string): ParsedManifest {
  const value = parseJson<ImageManifest & ImageIndex>(bytes, `manifest ${descriptor.digest}`, where)
  if (typeof value !== 'object' || value === null || Array.isArray(value))
    throw failedError(`manifest ${descriptor.digest} is not a JSON object`, { location: where })
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

/** The kind of a prov artifact from its artifactType (undefined for foreign images). */
export function kindOf(manifest: ImageManifest): ExtensionKind | 'bundle' | 'signature' | undefined {
  const type = manifest.artifactType ?? manifest.config.mediaType
  const hit = Object.entries(PROV_ARTIFACT).find(([, v]) => v === type)
  return hit?.[0] as ExtensionKind | 'bundle' | 'signature' | undefined
}
