import { ExitCode, ProvError } from '@prov/core'
import { ofetch } from 'ofetch'

/** What a cloud API said about a failed request, read from its own error body. */
export interface ApiFault {
  /** The API's own error code (`invalid_input`, `RESOURCE_LIMIT`...), when it gives one. */
  code?: string
  message?: string
}

export interface CloudApiOptions {
  /** Provider name, for messages (`hcloud`, `upcloud`). */
  provider: string
  /** Base URL the paths are appended to (no trailing slash). */
  endpoint: string
  /** Authorization and other fixed headers (never logged). */
  headers: Record<string, string>
  /** Seconds one request may take. */
  requestTimeout: number
  /** Extra attempts after a 429, a 5xx of a safe request, or a network failure. */
  retries: number
  /** The credential's name for hints (`HCLOUD_TOKEN`). */
  credentialHint: string
  /** Reads the API's error body. */
  faultOf(body: unknown): ApiFault
  /** API error codes that mean an account limit (quota) was reached: exit 1, not a usage error. */
  quotaCodes: readonly string[]
}

export type Method = 'GET' | 'POST' | 'PUT' | 'DELETE'

export interface RequestOptions {
  body?: unknown
  /** A list value repeats the parameter (`label=a&label=b`). */
  query?: Record<string, string | number | readonly string[]>
}

/** Longest wait between attempts, whatever Retry-After asks for. */
const MAX_RETRY_DELAY_MS = 30_000
/** A 429 or 5xx body is read for its message only, so a hostile endpoint cannot flood the error line. */
const MAX_FAULT_MESSAGE = 300
/**
 * Largest answer read from a cloud API. The biggest real answers (a page of 50 servers, every
 * server type with its prices) are a few hundred KiB; an endpoint streaming more is not the API.
 */
export const MAX_RESPONSE_BYTES = 8 * 1024 * 1024

/** Milliseconds a Retry-After header asks for (seconds or an HTTP date), or undefined. */
export function retryAfterMs(header: string | null, now = Date.now()): number | undefined {
  if (!header) return undefined
  const trimmed = header.trim()
  if (/^\d+$/.test(trimmed)) return Number(trimmed) * 1000
  const at = Date.parse(trimmed)
  return Number.isNaN(at) ? undefined : Math.max(0, at - now)
}

/** An HTTP answer read whole (within the size cap), before it is judged. */
interface Answer {
  status: number
  statusText: string
  headers: Headers
  text: string
}

/** Reads a response body up to `limit` bytes; a longer body is refused without reading the rest. */
export async function readCapped(body: ReadableStream<Uint8Array> | null | undefined, limit: number): Promise<string | undefined> {
  if (!body) return ''
  const reader = body.getReader()
  const chunks: Uint8Array[] = []
  let size = 0
  for (;;) {
    const { done, value } = await reader.read()
    if (done) break
    size += value.byteLength
    if (size > limit) {
      await reader.cancel().catch(() => undefined)
      return undefined
    }
    chunks.push(value)
  }
  return Buffer.concat(chunks).toString('utf8')
}

/** A JSON object (not an array, not null). */
function isObject(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value)
}

/** The value at a dotted path of an answer (`servers.server`). */
function at(body: unknown, path: string): unknown {
  let value = body
  for (const key of path.split('.')) value = isObject(value) ? value[key] : undefined
  return value
}

/**
 * JSON over HTTPS for one cloud API: per-request timeout, retries with backoff honouring
 * Retry-After, and the API's errors mapped to the contract's exit codes. A POST that failed with
 * a 5xx is not repeated (the server may have acted on it); the caller finds what it made by label.
 *
 * Redirects are never followed: a request carries the credential and, on create, user data with
 * secrets, and the API never redirects its own calls; a 3xx is an error naming where it pointed.
 * Answers are read up to MAX_RESPONSE_BYTES and must be JSON; `object`/`items` also check the
 * part the caller reads, so an answer of another shape is one error line naming the call.
 */
export class CloudApi {
  constructor(readonly options: CloudApiOptions) {}

  /** The object under `key` of the answer (dotted for nested ones); anything else is an unusable answer (exit 1). */
  async object<T extends object>(method: Method, path: string, key: string, options: RequestOptions = {}): Promise<T> {
    const value = at(await this.request<unknown>(method, path, options), key)
    if (!isObject(value)) throw this.unusable(method, path, `${key} is not an object`)
    return value as T
  }

  /** The list under `key` of the answer, every entry an object; anything else is an unusable answer (exit 1). */
  async items<T extends object>(method: Method, path: string, key: string, options: RequestOptions = {}): Promise<T[]> {
    const value = at(await this.request<unknown>(method, path, options), key)
    if (!Array.isArray(value) || !value.every(isObject)) throw this.unusable(method, path, `${key} is not a list of objects`)
    return value as T[]
  }

  /** The error for an answer prov cannot use: the endpoint may not be this API, or the API changed. */
  unusable(method: string, path: string, what: string): ProvError {
    const { provider } = this.options
    return new ProvError(ExitCode.FAILED, `the ${provider} API answered ${method} ${path} with an unusable body: ${what}`, {
      location: `${provider} API ${method} ${path}`,
      hint: `check that providers.${provider}.endpoint is the ${provider} API; nothing was changed on the strength of this answer`,
    })
  }

  async request<T>(method: Method, path: string, options: RequestOptions = {}): Promise<T> {
    const { endpoint, headers, requestTimeout, retries } = this.options
    const url = `${endpoint}${path}`
    for (let attempt = 0; ; attempt++) {
      let answer: Answer
      try {
        // The signal covers the body read too (ofetch's own timeout ends with the headers).
        const response = await ofetch.raw(url, {
          method,
          headers: { accept: 'application/json', ...headers },
          body: options.body as Record<string, unknown> | undefined,
          query: options.query,
          signal: AbortSignal.timeout(requestTimeout * 1000),
          retry: 0,
          redirect: 'manual',
          responseType: 'stream',
          ignoreResponseError: true,
        })
        const text = await readCapped(response._data as ReadableStream<Uint8Array> | undefined, MAX_RESPONSE_BYTES)
        if (text === undefined) throw this.unusable(method, path, `more than ${MAX_RESPONSE_BYTES / 1024 / 1024} MiB`)
        answer = { status: response.status, statusText: response.statusText, headers: response.headers, text }
      } catch (error) {
        if (error instanceof ProvError) throw error
        if (method !== 'POST' && attempt < retries) {
          await delay(250 * 2 ** attempt)
          continue
        }
        throw this.unreachable(method, path, error)
      }
      const { status } = answer
      if (status >= 300 && status < 400) throw this.redirected(method, path, answer)
      const retriable = status === 429 || (status >= 500 && method !== 'POST')
      if (retriable && attempt < retries) {
        const asked = retryAfterMs(answer.headers.get('retry-after'))
        await delay(Math.min(asked ?? 250 * 2 ** attempt, MAX_RETRY_DELAY_MS))
        continue
      }
      if (status >= 400) throw this.toError(method, path, answer, attempt)
      if (answer.text.trim() === '') return undefined as T
      try {
        return JSON.parse(answer.text) as T
      } catch {
        throw this.unusable(method, path, 'not JSON')
      }
    }
  }

  private unreachable(method: string, path: string, error: unknown): ProvError {
    const { provider } = this.options
    const reason = (error as Error)?.message?.split('\n')[0] ?? String(error)
    return new ProvError(ExitCode.FAILED, `cannot reach the ${provider} API: ${reason}`, {
      location: `${provider} API ${method} ${path}`,
      hint: `check the network and providers.${provider}.endpoint`,
      cause: error,
    })
  }

  private redirected(method: string, path: string, answer: Answer): ProvError {
    const { provider } = this.options
    const location = (answer.headers.get('location') ?? '').replace(/[^\x21-\x7e]/g, '').slice(0, 200)
    return new ProvError(ExitCode.FAILED, `the ${provider} API answered ${answer.status} redirecting to '${location}': prov does not follow redirects`, {
      location: `${provider} API ${method} ${path}`,
      hint: `set providers.${provider}.endpoint to the API's own address (the request and its credential were sent nowhere else)`,
    })
  }

  private toError(method: string, path: string, answer: Answer, attempt: number): ProvError {
    const { provider, credentialHint } = this.options
    const where = `${provider} API ${method} ${path}`
    const status = answer.status
    let data: unknown
    try {
      data = JSON.parse(answer.text)
    } catch {
      data = undefined
    }
    const fault = this.options.faultOf(data)
    const said = (fault.message ?? answer.statusText ?? '').replace(/[\0-\x1f\x7f]/g, ' ').slice(0, MAX_FAULT_MESSAGE)
    const code = fault.code?.replace(/[^\w.-]/g, '').slice(0, 64)
    const text = `${provider} API answered ${status}${code ? ` ${code}` : ''}${said ? `: ${said}` : ''}`
    const options = { location: where }
    if (code && this.options.quotaCodes.includes(code)) {
      return new ProvError(ExitCode.FAILED, text, { ...options, hint: `an account limit of ${provider} was reached: raise it or remove servers` })
    }
    if (status === 401 || status === 403) {
      return new ProvError(ExitCode.DENIED, text, { ...options, hint: `check the credentials (${credentialHint}) and their permissions` })
    }
    if (status === 404) return new ProvError(ExitCode.NOT_FOUND, text, { ...options, hint: 'it may have been deleted outside prov' })
    if (status === 429) {
      return new ProvError(ExitCode.FAILED, `${text} (still rate limited after ${attempt + 1} attempts)`, {
        ...options,
        hint: 'wait and retry, or lower --parallel',
      })
    }
    if (status >= 500) return new ProvError(ExitCode.FAILED, text, { ...options, hint: `${provider} had a server error: retry later` })
    return new ProvError(ExitCode.USAGE, text, { ...options, hint: 'fix the value the API names' })
  }
}

function delay(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms))
}
