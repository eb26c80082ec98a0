import type { Readable } from 'node:stream'
import type { Descriptor } from './types'

export interface FetchedManifest {
  descriptor: Descriptor
  bytes: Buffer
}

/**
 * One storage abstraction (as oras-go's Target): a registry repository, an on-disk OCI image
 * layout, or the content-addressed cache. Copy, pull and push are written against this only.
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
  /**
   * Optional: the blob as a stream that ends with an error instead of its end when the bytes do
   * not verify (for layers: memory stays flat). Without it, readers fall back to fetchBlob.
   */
  openBlob?(descriptor: Descriptor): Promise<Readable>
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
}
