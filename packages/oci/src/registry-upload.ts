import { setTimeout as sleep } from 'node:timers/promises'
import { failedError } from '@prov/core'
import { header, isNetworkError, type RegistryClient } from './registry-client'
import type { Descriptor } from './types'

/**
 * Blob uploads of one repository (distribution spec "Pushing blobs"): a monolithic PUT up to the
 * chunk size, PATCH chunks beyond it with resume after a dropped connection, and a retry of the
 * whole upload when the registry lost it.
 */
export class BlobUploader {
  private readonly pushScope: string

  constructor(
    private readonly client: RegistryClient,
    private readonly repository: string,
  ) {
    this.pushScope = `repository:${repository}:pull,push`
  }

  /** Uploads `bytes`; `stored()` tells whether the blob landed after all (a commit cut before its answer). */
  async upload(descriptor: Descriptor, bytes: Buffer, stored: () => Promise<boolean>): Promise<void> {
    const chunkSize = this.client.options.chunkSize ?? 64 * 1024 * 1024
    for (let attempt = 1; ; attempt++) {
      try {
        await (bytes.length > chunkSize ? this.chunked(descriptor, bytes, chunkSize) : this.monolithic(descriptor, bytes))
        return
      } catch (error) {
        if (!isNetworkError(error) || attempt >= 3) throw error
        // The session is gone with the connection, or the commit landed before it dropped.
        if (await stored().catch(() => false)) return
        await sleep(200 * attempt)
      }
    }
  }

  private async monolithic(descriptor: Descriptor, bytes: Buffer): Promise<void> {
    const location = await this.openSession()
    const response = await this.client.send('PUT', this.withDigest(location, descriptor), {
      scope: this.pushScope,
      body: bytes,
      headers: { 'content-type': 'application/octet-stream' },
      expect: [201],
      retryNetwork: false,
      retryStatus: false,
    })
    response.resume()
  }

  private async chunked(descriptor: Descriptor, bytes: Buffer, chunkSize: number): Promise<void> {
    let location = await this.openSession()
    let offset = 0
    let interruptions = 0
    let resumed = false
    while (offset < bytes.length) {
      const end = Math.min(offset + chunkSize, bytes.length)
      try {
        const response = await this.client.send('PATCH', location, {
          scope: this.pushScope,
          body: bytes.subarray(offset, end),
          headers: { 'content-type': 'application/octet-stream', 'content-range': `${offset}-${end - 1}` },
          expect: [202],
          retryNetwork: false,
          retryStatus: false,
        })
        response.resume()
        location = this.sessionUrl(header(response.headers, 'location') ?? location)
        offset = end
        resumed = false
      } catch (error) {
        // A resumed session the registry refuses (distribution keeps part of a cut PATCH, and
        // its session state no longer matches) is started again from zero.
        const refusedResume: boolean = resumed && !isNetworkError(error)
        if ((!isNetworkError(error) && !refusedResume) || ++interruptions > 3) throw error
        // Resume: ask the session how much it has and continue from there; a session the
        // registry no longer knows restarts from zero.
        const uploaded: number | undefined = refusedResume ? undefined : await this.uploadedBytes(location).catch(() => undefined)
        resumed = uploaded !== undefined
        if (uploaded !== undefined) offset = uploaded
        else {
          location = await this.openSession()
          offset = 0
        }
      }
    }
    await this.client.request('PUT', this.withDigest(location, descriptor), {
      scope: this.pushScope,
      headers: { 'content-length': '0' },
      expect: [201],
      retryNetwork: false,
    })
  }

  private withDigest(location: string, descriptor: Descriptor): string {
    return `${location}${location.includes('?') ? '&' : '?'}digest=${encodeURIComponent(descriptor.digest)}`
  }

  private async openSession(): Promise<string> {
    const start = await this.client.request('POST', `/v2/${this.repository}/blobs/uploads/`, { scope: this.pushScope, expect: [202] })
    const location = header(start.headers, 'location')
    if (!location) throw failedError(`registry ${this.client.registry} opened no upload session`)
    return this.sessionUrl(location)
  }

  sessionUrl(location: string): string {
    return new URL(location, `${this.client.baseUrl}/`).toString()
  }

  private async uploadedBytes(location: string): Promise<number> {
    const status = await this.client.request('GET', location, { scope: this.pushScope, expect: [204] })
    const range = header(status.headers, 'range')?.match(/^(?:bytes=)?0-(\d+)$/)
    return range ? Number(range[1]) + 1 : 0
  }

  /** Cross-repository mount (`POST ...?mount=&from=`): true when the registry linked the blob. */
  async mount(descriptor: Descriptor, from: string): Promise<boolean> {
    const response = await this.client.request(
      'POST',
      `/v2/${this.repository}/blobs/uploads/?mount=${encodeURIComponent(descriptor.digest)}&from=${encodeURIComponent(from)}`,
      { scope: `${this.pushScope} repository:${from}:pull`, expect: [202, 201] },
    )
    if (response.status === 201) return true
    // Not mountable: the registry opened an upload session instead; cancel it.
    const location = header(response.headers, 'location')
    if (location) await this.client.request('DELETE', this.sessionUrl(location), { scope: this.pushScope, expect: [204, 404, 405] }).catch(() => undefined)
    return false
  }
}
