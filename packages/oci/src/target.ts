import { Readable } from 'node:stream'
import { failedError } from '@prov/core'
import { parseJson } from './json'
import { type Descriptor, MAX_CONFIG_BYTES } from './types'

export interface FetchedManifest {
  descriptor: Descriptor
  bytes: Buffer
}

/**
 * One storage abstraction (as oras-go's Target): a registry repository, an on-disk OCI image
 * layout, or the content-addressed cache. Copy, pull and push are written against this only;
 * what only some storages can do is an optional method, found by asking for it (as oras-go's
 * `Mounter`), never by the class of the object.
 */
export interface Target {
  readonly kind: 'registry' | 'layout' | 'cache'
  /** Human-readable location for messages. */
  readonly name: string
  /** Tag or digest -> the manifest descriptor (exit 5 when unknown). */
  resolve(reference: string): Promise<Descriptor>
  /** Manifest bytes, verified against the digest. */
  fetchManifest(reference: string): Promise<FetchedManifest>
  /** Blob bytes, verified against the descriptor (digest and size). */
  fetchBlob(descriptor: Descriptor): Promise<Buffer>
  exists(descriptor: Descriptor): Promise<boolean>
  /** Stores a blob; `verified` skips re-hashing bytes that were just verified (or built here). */
  pushBlob(descriptor: Descriptor, bytes: Buffer, options?: { verified?: boolean }): Promise<void>
  /** Stores a manifest (by digest) and points `tag` at it when given. */
  pushManifest(descriptor: Descriptor, bytes: Buffer, tag?: string): Promise<void>
  tags(): Promise<string[]>
  /** Removes a manifest (by tag or digest); returns what was removed. */
  delete(reference: string): Promise<Descriptor>
  /** Manifests whose `subject` is `digest` (OCI 1.1 referrers), optionally of one artifactType. */
  referrers(digest: string, artifactType?: string): Promise<Descriptor[]>

  /** A registry repository: where it lives (a mount source must be on the same registry). */
  readonly repository?: { registry: string; name: string }
  /**
   * The blob as a stream that ends with an error instead of its end when the bytes do not
   * verify: memory stays flat for layers. Without it, readers fall back to fetchBlob.
   */
  openBlob?(descriptor: Descriptor): Promise<Readable>
  /** Stores a blob from a stream of verified bytes (it must end with an error if they are not). */
  writeBlob?(descriptor: Descriptor, source: Readable): Promise<void>
  /** Links a blob `from` holds without moving its bytes (cross-repository mount); false when it cannot. */
  mount?(descriptor: Descriptor, from: Target): Promise<boolean>
  /**
   * Makes a referrer just pushed findable from its subject where the storage needs help (the
   * OCI 1.1 fallback tag on registries without the referrers API); says which way it is found.
   */
  publishReferrer?(subject: Descriptor, referrer: Descriptor): Promise<'api' | 'fallback-tag'>
}

/** A blob as a stream when the target can (layers), else whole. */
export async function openBlob(target: Target, descriptor: Descriptor): Promise<Readable> {
  return target.openBlob ? target.openBlob(descriptor) : Readable.from([await target.fetchBlob(descriptor)])
}

/** Copies one blob: streamed when the destination can take a stream, else through memory. */
export async function copyBlob(src: Target, dst: Target, descriptor: Descriptor): Promise<void> {
  if (dst.writeBlob) await dst.writeBlob(descriptor, await openBlob(src, descriptor))
  else await dst.pushBlob(descriptor, await src.fetchBlob(descriptor), { verified: true })
}

/** A small JSON blob (a config, a signature payload), its announced size checked before it is fetched. */
export async function readJsonBlob<T>(target: Target, descriptor: Descriptor, what: string): Promise<T> {
  if (descriptor.size > MAX_CONFIG_BYTES) throw failedError(`${what} of ${descriptor.size} bytes is larger than the ${MAX_CONFIG_BYTES} allowed: refused`)
  return parseJson<T>(await target.fetchBlob(descriptor), what, descriptor.digest)
}
