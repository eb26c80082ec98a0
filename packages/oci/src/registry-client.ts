import type { IncomingHttpHeaders, IncomingMessage } from 'node:http'
import type { Readable } from 'node:stream'
import { setTimeout as sleep } from 'node:timers/promises'
import { deniedError, failedError, notFoundError, ProvError } from '@prov/core'
import { type Credential, findCredential } from './credentials'
import { parseJson } from './json'
import { isLoopbackHost, isRepositoryName } from './ref'
import { MAX_ERROR_BODY_BYTES, MAX_LISTED_NAMES, MAX_RESPONSE_BYTES } from './types'
import { readVerified } from './verify'

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
}

export type Method = 'GET' | 'HEAD' | 'PUT' | 'POST' | 'PATCH' | 'DELETE'

export interface SendOptions {
  /** Scope for bearer tokens, e.g. `repository:prov/redis:pull,push`. */
  scope: string
  headers?: Record<string, string>
  body?: Buffer
  /** Statuses the caller handles itself (no error thrown, no retry). */
  expect?: number[]
  /** Send again after a network error (default: for GET, HEAD, PUT and DELETE). */
  retryNetwork?: boolean
  /** Send again after a 429 or 5xx (default true). */
  retryStatus?: boolean
}

export interface RequestOptions extends SendOptions {
  /** Most bytes of a successful answer's body read (default MAX_RESPONSE_BYTES); more is refused. */
  limit?: number
  /** What the body is, for messages. */
  what?: string
}

/** An answer with its body read (bounded). */
export interface RegistryResponse {
  status: number
  headers: IncomingHttpHeaders
  body: Buffer
}

interface Challenge {
  scheme: 'basic' | 'bearer'
  params: Record<string, string>
}

/** A header's value (the first of repeated ones). */
export function header(headers: IncomingHttpHeaders, name: string): string | undefined {
  const value = headers[name.toLowerCase()]
  return Array.isArray(value) ? value[0] : value
}

function parseChallenge(value: string | undefined): Challenge | undefined {
  const match = value?.match(/^\s*(\w+)\s*(.*)$/)
  if (!match) return undefined
  const scheme = match[1].toLowerCase()
  if (scheme !== 'basic' && scheme !== 'bearer') return undefined
  const params: Record<string, string> = {}
  for (const m of match[2].matchAll(/(\w+)="([^"]*)"/g)) params[m[1]] = m[2]
  return { scheme, params }
}

function nextLink(value: string | undefined): string | undefined {
  return value?.match(/<([^>]+)>\s*;\s*rel="?next"?/)?.[1]
}

/** An error body, read only for its message: the first MAX_ERROR_BODY_BYTES, the rest dropped. */
async function errorBody(response: Readable): Promise<Buffer> {
  const chunks: Buffer[] = []
  let size = 0
  try {
    for await (const chunk of response as AsyncIterable<Buffer>) {
      chunks.push(chunk)
      size += chunk.length
      if (size >= MAX_ERROR_BODY_BYTES) break
    }
  } catch {
    // a broken error body: the status still says what happened
  } finally {
    response.destroy()
  }
  return Buffer.concat(chunks).subarray(0, MAX_ERROR_BODY_BYTES)
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

/**
 * One registry host: scheme choice, the auth challenge flow, redirects, retries, bounded bodies.
 * Shared by its repositories. Everything goes over node:http(s): in a short-lived CLI process it
 * moves blobs several times faster than fetch, and one path means one set of rules.
 */
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
    this.baseUrl = `${isLoopbackHost(registry) || options.plainHttp ? 'http' : 'https'}://${registry}`
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

  private isOwnHost(url: string): boolean {
    return new URL(url).host === new URL(this.baseUrl).host
  }

  /** Answers a 401's WWW-Authenticate challenge for `scope`; false when there is none to answer. */
  private async answerChallenge(value: string | undefined, scope: string): Promise<boolean> {
    const challenge = parseChallenge(value)
    if (!challenge) return false
    this.challenge = challenge
    const authorization = await this.authorize(challenge, scope)
    this.authorization.set(scope, authorization)
    if (challenge.scheme === 'basic') this.authorization.set('*', authorization)
    return true
  }

  private basic(credential: Credential): string {
    return `Basic ${Buffer.from(`${credential.username}:${credential.password}`).toString('base64')}`
  }

  private async authorize(challenge: Challenge, scope: string): Promise<string> {
    const credential = this.getCredential()
    if (challenge.scheme === 'basic') {
      if (!credential)
        throw deniedError(`registry ${this.registry} requires authentication`, { hint: `prov-oci login ${this.registry} --username U --password-stdin` })
      return this.basic(credential)
    }
    const realm = challenge.params.realm
    if (!realm) throw failedError(`registry ${this.registry} sent a bearer challenge without realm`)
    const query = new URLSearchParams()
    if (challenge.params.service) query.set('service', challenge.params.service)
    for (const s of scope.split(' ')) if (s) query.append('scope', s)
    const url = `${realm}${realm.includes('?') ? '&' : '?'}${query}`
    let response: IncomingMessage
    try {
      response = await this.exchange('GET', url, credential ? { authorization: this.basic(credential) } : {}, undefined, { retryNetwork: true, attempts: 3 })
    } catch (error) {
      throw failedError(`cannot reach the token service ${realm}: ${(error as Error).message}`, { cause: error })
    }
    const status = response.statusCode ?? 0
    if (status === 401 || status === 403) {
      response.resume()
      throw deniedError(`authentication to ${this.registry} failed (token service answered ${status})`, {
        hint: `check the credentials: prov-oci login ${this.registry} --username U --password-stdin`,
      })
    }
    if (status >= 300) {
      response.resume()
      throw failedError(`token service ${realm} answered ${status}`)
    }
    const what = `the answer of the token service ${realm}`
    const body = parseJson<{ token?: unknown; access_token?: unknown } | null>(
      (await readVerified(response, { limit: MAX_RESPONSE_BYTES, what, where: realm })).bytes,
      what,
    )
    const token = body?.token ?? body?.access_token
    if (typeof token !== 'string' || !token) throw failedError(`token service ${realm} returned no token`)
    return `Bearer ${token}`
  }

  /**
   * Sends one request, following redirects (at most 5) and retrying a network error or a 429/5xx
   * with backoff when allowed; `headers` are only sent to this registry's own host.
   */
  private async exchange(
    method: Method,
    url: string,
    ownHeaders: Record<string, string>,
    body: Buffer | undefined,
    policy: { retryNetwork: boolean; retryStatus?: boolean; expect?: number[]; attempts?: number },
  ): Promise<IncomingMessage> {
    const attempts = policy.attempts ?? this.options.attempts ?? 4
    let redirects = 0
    for (let attempt = 1; ; attempt++) {
      const headers: Record<string, string> = body ? { 'content-length': String(body.length) } : {}
      // Credentials never go to another host: blob storage behind a redirect, a Link or Location header.
      if (this.isOwnHost(url)) Object.assign(headers, ownHeaders)
      let response: IncomingMessage
      try {
        response = await rawRequest(method, url, headers, body, this.options.insecure === true)
      } catch (error) {
        if (policy.retryNetwork && attempt < attempts) {
          await sleep(150 * 2 ** attempt)
          continue
        }
        throw failedError(`cannot reach registry ${this.registry}: ${(error as NodeJS.ErrnoException).code ?? (error as Error).message}`, {
          location: `${method} ${url}`,
          hint: isLoopbackHost(this.registry) ? 'is the registry running?' : 'check the address, or --plain-http for a registry without TLS',
          cause: error,
          details: { network: true },
        })
      }
      const status = response.statusCode ?? 0
      const location = header(response.headers, 'location')
      if ([301, 302, 303, 307, 308].includes(status) && location && redirects++ < 5) {
        response.resume()
        url = new URL(location, url).toString()
        attempt--
        continue
      }
      if ((status === 429 || status >= 500) && policy.retryStatus !== false && attempt < attempts && !(policy.expect ?? []).includes(status)) {
        response.resume()
        const retryAfter = Number(header(response.headers, 'retry-after'))
        await sleep(Number.isFinite(retryAfter) && retryAfter > 0 ? Math.min(retryAfter, 10) * 1000 : 150 * 2 ** attempt)
        continue
      }
      return response
    }
  }

  /**
   * One request with auth (challenge -> credentials/token -> once more), redirects and retries.
   * Resolves with the response head of a success or an expected status (the caller reads the
   * body); anything else is an error naming the registry's own error code.
   */
  async send(method: Method, path: string, options: SendOptions): Promise<IncomingMessage> {
    const url = this.url(path)
    const retryNetwork = options.retryNetwork ?? ['GET', 'HEAD', 'PUT', 'DELETE'].includes(method)
    for (let authRetried = false; ; authRetried = true) {
      const auth = this.authorization.get(options.scope) ?? (this.challenge?.scheme === 'basic' ? this.authorization.get('*') : undefined)
      const response = await this.exchange(method, url, { ...options.headers, ...(auth ? { authorization: auth } : {}) }, options.body, {
        retryNetwork,
        retryStatus: options.retryStatus,
        expect: options.expect,
      })
      const status = response.statusCode ?? 0
      if (status === 401 && !authRetried) {
        response.resume()
        if (await this.answerChallenge(header(response.headers, 'www-authenticate'), options.scope)) continue
      }
      if ((options.expect ?? []).includes(status) || (status >= 200 && status < 300)) return response
      throw this.errorFor(method, url, status, await errorBody(response))
    }
  }

  /** send() and the answer's whole body, bounded (an error body is read only for its message). */
  async request(method: Method, path: string, options: RequestOptions): Promise<RegistryResponse> {
    const response = await this.send(method, path, options)
    const where = `${method} ${this.url(path)}`
    const ok = (response.statusCode ?? 0) < 300
    const body = ok
      ? (await readVerified(response, { limit: options.limit ?? MAX_RESPONSE_BYTES, what: options.what ?? `answer to ${where}`, where })).bytes
      : await errorBody(response)
    return { status: response.statusCode ?? 0, headers: response.headers, body }
  }

  errorFor(method: string, url: string, status: number, bodyBytes: Buffer): ProvError {
    let code = ''
    let message = ''
    try {
      const first = parseJson<{ errors?: { code?: unknown; message?: unknown }[] } | null>(bodyBytes, 'error body')?.errors?.[0]
      code = typeof first?.code === 'string' ? first.code : ''
      message = typeof first?.message === 'string' ? first.message : ''
    } catch {
      // no JSON error body
    }
    const where = `${method} ${url}`
    const detail = [code, message].filter(Boolean).join(': ') || `HTTP ${status}`
    if (status === 401 || status === 403) {
      return deniedError(`access to ${this.registry} denied (${detail})`, {
        location: where,
        hint: `check the credentials: prov-oci login ${this.registry} --username U --password-stdin`,
      })
    }
    if (status === 404) return notFoundError(`not found on ${this.registry}: ${detail}`, { location: where })
    if (status === 405 && method === 'DELETE') {
      return failedError(`registry ${this.registry} does not allow deletes (${detail})`, {
        location: where,
        hint: 'enable deletes in the registry (storage.delete.enabled)',
      })
    }
    if (status === 400 || status === 415) return failedError(`registry ${this.registry} refused the request: ${detail}`, { location: where })
    return failedError(`registry ${this.registry} answered ${detail}`, { location: where })
  }

  /** `GET /v2/` (checks reachability and credentials). */
  async ping(): Promise<void> {
    await this.request('GET', '/v2/', { scope: 'registry:catalog:*' })
  }

  async catalog(): Promise<string[]> {
    const names = (await this.listPages('/v2/_catalog?n=1000', { scope: 'registry:catalog:*' }, 'repositories', `the catalog of ${this.registry}`)) ?? []
    // Only names a registry may hold: the answer is data from outside (see Target.tags).
    return names.filter(isRepositoryName)
  }

  /**
   * Names from a paginated list (`Link: <...>; rel="next"`), each page bounded, all of them
   * bounded by MAX_LISTED_NAMES: a registry that never stops paging is cut off. Undefined when the
   * first page is an expected non-200 status (a 404 for an unknown repository).
   */
  /** A link of the registry's as a path on this registry; a link to another host is refused. */
  private samePath(link: string | undefined, what: string): string | undefined {
    if (link === undefined) return undefined
    const base = new URL(`http://${this.registry}/`)
    let url: URL
    try {
      url = new URL(link, base)
    } catch {
      throw failedError(`${what}: the registry's next-page link is not a URL`, { location: link.slice(0, 200) })
    }
    if (url.host !== base.host)
      throw failedError(`${what}: the registry's next-page link points to another host (${url.host}): refused`, { location: link.slice(0, 200) })
    return `${url.pathname}${url.search}`
  }

  async listPages(first: string, options: SendOptions, field: 'tags' | 'repositories', what: string): Promise<string[] | undefined> {
    const names: string[] = []
    const seen = new Set<string>()
    for (let path: string | undefined = first; path; ) {
      // The next page is the registry's say, so it stays on this registry and never repeats.
      if (seen.has(path)) throw failedError(`${what} links back to a page it already gave: refused`, { location: path })
      seen.add(path)
      const response: RegistryResponse = await this.request('GET', path, { ...options, what: `a page of ${what}` })
      if (response.status !== 200) return undefined
      const page = parseJson<Record<string, unknown> | null>(response.body, `a page of ${what}`)?.[field] ?? []
      if (!Array.isArray(page) || page.some((n) => typeof n !== 'string')) throw failedError(`a page of ${what} is not a list of names`, { location: path })
      names.push(...(page as string[]))
      if (names.length > MAX_LISTED_NAMES) throw failedError(`${what} lists more than ${MAX_LISTED_NAMES} names: refused`, { location: path })
      // A page with nothing on it that still points on is a loop.
      path = page.length ? this.samePath(nextLink(header(response.headers, 'link')), what) : undefined
    }
    return names
  }
}

/** Whether an error is a dropped connection (worth resuming), not a refusal. */
export function isNetworkError(error: unknown): boolean {
  return error instanceof ProvError && error.details?.network === true
}
