import { createHash } from 'node:crypto'
import type { IncomingMessage } from 'node:http'
import { Readable, Transform } from 'node:stream'
import type { ReadableStream as WebReadableStream } from 'node:stream/web'
import { setTimeout as sleep } from 'node:timers/promises'
import { deniedError, failedError, notFoundError, ProvError, usageError } from '@prov/core'
import type { FetchResponse } from 'ofetch'
import { type Credential, findCredential } from './credentials'
import { sha256, verifyBlob, writeBlobStream } from './digest'
import { isDigest, isLoopbackHost } from './ref'
import type { FetchedManifest, Target } from './target'
import {
  ACCEPT_MANIFESTS,
  type Descriptor,
  type ImageIndex,
  MAX_BLOB_BYTES,
  MAX_ERROR_BODY_BYTES,
  MAX_INDEX_MANIFESTS,
  MAX_LISTED_NAMES,
  MAX_MANIFEST_BYTES,
  MAX_RESPONSE_BYTES,
  MEDIA,
  manifestMediaTypes,
} from './types'
import { readVerified, verifiedStream } from './verify'

export interface RegistryOptions {
  /** Plain HTTP for a non-loopback registry (loopback registries use HTTP anyway). */
  plainHttp?: boolean
  /** TLS without certificate verification. */
  insecure?: boolean
  /** Explicit credential (otherwise the stores are searched). */
  credential?: Credential
  /** Blobs larger than this go up in PATCH chunks (default 64 MiB). */
  chunkSize?: number
  /** Attempts for one request on 429/5xx/network errors (default 4). */
  attempts?: number
  /** Called on each request (tests and --debug). */
  onRequest?: (method: string, url: string) => void
}

type Method = 'GET' | 'HEAD' | 'PUT' | 'POST' | 'PATCH' | 'DELETE'
interface RequestOptions {
  headers?: Record<string, string>
  body?: Buffer
  /** Statuses the caller handles itself (no error thrown). */
  expect?: number[]
  /** Scope for bearer tokens, e.g. `repository:prov/redis:pull,push`. */
  scope: string
  /** Retry on network errors (idempotent requests only). */
  retryNetwork?: boolean
  /** Most bytes of a successful answer's body read (default MAX_RESPONSE_BYTES); more is refused. */
  limit?: number
  /** What the body is, for the message when it is too large. */
  what?: string
}

/** An answer with its body read, never more than the request's limit. */
export interface RegistryResponse {
  status: number
  headers: Headers
  body: Buffer
}

interface Challenge {
  scheme: 'basic' | 'bearer'
  params: Record<string, string>
}

// ofetch (and with it undici) loads on the first request only: a cached pull never pays for it.
let ofetchModule: Promise<typeof import('ofetch')> | undefined
const ofetchLib = async () => (await (ofetchModule ??= import('ofetch'))).ofetch

function parseChallenge(header: string | null): Challenge | undefined {
  if (!header) return undefined
  const match = header.match(/^\s*(\w+)\s*(.*)$/)
  if (!match) return undefined
  const scheme = match[1].toLowerCase()
  if (scheme !== 'basic' && scheme !== 'bearer') return undefined
  const params: Record<string, string> = {}
  for (const m of match[2].matchAll(/(\w+)="([^"]*)"/g)) params[m[1]] = m[2]
  return { scheme, params }
}

function isNetworkError(error: unknown): boolean {
  const text = `${(error as Error)?.message ?? ''} ${String((error as { cause?: unknown })?.cause ?? '')}`
  return /fetch failed|ECONNRESET|ECONNREFUSED|EPIPE|socket|other side closed|terminated|ETIMEDOUT|UND_ERR|aborted/i.test(text)
}

/** One registry host: scheme choice, the auth challenge flow, retries. Shared by its repositories. */
export class RegistryClient {
  readonly baseUrl: string
  private authorization = new Map<string, string>()
  private challenge: Challenge | undefined
  private credential: Credential | undefined
  private credentialLoaded = false

  constructor(
    readonly registry: string,
    readonly options: RegistryOptions = {},
  ) {
    const loopback = isLoopbackHost(registry)
    if (options.insecure) process.env.NODE_TLS_REJECT_UNAUTHORIZED = '0'
    this.baseUrl = `${loopback || options.plainHttp ? 'http' : 'https'}://${registry}`
    if (options.credential) {
      this.credential = options.credential
      this.credentialLoaded = true
    }
  }

  private getCredential(): Credential | undefined {
    if (!this.credentialLoaded) {
      this.credential = findCredential(this.registry)
      this.credentialLoaded = true
    }
    return this.credential
  }

  url(path: string): string {
    return path.startsWith('http://') || path.startsWith('https://') ? path : `${this.baseUrl}${path}`
  }

  /** Answers a 401's WWW-Authenticate challenge for `scope`; false when there is none to answer. */
  private async answerChallenge(header: string | null, scope: string): Promise<boolean> {
    const challenge = parseChallenge(header)
    if (!challenge) return false
    this.challenge = challenge
    const value = await this.authorize(challenge, scope)
    this.authorization.set(scope, value)
    if (challenge.scheme === 'basic') this.authorization.set('*', value)
    return true
  }

  private async authorize(challenge: Challenge, scope: string): Promise<string> {
    const credential = this.getCredential()
    if (challenge.scheme === 'basic') {
      if (!credential)
        throw deniedError(`registry ${this.registry} requires authentication`, { hint: `prov-oci login ${this.registry} --username U --password-stdin` })
      return `Basic ${Buffer.from(`${credential.username}:${credential.password}`).toString('base64')}`
    }
    const realm = challenge.params.realm
    if (!realm) throw failedError(`registry ${this.registry} sent a bearer challenge without realm`)
    const query = new URLSearchParams()
    if (challenge.params.service) query.set('service', challenge.params.service)
    for (const s of scope.split(' ')) if (s) query.append('scope', s)
    const headers: Record<string, string> = {}
    if (credential) headers.authorization = `Basic ${Buffer.from(`${credential.username}:${credential.password}`).toString('base64')}`
    let response: FetchResponse<WebReadableStream>
    try {
      response = await (await ofetchLib()).raw(`${realm}${realm.includes('?') ? '&' : '?'}${query}`, {
        headers,
        retry: 2,
        ignoreResponseError: true,
        responseType: 'stream',
      })
    } catch (error) {
      throw failedError(`cannot reach the token service ${realm}: ${(error as Error).message}`, { cause: error })
    }
    const bytes = await readBody(
      bodyOf(response),
      `answer of the token service ${realm}`,
      realm,
      response.ok ? MAX_RESPONSE_BYTES : MAX_ERROR_BODY_BYTES,
      response.ok,
    )
    if (response.status === 401 || response.status === 403) {
      throw deniedError(`authentication to ${this.registry} failed (token service answered ${response.status})`, {
        hint: `check the credentials: prov-oci login ${this.registry} --username U --password-stdin`,
      })
    }
    if (response.status >= 300) throw failedError(`token service ${realm} answered ${response.status}`)
    const body = parseJson<{ token?: string; access_token?: string }>(bytes, `answer of the token service ${realm}`)
    const token = body.token ?? body.access_token
    if (!token) throw failedError(`token service ${realm} returned no token`)
    return `Bearer ${token}`
  }

  /** One request with auth (challenge -> credentials/token -> retry once) and retries with backoff. */
  async request(method: Method, path: string, options: RequestOptions): Promise<RegistryResponse> {
    const attempts = this.options.attempts ?? 4
    let authRetried = false
    for (let attempt = 1; ; attempt++) {
      const headers: Record<string, string> = { ...(options.headers ?? {}) }
      const auth = this.authorization.get(options.scope) ?? (this.challenge?.scheme === 'basic' ? this.authorization.get('*') : undefined)
      // Credentials go to this registry only, never to a host a Link or Location header names.
      if (auth && this.isOwnHost(this.url(path))) headers.authorization = auth
      this.options.onRequest?.(method, this.url(path))
      let response: FetchResponse<WebReadableStream>
      try {
        response = (await (
          await ofetchLib()
        ).raw(this.url(path), {
          method,
          headers,
          body: options.body,
          retry: 0,
          redirect: 'follow',
          ignoreResponseError: true,
          responseType: 'stream',
          timeout: 600_000,
        })) as FetchResponse<WebReadableStream>
      } catch (error) {
        if (error instanceof ProvError) throw error
        if (options.retryNetwork !== false && isNetworkError(error) && attempt < attempts && method !== 'POST' && method !== 'PATCH') {
          await sleep(150 * 2 ** attempt)
          continue
        }
        const cause = (error as { cause?: { code?: string; message?: string } }).cause
        const detail = cause?.code ?? cause?.message ?? (error as Error).message
        throw failedError(`cannot reach registry ${this.registry}: ${detail}`, {
          location: `${method} ${this.url(path)}`,
          hint: isLoopbackHost(this.registry) ? 'is the registry running?' : 'check the address, or --plain-http for a registry without TLS',
          cause: error,
          details: { network: true },
        })
      }
      const ok = (options.expect ?? []).includes(response.status) || (response.status >= 200 && response.status < 300)
      const where = `${method} ${this.url(path)}`
      const body =
        method === 'HEAD'
          ? Buffer.alloc(0)
          : await readBody(bodyOf(response), options.what ?? `answer to ${where}`, where, ok ? (options.limit ?? MAX_RESPONSE_BYTES) : MAX_ERROR_BODY_BYTES, ok)
      if (response.status === 401 && !authRetried) {
        if (await this.answerChallenge(response.headers.get('www-authenticate'), options.scope)) {
          authRetried = true
          attempt--
          continue
        }
      }
      if ((response.status === 429 || response.status >= 500) && attempt < attempts && !(options.expect ?? []).includes(response.status)) {
        const retryAfter = Number(response.headers.get('retry-after'))
        await sleep(Number.isFinite(retryAfter) && retryAfter > 0 ? Math.min(retryAfter, 10) * 1000 : 150 * 2 ** attempt)
        continue
      }
      if (ok) return { status: response.status, headers: response.headers, body }
      throw this.errorFromParts(method, path, response.status, body)
    }
  }

  private isOwnHost(url: string): boolean {
    return new URL(url).host === new URL(this.baseUrl).host
  }

  errorFromParts(method: string, path: string, status: number, bodyBytes: Buffer): ProvError {
    const response = { status }
    let code = ''
    let message = ''
    try {
      const body = JSON.parse(bodyBytes.toString('utf8')) as { errors?: { code?: string; message?: string }[] }
      code = body.errors?.[0]?.code ?? ''
      message = body.errors?.[0]?.message ?? ''
    } catch {
      // no JSON error body
    }
    const where = `${method} ${this.url(path)}`
    const detail = [code, message].filter(Boolean).join(': ') || `HTTP ${response.status}`
    if (response.status === 401 || response.status === 403) {
      return deniedError(`access to ${this.registry} denied (${detail})`, {
        location: where,
        hint: `check the credentials: prov-oci login ${this.registry} --username U --password-stdin`,
      })
    }
    if (response.status === 404) return notFoundError(`not found on ${this.registry}: ${detail}`, { location: where })
    if (response.status === 405 && method === 'DELETE') {
      return failedError(`registry ${this.registry} does not allow deletes (${detail})`, {
        location: where,
        hint: 'enable deletes in the registry (storage.delete.enabled)',
      })
    }
    if (response.status === 400 || response.status === 415) return failedError(`registry ${this.registry} refused the request: ${detail}`, { location: where })
    return failedError(`registry ${this.registry} answered ${detail}`, { location: where })
  } /**
   * Blob bodies go over node:http(s) directly: in a short-lived CLI process it moves tens of
   * megabytes several times faster than fetch, whose stream path is still cold. Same auth
   * (challenge flow), redirects, and retries (GET only) as request().
   */
  async bulk(
    method: 'GET' | 'PUT' | 'PATCH',
    path: string,
    options: { scope: string; headers?: Record<string, string>; body?: Buffer; expect?: number[] },
  ): Promise<IncomingMessage> {
    const attempts = this.options.attempts ?? 4
    let authRetried = false
    let redirects = 0
    let url = this.url(path)
    for (let attempt = 1; ; attempt++) {
      const headers: Record<string, string> = { ...(options.headers ?? {}) }
      const auth = this.authorization.get(options.scope) ?? (this.challenge?.scheme === 'basic' ? this.authorization.get('*') : undefined)
      // Credentials never follow a redirect to another host (blob storage behind the registry).
      if (auth && this.isOwnHost(url)) headers.authorization = auth
      if (options.body) headers['content-length'] = String(options.body.length)
      this.options.onRequest?.(method, url)
      let response: IncomingMessage
      try {
        response = await rawRequest(method, url, headers, options.body, this.options.insecure === true)
      } catch (error) {
        if (method === 'GET' && attempt < attempts) {
          await sleep(150 * 2 ** attempt)
          continue
        }
        const detail = (error as NodeJS.ErrnoException).code ?? (error as Error).message
        throw failedError(`cannot reach registry ${this.registry}: ${detail}`, {
          location: `${method} ${url}`,
          hint: isLoopbackHost(this.registry) ? 'is the registry running?' : 'check the address, or --plain-http for a registry without TLS',
          cause: error,
          details: { network: true },
        })
      }
      const status = response.statusCode ?? 0
      const location = response.headers.location
      if ([301, 302, 303, 307, 308].includes(status) && location && redirects++ < 5) {
        response.resume()
        url = new URL(location, url).toString()
        attempt--
        continue
      }
      if (status === 401 && !authRetried) {
        response.resume()
        if (await this.answerChallenge((response.headers['www-authenticate'] as string | undefined) ?? null, options.scope)) {
          authRetried = true
          attempt--
          continue
        }
      }
      if ((status === 429 || status >= 500) && attempt < attempts && method === 'GET') {
        response.resume()
        await sleep(150 * 2 ** attempt)
        continue
      }
      if ((options.expect ?? []).includes(status) || (status >= 200 && status < 300)) return response
      throw this.errorFromParts(method, url, status, await readBody(response, `answer to ${method} ${url}`, url, MAX_ERROR_BODY_BYTES, false))
    }
  }

  /** `GET /v2/` (checks reachability and credentials). */
  async ping(): Promise<void> {
    await this.request('GET', '/v2/', { scope: 'registry:catalog:*' })
  }

  async catalog(): Promise<string[]> {
    return (await this.listPages('/v2/_catalog?n=1000', { scope: 'registry:catalog:*' }, 'repositories', `the catalog of ${this.registry}`)) ?? []
  }

  /**
   * Names from a paginated list (`Link: <...>; rel="next"`), each page bounded, all of them
   * bounded by MAX_LISTED_NAMES: a registry that never stops paging is cut off.
   */
  async listPages(first: string, options: { scope: string; expect?: number[] }, field: 'tags' | 'repositories', what: string): Promise<string[] | undefined> {
    const names: string[] = []
    for (let path: string | undefined = first; path; ) {
      const response: RegistryResponse = await this.request('GET', path, options)
      if (response.status !== 200) return undefined
      const page = parseJson<Record<string, unknown>>(response.body, `a page of ${what}`)[field] ?? []
      if (!Array.isArray(page) || page.some((n) => typeof n !== 'string')) throw failedError(`a page of ${what} is not a list of names`, { location: path })
      names.push(...(page as string[]))
      if (names.length > MAX_LISTED_NAMES) throw failedError(`${what} lists more than ${MAX_LISTED_NAMES} names: refused`, { location: path })
      const next = nextLink(response.headers.get('link'))
      // A page with nothing new that still points on is a loop.
      path = next && page.length ? next : undefined
    }
    return names
  }
}

/** One HTTP(S) request with node's own client; resolves with the response head. */
async function rawRequest(method: string, url: string, headers: Record<string, string>, body: Buffer | undefined, insecure: boolean): Promise<IncomingMessage> {
  const parsed = new URL(url)
  const lib = parsed.protocol === 'https:' ? await import('node:https') : await import('node:http')
  return new Promise((resolve, reject) => {
    const request = lib.request(parsed, { method, headers, ...(parsed.protocol === 'https:' ? { rejectUnauthorized: !insecure } : {}) }, resolve)
    request.on('error', reject)
    request.setTimeout(600_000, () => request.destroy(new Error('timed out')))
    request.end(body)
  })
}

function bodyOf(response: FetchResponse<WebReadableStream>): Readable | undefined {
  return response.body ? Readable.fromWeb(response.body as WebReadableStream) : undefined
}

/**
 * An answer's body, at most `limit` bytes: more is refused when `strict`, else cut off (an error
 * body is read only for its message). The rest is never read.
 */
async function readBody(source: Readable | undefined, what: string, where: string, limit: number, strict = true): Promise<Buffer> {
  if (!source) return Buffer.alloc(0)
  if (strict) return (await readVerified(source, { limit, what, where })).bytes
  const chunks: Buffer[] = []
  let size = 0
  try {
    for await (const chunk of source as AsyncIterable<Buffer>) {
      chunks.push(chunk)
      size += chunk.length
      if (size >= limit) break
    }
  } catch {
    // a broken error body: the status still says what happened
  } finally {
    source.destroy()
  }
  return Buffer.concat(chunks).subarray(0, limit)
}

function parseJson<T>(bytes: Buffer, what: string): T {
  try {
    return JSON.parse(bytes.toString('utf8')) as T
  } catch {
    throw failedError(`${what} is not JSON`)
  }
}

/** The descriptors of a referrers index, bounded in number. */
function referrersOf(bytes: Buffer, what: string): Descriptor[] {
  const manifests = parseJson<ImageIndex>(bytes, what).manifests ?? []
  if (!Array.isArray(manifests)) throw failedError(`${what} has no list of manifests`)
  if (manifests.length > MAX_INDEX_MANIFESTS) throw failedError(`${what} lists more than ${MAX_INDEX_MANIFESTS} manifests: refused`)
  return manifests
}

function nextLink(header: string | null): string | undefined {
  const match = header?.match(/<([^>]+)>\s*;\s*rel="?next"?/)
  return match?.[1]
}

async function pool<T>(items: T[], limit: number, work: (item: T) => Promise<void>): Promise<void> {
  let next = 0
  const runners = Array.from({ length: Math.max(1, Math.min(limit, items.length)) }, async () => {
    while (next < items.length) await work(items[next++])
  })
  await Promise.all(runners)
}

export { pool }

/** One repository on a registry, as a Target. */
export class RegistryTarget implements Target {
  readonly kind = 'registry' as const
  readonly name: string
  private readonly pullScope: string
  private readonly pushScope: string

  constructor(
    readonly client: RegistryClient,
    readonly repository: string,
  ) {
    this.name = `${client.registry}/${repository}`
    this.pullScope = `repository:${repository}:pull`
    this.pushScope = `repository:${repository}:pull,push`
  }

  async resolve(reference: string): Promise<Descriptor> {
    const response = await this.client.request('HEAD', `/v2/${this.repository}/manifests/${reference}`, {
      scope: this.pullScope,
      headers: { accept: ACCEPT_MANIFESTS },
      expect: [404],
    })
    if (response.status === 404) throw this.notFound(reference)
    const digest = response.headers.get('docker-content-digest')
    const mediaType = (response.headers.get('content-type') ?? MEDIA.manifest).split(';')[0].trim()
    const size = Number(response.headers.get('content-length'))
    if (digest && isDigest(digest) && Number.isFinite(size) && size > 0) return { mediaType, digest, size }
    return (await this.fetchManifest(reference)).descriptor
  }

  private notFound(reference: string) {
    return notFoundError(`${this.name}${isDigest(reference) ? '@' : ':'}${reference} not found`, {
      hint: `list the tags with: prov-oci tags ${this.name}`,
    })
  }

  async fetchManifest(reference: string): Promise<FetchedManifest> {
    const response = await this.client.request('GET', `/v2/${this.repository}/manifests/${reference}`, {
      scope: this.pullScope,
      headers: { accept: ACCEPT_MANIFESTS },
      expect: [404],
      limit: MAX_MANIFEST_BYTES,
      what: `manifest of ${this.name}:${reference}`,
    })
    if (response.status === 404) throw this.notFound(reference)
    const bytes = response.body
    let mediaType = (response.headers.get('content-type') ?? '').split(';')[0].trim()
    let parsed: { mediaType?: string }
    try {
      parsed = JSON.parse(bytes.toString('utf8'))
    } catch {
      throw failedError(`manifest of ${this.name}:${reference} is not JSON`)
    }
    if (parsed.mediaType) mediaType = parsed.mediaType
    if (!manifestMediaTypes.includes(mediaType)) {
      throw failedError(`unknown manifest media type '${mediaType || 'none'}' for ${this.name}:${reference}`, {
        hint: `prov-oci reads ${manifestMediaTypes.join(', ')}`,
      })
    }
    const digest = isDigest(reference) ? reference : (response.headers.get('docker-content-digest') ?? sha256(bytes))
    verifyBlob({ digest, size: bytes.length }, bytes, `${this.name}:${reference}`)
    return { descriptor: { mediaType, digest, size: bytes.length }, bytes }
  }

  async fetchBlob(descriptor: Descriptor): Promise<Buffer> {
    if (descriptor.size > MAX_BLOB_BYTES)
      throw failedError(`blob ${descriptor.digest} of ${descriptor.size} bytes exceeds the limit ${MAX_BLOB_BYTES}: refused`)
    const where = `${this.name}@${descriptor.digest}`
    const response = await this.client.bulk('GET', `/v2/${this.repository}/blobs/${descriptor.digest}`, { scope: this.pullScope, expect: [404] })
    if (response.statusCode === 404) {
      response.resume()
      throw notFoundError(`blob ${descriptor.digest} not found in ${this.name}`)
    }
    // Streamed into a buffer of the announced size and hashed as it arrives: one pass, one copy,
    // and a registry sending more than announced is cut off at once.
    const bytes = Buffer.allocUnsafe(descriptor.size)
    const hash = createHash('sha256')
    let offset = 0
    try {
      for await (const chunk of response as AsyncIterable<Buffer>) {
        if (offset + chunk.length > descriptor.size) {
          throw failedError(`blob ${descriptor.digest} is larger than its descriptor says (${descriptor.size} bytes): refused, nothing written`, {
            location: where,
          })
        }
        bytes.set(chunk, offset)
        hash.update(chunk)
        offset += chunk.length
      }
    } catch (error) {
      response.destroy()
      if (error instanceof ProvError) throw error
      throw failedError(`download of ${descriptor.digest} from ${this.client.registry} broke off: ${(error as Error).message}`, {
        location: where,
        details: { network: true },
      })
    }
    if (offset !== descriptor.size)
      throw failedError(`blob ${descriptor.digest} has ${offset} bytes, the descriptor says ${descriptor.size}: refused`, { location: where })
    const actual = `sha256:${hash.digest('hex')}`
    if (actual !== descriptor.digest)
      throw failedError(`digest mismatch: expected ${descriptor.digest}, got ${actual}: refused, nothing written`, { location: where })
    return bytes
  }

  async openBlob(descriptor: Descriptor): Promise<Readable> {
    if (descriptor.size > MAX_BLOB_BYTES)
      throw failedError(`blob ${descriptor.digest} of ${descriptor.size} bytes exceeds the limit ${MAX_BLOB_BYTES}: refused`)
    const response = await this.client.bulk('GET', `/v2/${this.repository}/blobs/${descriptor.digest}`, { scope: this.pullScope, expect: [404] })
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

  /**
   * Streams a blob straight into `path` (temp file + rename), hashing as it goes: memory stays
   * flat for large layers. A mismatch or a short read leaves nothing under `path`.
   */
  async downloadBlob(descriptor: Descriptor, path: string): Promise<void> {
    if (descriptor.size > MAX_BLOB_BYTES)
      throw failedError(`blob ${descriptor.digest} of ${descriptor.size} bytes exceeds the limit ${MAX_BLOB_BYTES}: refused`)
    const where = `${this.name}@${descriptor.digest}`
    const response = await this.client.bulk('GET', `/v2/${this.repository}/blobs/${descriptor.digest}`, { scope: this.pullScope, expect: [404] })
    if (response.statusCode === 404) {
      response.resume()
      throw notFoundError(`blob ${descriptor.digest} not found in ${this.name}`)
    }
    const hash = createHash('sha256')
    let size = 0
    const checked = new Transform({
      transform(chunk: Buffer, _encoding, done) {
        size += chunk.length
        if (size > descriptor.size)
          return done(
            failedError(`blob ${descriptor.digest} is larger than its descriptor says (${descriptor.size} bytes): refused, nothing written`, {
              location: where,
            }),
          )
        hash.update(chunk)
        done(null, chunk)
      },
    })
    await writeBlobStream(path, response, checked, () => {
      if (size !== descriptor.size)
        throw failedError(`blob ${descriptor.digest} has ${size} bytes, the descriptor says ${descriptor.size}: refused`, { location: where })
      const actual = `sha256:${hash.digest('hex')}`
      if (actual !== descriptor.digest)
        throw failedError(`digest mismatch: expected ${descriptor.digest}, got ${actual}: refused, nothing written`, { location: where })
    })
  }

  async exists(descriptor: Descriptor): Promise<boolean> {
    const response = await this.client.request('HEAD', `/v2/${this.repository}/blobs/${descriptor.digest}`, { scope: this.pullScope, expect: [404] })
    return response.status === 200
  }

  /** Cross-repository mount: the registry links a blob it already holds in `from` (no bytes sent). */
  async mount(descriptor: Descriptor, from: string): Promise<boolean> {
    const response = await this.client.request(
      'POST',
      `/v2/${this.repository}/blobs/uploads/?mount=${encodeURIComponent(descriptor.digest)}&from=${encodeURIComponent(from)}`,
      { scope: `${this.pushScope} repository:${from}:pull`, expect: [202, 201] },
    )
    if (response.status === 201) return true
    // Not mountable: the registry opened an upload session instead; cancel it.
    const location = response.headers.get('location')
    if (location) await this.client.request('DELETE', this.sessionUrl(location), { scope: this.pushScope, expect: [204, 404, 405] }).catch(() => undefined)
    return false
  }

  private sessionUrl(location: string): string {
    return new URL(location, `${this.client.baseUrl}/`).toString()
  }

  async pushBlob(descriptor: Descriptor, bytes: Buffer, options: { verified?: boolean } = {}): Promise<void> {
    if (!options.verified) verifyBlob(descriptor, bytes, 'local blob')
    if (await this.exists(descriptor)) return
    const chunkSize = this.client.options.chunkSize ?? 64 * 1024 * 1024
    for (let attempt = 1; ; attempt++) {
      try {
        await this.upload(descriptor, bytes, chunkSize)
        return
      } catch (error) {
        const network = error instanceof ProvError && error.details?.network === true
        if (!network || attempt >= 3) throw error
        // The session is gone with the connection, or the commit landed before it dropped.
        if (await this.exists(descriptor).catch(() => false)) return
        await sleep(200 * attempt)
      }
    }
  }

  private async upload(descriptor: Descriptor, bytes: Buffer, chunkSize: number): Promise<void> {
    let location = await this.openSession()
    if (bytes.length > chunkSize) {
      let offset = 0
      let interruptions = 0
      while (offset < bytes.length) {
        const end = Math.min(offset + chunkSize, bytes.length)
        try {
          const response = await this.client.bulk('PATCH', location, {
            scope: this.pushScope,
            body: bytes.subarray(offset, end),
            headers: { 'content-type': 'application/octet-stream', 'content-range': `${offset}-${end - 1}` },
            expect: [202],
          })
          response.resume()
          location = this.sessionUrl(response.headers.location ?? location)
          offset = end
        } catch (error) {
          if (!(error instanceof ProvError && error.details?.network === true) || ++interruptions > 3) throw error
          // Resume: ask the session how much it has and continue from there; a session the
          // registry no longer trusts (distribution after a cut PATCH) restarts from zero.
          const resumed = await this.uploadedBytes(location).catch(() => undefined)
          if (resumed !== undefined) offset = resumed
          else {
            location = await this.openSession()
            offset = 0
          }
        }
      }
      await this.client.request('PUT', `${location}${location.includes('?') ? '&' : '?'}digest=${encodeURIComponent(descriptor.digest)}`, {
        scope: this.pushScope,
        headers: { 'content-length': '0' },
        expect: [201],
        retryNetwork: false,
      })
      return
    }
    const response = await this.client.bulk('PUT', `${location}${location.includes('?') ? '&' : '?'}digest=${encodeURIComponent(descriptor.digest)}`, {
      scope: this.pushScope,
      body: bytes,
      headers: { 'content-type': 'application/octet-stream' },
      expect: [201],
    })
    response.resume()
  }

  private async openSession(): Promise<string> {
    const start = await this.client.request('POST', `/v2/${this.repository}/blobs/uploads/`, { scope: this.pushScope, expect: [202] })
    const location = start.headers.get('location')
    if (!location) throw failedError(`registry ${this.client.registry} opened no upload session`)
    return this.sessionUrl(location)
  }

  private async uploadedBytes(location: string): Promise<number> {
    const status = await this.client.request('GET', location, { scope: this.pushScope, expect: [204] })
    const range = status.headers.get('range')?.match(/^(?:bytes=)?0-(\d+)$/)
    return range ? Number(range[1]) + 1 : 0
  }

  async pushManifest(descriptor: Descriptor, bytes: Buffer, tag?: string): Promise<void> {
    verifyBlob(descriptor, bytes, 'manifest')
    const response = await this.client.request('PUT', `/v2/${this.repository}/manifests/${tag ?? descriptor.digest}`, {
      scope: this.pushScope,
      body: bytes,
      headers: { 'content-type': descriptor.mediaType },
      expect: [201],
    })
    const stored = response.headers.get('docker-content-digest')
    if (stored && stored !== descriptor.digest) throw failedError(`registry stored the manifest as ${stored}, expected ${descriptor.digest}`)
  }

  async tags(): Promise<string[]> {
    const tags = await this.client.listPages(
      `/v2/${this.repository}/tags/list?n=1000`,
      { scope: this.pullScope, expect: [404] },
      'tags',
      `the tags of ${this.name}`,
    )
    if (!tags) throw notFoundError(`repository ${this.name} not found`, { hint: `prov-oci catalog ${this.client.registry}` })
    return tags.sort()
  }

  async delete(reference: string): Promise<Descriptor> {
    // The distribution spec deletes manifests by digest only.
    const descriptor = await this.resolve(reference)
    await this.client.request('DELETE', `/v2/${this.repository}/manifests/${descriptor.digest}`, {
      scope: `repository:${this.repository}:delete,pull,push`,
      expect: [202],
    })
    return descriptor
  }

  async referrers(digest: string, artifactType?: string): Promise<Descriptor[]> {
    const query = artifactType ? `?artifactType=${encodeURIComponent(artifactType)}` : ''
    const response = await this.client.request('GET', `/v2/${this.repository}/referrers/${digest}${query}`, { scope: this.pullScope, expect: [404, 400, 405] })
    let list: Descriptor[] | undefined
    if (response.status === 200 && (response.headers.get('content-type') ?? '').includes(MEDIA.index)) {
      list = referrersOf(response.body, `the referrers of ${digest} in ${this.name}`)
    }
    if (!list) list = await this.fallbackReferrers(digest)
    return artifactType ? list.filter((d) => d.artifactType === artifactType) : list
  }

  /** The OCI 1.1 fallback: an image index tagged `sha256-<hex>` listing the referrers. */
  fallbackTag(digest: string): string {
    return digest.replace(':', '-')
  }

  async fallbackReferrers(digest: string): Promise<Descriptor[]> {
    try {
      const { bytes } = await this.fetchManifest(this.fallbackTag(digest))
      return referrersOf(bytes, `the referrers index ${this.name}:${this.fallbackTag(digest)}`)
    } catch (error) {
      if (error instanceof ProvError && error.code === 5) return []
      throw error
    }
  }

  /** Whether the registry answers the referrers API (distribution 2.x does not). */
  async supportsReferrers(digest: string): Promise<boolean> {
    const response = await this.client.request('GET', `/v2/${this.repository}/referrers/${digest}`, { scope: this.pullScope, expect: [404, 400, 405] })
    return response.status === 200
  }
}

export function assertRepository(repository: string | undefined): string {
  if (!repository) throw usageError('a repository is required')
  return repository
}
