import type { Readable } from 'node:stream'
import { ExitCode, failedError, notFoundError, ProvError } from '@prov/core'
import { descriptorFor } from './digest'
import { parseJson } from './json'
import { isDigest, isTag } from './ref'
import { header, type RegistryClient } from './registry-client'
import { BlobUploader } from './registry-upload'
import type { FetchedManifest, Target } from './target'
import { ACCEPT_MANIFESTS, type Descriptor, type ImageIndex, MAX_BLOB_BYTES, MAX_INDEX_MANIFESTS, MAX_MANIFEST_BYTES, MEDIA, manifestMediaTypes } from './types'
import { collect, verifiedStream, verifyBytes } from './verify'

/** The descriptors of a referrers index, bounded in number. */
function referrersOf(bytes: Buffer, what: string): Descriptor[] {
  const manifests = parseJson<ImageIndex | null>(bytes, what)?.manifests ?? []
  if (!Array.isArray(manifests)) throw failedError(`${what} has no list of manifests`)
  if (manifests.length > MAX_INDEX_MANIFESTS) throw failedError(`${what} lists more than ${MAX_INDEX_MANIFESTS} manifests: refused`)
  return manifests
}

/** One repository on a registry, as a Target. */
export class RegistryTarget implements Target {
  readonly kind = 'registry' as const
  readonly name: string
  readonly repository: { registry: string; name: string }
  private readonly pullScope: string
  private readonly pushScope: string
  private readonly uploads: BlobUploader

  constructor(
    readonly client: RegistryClient,
    repository: string,
  ) {
    this.repository = { registry: client.registry, name: repository }
    this.name = `${client.registry}/${repository}`
    this.pullScope = `repository:${repository}:pull`
    this.pushScope = `repository:${repository}:pull,push`
    this.uploads = new BlobUploader(client, repository)
  }

  private path(kind: 'manifests' | 'blobs' | 'referrers', reference: string): string {
    return `/v2/${this.repository.name}/${kind}/${reference}`
  }

  async resolve(reference: string): Promise<Descriptor> {
    const response = await this.client.request('HEAD', this.path('manifests', reference), {
      scope: this.pullScope,
      headers: { accept: ACCEPT_MANIFESTS },
      expect: [404],
    })
    if (response.status === 404) throw this.notFound(reference)
    const digest = header(response.headers, 'docker-content-digest')
    const mediaType = (header(response.headers, 'content-type') ?? MEDIA.manifest).split(';')[0].trim()
    const size = Number(header(response.headers, 'content-length'))
    if (digest && isDigest(digest) && Number.isFinite(size) && size > 0) return { mediaType, digest, size }
    return (await this.fetchManifest(reference)).descriptor
  }

  private notFound(reference: string) {
    return notFoundError(`${this.name}${isDigest(reference) ? '@' : ':'}${reference} not found`, {
      hint: `list the tags with: prov-oci tags ${this.name}`,
    })
  }

  async fetchManifest(reference: string): Promise<FetchedManifest> {
    const what = `manifest of ${this.name}:${reference}`
    const response = await this.client.request('GET', this.path('manifests', reference), {
      scope: this.pullScope,
      headers: { accept: ACCEPT_MANIFESTS },
      expect: [404],
      limit: MAX_MANIFEST_BYTES,
      what,
    })
    if (response.status === 404) throw this.notFound(reference)
    const bytes = response.body
    const parsed = parseJson<{ mediaType?: string } | null>(bytes, what)
    const mediaType = parsed?.mediaType ?? (header(response.headers, 'content-type') ?? '').split(';')[0].trim()
    if (!manifestMediaTypes.includes(mediaType)) {
      throw failedError(`unknown manifest media type '${mediaType || 'none'}' for ${this.name}:${reference}`, {
        hint: `prov-oci reads ${manifestMediaTypes.join(', ')}`,
      })
    }
    // Fetched by tag: the digest the registry claims must be that of the bytes it sent.
    const claimed = header(response.headers, 'docker-content-digest')
    const digest = verifyBytes(bytes, { digest: isDigest(reference) ? reference : claimed, size: bytes.length, what, where: `${this.name}:${reference}` })
    return { descriptor: { mediaType, digest, size: bytes.length }, bytes }
  }

  async fetchBlob(descriptor: Descriptor): Promise<Buffer> {
    return collect(await this.openBlob(descriptor))
  }

  async openBlob(descriptor: Descriptor): Promise<Readable> {
    if (descriptor.size > MAX_BLOB_BYTES)
      throw failedError(`blob ${descriptor.digest} of ${descriptor.size} bytes exceeds the limit ${MAX_BLOB_BYTES}: refused`)
    const response = await this.client.send('GET', this.path('blobs', descriptor.digest), { scope: this.pullScope, expect: [404] })
    if (response.statusCode === 404) {
      response.resume()
      throw notFoundError(`blob ${descriptor.digest} not found in ${this.name}`)
    }
    return verifiedStream(response, {
      digest: descriptor.digest,
      size: descriptor.size,
      limit: MAX_BLOB_BYTES,
      what: `blob ${descriptor.digest}`,
      where: `${this.name}@${descriptor.digest}`,
    })
  }

  async exists(descriptor: Descriptor): Promise<boolean> {
    const response = await this.client.request('HEAD', this.path('blobs', descriptor.digest), { scope: this.pullScope, expect: [404] })
    return response.status === 200
  }

  async mount(descriptor: Descriptor, from: Target): Promise<boolean> {
    if (from.repository?.registry !== this.client.registry) return false
    return this.uploads.mount(descriptor, from.repository.name)
  }

  async pushBlob(descriptor: Descriptor, bytes: Buffer, options: { verified?: boolean } = {}): Promise<void> {
    if (!options.verified) verifyBytes(bytes, { digest: descriptor.digest, size: descriptor.size, what: `blob ${descriptor.digest}`, where: 'local blob' })
    if (await this.exists(descriptor)) return
    await this.uploads.upload(descriptor, bytes, () => this.exists(descriptor))
  }

  async pushManifest(descriptor: Descriptor, bytes: Buffer, tag?: string): Promise<void> {
    verifyBytes(bytes, { digest: descriptor.digest, size: descriptor.size, what: `manifest ${descriptor.digest}`, where: 'manifest' })
    const response = await this.client.request('PUT', this.path('manifests', tag ?? descriptor.digest), {
      scope: this.pushScope,
      body: bytes,
      headers: { 'content-type': descriptor.mediaType },
      expect: [201],
    })
    const stored = header(response.headers, 'docker-content-digest')
    if (stored && stored !== descriptor.digest) throw failedError(`registry stored the manifest as ${stored}, expected ${descriptor.digest}`)
  }

  async tags(): Promise<string[]> {
    const tags = await this.client.listPages(
      `/v2/${this.repository.name}/tags/list?n=1000`,
      { scope: this.pullScope, expect: [404] },
      'tags',
      `the tags of ${this.name}`,
    )
    if (!tags) throw notFoundError(`repository ${this.name} not found`, { hint: `prov-oci catalog ${this.client.registry}` })
    // A registry's answer is data from outside: a name no registry may hold (control characters,
    // slashes, ..) is never listed, so it never reaches a terminal, a path or the next command.
    return tags.filter(isTag).sort()
  }

  async delete(reference: string): Promise<Descriptor> {
    // The distribution spec deletes manifests by digest only.
    const descriptor = await this.resolve(reference)
    await this.client.request('DELETE', this.path('manifests', descriptor.digest), {
      scope: `repository:${this.repository.name}:delete,pull,push`,
      expect: [202],
    })
    return descriptor
  }

  async referrers(digest: string, artifactType?: string): Promise<Descriptor[]> {
    const query = artifactType ? `?artifactType=${encodeURIComponent(artifactType)}` : ''
    const response = await this.client.request('GET', `${this.path('referrers', digest)}${query}`, { scope: this.pullScope, expect: [404, 400, 405] })
    const list =
      response.status === 200 && (header(response.headers, 'content-type') ?? '').includes(MEDIA.index)
        ? referrersOf(response.body, `the referrers of ${digest} in ${this.name}`)
        : await this.fallbackReferrers(digest)
    return artifactType ? list.filter((d) => d.artifactType === artifactType) : list
  }

  /** The OCI 1.1 fallback: an image index tagged `sha256-<hex>` listing the referrers. */
  private fallbackTag(digest: string): string {
    return digest.replace(':', '-')
  }

  private async fallbackReferrers(digest: string): Promise<Descriptor[]> {
    try {
      const { bytes } = await this.fetchManifest(this.fallbackTag(digest))
      return referrersOf(bytes, `the referrers index ${this.name}:${this.fallbackTag(digest)}`)
    } catch (error) {
      if (error instanceof ProvError && error.code === ExitCode.NOT_FOUND) return []
      throw error
    }
  }

  /** Whether the registry answers the referrers API (distribution 2.x does not). */
  private async supportsReferrers(digest: string): Promise<boolean> {
    const response = await this.client.request('GET', this.path('referrers', digest), { scope: this.pullScope, expect: [404, 400, 405] })
    return response.status === 200
  }

  async publishReferrer(subject: Descriptor, referrer: Descriptor): Promise<'api' | 'fallback-tag'> {
    if (await this.supportsReferrers(subject.digest)) return 'api'
    const existing = await this.fallbackReferrers(subject.digest)
    const index: ImageIndex = { schemaVersion: 2, mediaType: MEDIA.index, manifests: [...existing.filter((d) => d.digest !== referrer.digest), referrer] }
    const bytes = Buffer.from(JSON.stringify(index))
    await this.pushManifest(descriptorFor(MEDIA.index, bytes), bytes, this.fallbackTag(subject.digest))
    return 'fallback-tag'
  }
}
