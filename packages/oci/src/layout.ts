import { closeSync, createReadStream, existsSync, fstatSync, openSync, readFileSync, statSync } from 'node:fs'
import type { Readable } from 'node:stream'
import { containedPath, failedError, notFoundError, removeContained, usageError, withLock, writeFileAtomic } from '@prov/core'
import { writeBlobFile, writeBlobStream } from './blob-file'
import { parseJson } from './json'
import { isDigest, isTag } from './ref'
import type { FetchedManifest, Target } from './target'
import { type Descriptor, type ImageIndex, MAX_BLOB_BYTES, MAX_INDEX_FILE_BYTES, MAX_MANIFEST_BYTES, MEDIA, manifestMediaTypes } from './types'
import { verifiedStream, verifyBytes } from './verify'

const REF_NAME = 'org.opencontainers.image.ref.name'

/**
 * An OCI image layout on disk (`oci-layout`, `index.json`, `blobs/sha256/<hex>`), readable by
 * skopeo/oras/umoci. With a `scope`, tags are stored as `<scope>:<tag>` so one layout can hold
 * many repositories: that is the content-addressed cache.
 */
export class LayoutTarget implements Target {
  readonly kind: 'layout' | 'cache'
  readonly name: string

  constructor(
    readonly root: string,
    private readonly scope?: string,
    kind: 'layout' | 'cache' = 'layout',
  ) {
    this.kind = kind
    this.name = scope ? `cache ${scope}` : `layout:${root}`
  }

  /** A file of the layout; a symlink inside it that leads out is refused (exit 4). */
  private path(...segments: string[]): string {
    return containedPath(this.root, segments, { what: this.name })
  }

  private blobSegments(digest: string): string[] {
    if (!isDigest(digest)) throw failedError(`unsupported digest '${digest}'`, { location: this.name })
    return ['blobs', 'sha256', digest.slice(7)]
  }

  blobPath(digest: string): string {
    return this.path(...this.blobSegments(digest))
  }

  private refName(tag: string): string {
    if (!isTag(tag)) throw usageError(`tag '${tag}' is not valid in ${this.name} (letters, digits, . _ -, no '..', at most 128)`)
    return this.scope ? `${this.scope}:${tag}` : tag
  }

  readIndex(): ImageIndex {
    const file = this.path('index.json')
    if (!existsSync(file)) return { schemaVersion: 2, mediaType: MEDIA.index, manifests: [] }
    const index = parseJson<ImageIndex>(readBounded(file, MAX_INDEX_FILE_BYTES), 'OCI layout index', file)
    if (typeof index !== 'object' || index === null || !Array.isArray(index.manifests) || index.manifests.some((d) => typeof d?.digest !== 'string'))
      throw failedError('malformed OCI layout index: no manifests array of descriptors', { location: file })
    return index
  }

  private async updateIndex(update: (index: ImageIndex) => void): Promise<void> {
    await withLock(this.path('.index.lock'), () => {
      const layoutFile = this.path('oci-layout')
      if (!existsSync(layoutFile)) writeFileAtomic(layoutFile, '{"imageLayoutVersion":"1.0.0"}')
      const index = this.readIndex()
      update(index)
      writeFileAtomic(this.path('index.json'), `${JSON.stringify(index, null, 2)}\n`)
    })
  }

  async resolve(reference: string): Promise<Descriptor> {
    const index = this.readIndex()
    if (isDigest(reference)) {
      const listed = index.manifests.find((d) => d.digest === reference)
      if (listed) return stripRefName(listed)
      const path = this.blobPath(reference)
      if (existsSync(path)) {
        const bytes = readBounded(path, MAX_MANIFEST_BYTES)
        const mediaType = parseJson<{ mediaType?: string }>(bytes, `manifest ${reference}`, this.name).mediaType ?? MEDIA.manifest
        return { mediaType, digest: reference, size: bytes.length }
      }
      throw notFoundError(`manifest ${reference} not found in ${this.name}`)
    }
    const hit = index.manifests.find((d) => d.annotations?.[REF_NAME] === this.refName(reference))
    if (!hit) {
      throw notFoundError(`tag '${reference}' not found in ${this.name}`, {
        hint: (await this.tags()).length ? `tags: ${(await this.tags()).join(', ')}` : 'the layout holds no tags',
      })
    }
    return stripRefName(hit)
  }

  async fetchManifest(reference: string): Promise<FetchedManifest> {
    const descriptor = await this.resolve(reference)
    if (descriptor.size > MAX_MANIFEST_BYTES) throw failedError(`manifest ${descriptor.digest} is larger than ${MAX_MANIFEST_BYTES} bytes: refused`)
    const bytes = await this.fetchBlob(descriptor)
    return { descriptor, bytes }
  }

  /** The blob's file, checked against the descriptor's size before a byte is read. */
  private blobFile(descriptor: Descriptor): string {
    const path = this.blobPath(descriptor.digest)
    let size: number
    try {
      size = statSync(path).size
    } catch {
      throw notFoundError(`blob ${descriptor.digest} not found in ${this.name}`)
    }
    if (descriptor.size > MAX_BLOB_BYTES)
      throw failedError(`blob ${descriptor.digest} of ${descriptor.size} bytes exceeds the limit ${MAX_BLOB_BYTES}: refused`)
    if (size !== descriptor.size)
      throw failedError(`blob ${descriptor.digest} has ${size} bytes, the descriptor says ${descriptor.size}: refused`, { location: path })
    return path
  }

  async fetchBlob(descriptor: Descriptor): Promise<Buffer> {
    // Whole blobs (uploads, configs) are read in one go and checked by the same Verifier: a
    // stream would cost a second copy of every byte for nothing here.
    const path = this.blobFile(descriptor)
    const bytes = readFileSync(path)
    verifyBytes(bytes, { digest: descriptor.digest, size: descriptor.size, what: `blob ${descriptor.digest}`, where: path })
    return bytes
  }

  async openBlob(descriptor: Descriptor): Promise<Readable> {
    const path = this.blobFile(descriptor)
    return verifiedStream(createReadStream(path), {
      digest: descriptor.digest,
      size: descriptor.size,
      limit: MAX_BLOB_BYTES,
      what: `blob ${descriptor.digest}`,
      where: path,
    })
  }

  async writeBlob(descriptor: Descriptor, source: Readable): Promise<void> {
    if (await this.exists(descriptor)) {
      source.destroy()
      return
    }
    await writeBlobStream(this.blobPath(descriptor.digest), source)
  }

  async exists(descriptor: Descriptor): Promise<boolean> {
    try {
      return statSync(this.blobPath(descriptor.digest)).size === descriptor.size
    } catch {
      return false
    }
  }

  async pushBlob(descriptor: Descriptor, bytes: Buffer, options: { verified?: boolean } = {}): Promise<void> {
    if (!options.verified) verifyBytes(bytes, { digest: descriptor.digest, size: descriptor.size, what: `blob ${descriptor.digest}`, where: this.name })
    if (await this.exists(descriptor)) return
    writeBlobFile(this.blobPath(descriptor.digest), bytes)
  }

  async pushManifest(descriptor: Descriptor, bytes: Buffer, tag?: string): Promise<void> {
    await this.pushBlob(descriptor, bytes)
    const parsed = parseJson<{ artifactType?: string; subject?: Descriptor; config?: Descriptor }>(bytes, `manifest ${descriptor.digest}`, this.name)
    const entry: Descriptor = { mediaType: descriptor.mediaType, digest: descriptor.digest, size: descriptor.size }
    const artifactType = parsed.artifactType ?? parsed.config?.mediaType
    if (artifactType && artifactType !== 'application/vnd.oci.image.config.v1+json') entry.artifactType = artifactType
    await this.updateIndex((index) => {
      if (tag) {
        index.manifests = index.manifests.filter((d) => d.annotations?.[REF_NAME] !== this.refName(tag))
        index.manifests.push({ ...entry, annotations: { [REF_NAME]: this.refName(tag) } })
      } else if (!index.manifests.some((d) => d.digest === descriptor.digest)) {
        // Untagged manifests (signatures) stay listed so they are reachable and found as referrers.
        index.manifests.push(parsed.subject ? { ...entry, annotations: { 'dev.prov.subject': parsed.subject.digest } } : entry)
      }
    })
  }

  async tags(): Promise<string[]> {
    const prefix = this.scope ? `${this.scope}:` : ''
    return this.readIndex()
      .manifests.map((d) => d.annotations?.[REF_NAME])
      .filter((n): n is string => !!n && n.startsWith(prefix) && !n.slice(prefix.length).includes(':'))
      .map((n) => n.slice(prefix.length))
      .sort()
  }

  async delete(reference: string): Promise<Descriptor> {
    const descriptor = await this.resolve(reference)
    await this.updateIndex((index) => {
      index.manifests = index.manifests.filter((d) => (isDigest(reference) ? d.digest !== reference : d.annotations?.[REF_NAME] !== this.refName(reference)))
    })
    // Blobs may be shared with other manifests; only an unreferenced manifest blob is removed.
    if (!this.readIndex().manifests.some((d) => d.digest === descriptor.digest) && !this.scope)
      removeContained(this.root, this.blobSegments(descriptor.digest), { what: this.name })
    return descriptor
  }

  async referrers(digest: string, artifactType?: string): Promise<Descriptor[]> {
    const found: Descriptor[] = []
    for (const entry of this.readIndex().manifests) {
      if (!manifestMediaTypes.includes(entry.mediaType) || entry.size > MAX_MANIFEST_BYTES) continue
      if (entry.annotations?.['dev.prov.subject'] !== undefined && entry.annotations['dev.prov.subject'] !== digest) continue
      let manifest: { subject?: Descriptor; artifactType?: string; annotations?: Record<string, string> }
      try {
        manifest = parseJson(await this.fetchBlob(entry), `manifest ${entry.digest}`, this.name)
      } catch {
        continue
      }
      if (manifest.subject?.digest !== digest) continue
      if (artifactType && manifest.artifactType !== artifactType) continue
      found.push({ mediaType: entry.mediaType, digest: entry.digest, size: entry.size, artifactType: manifest.artifactType, annotations: manifest.annotations })
    }
    return found
  }
}

function stripRefName(descriptor: Descriptor): Descriptor {
  const { annotations, ...rest } = descriptor
  return { ...rest, mediaType: rest.mediaType ?? MEDIA.manifest }
}

/** A whole file no larger than `limit`, its size checked on the open descriptor before reading. */
function readBounded(path: string, limit: number): Buffer {
  const fd = openSync(path, 'r')
  try {
    const size = fstatSync(fd).size
    if (size > limit) throw failedError(`${path} has ${size} bytes, more than the ${limit} allowed: refused`, { location: path })
    return readFileSync(fd)
  } finally {
    closeSync(fd)
  }
}
