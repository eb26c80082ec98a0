import { ExitCode, ProvError } from '@prov/core'
import { FetchError, ofetch } from 'ofetch'

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

export interface RequestOptions {
  body?: unknown
  /** A list value repeats the parameter (`label=a&label=b`). */
  query?: Record<string, string | number | readonly string[]>
}

/** Longest wait between attempts, whatever Retry-After asks for. */
const MAX_RETRY_DELAY_MS = 30_000
/** A 429 or 5xx body is read for its message only, so a hostile endpoint cannot flood the error line. */
const MAX_FAULT_MESSAGE = 300

/** Milliseconds a Retry-After header asks for (seconds or an HTTP date), or undefined. */
export function retryAfterMs(header: string | null, now = Date.now()): number | undefined {
  if (!header) return undefined
  const trimmed = header.trim()
  if (/^\d+$/.test(trimmed)) return Number(trimmed) * 1000
  const at = Date.parse(trimmed)
  return Number.isNaN(at) ? undefined : Math.max(0, at - now)
}

/**
 * JSON over HTTPS for one cloud API: per-request timeout, retries with backoff honouring
 * Retry-After, and the API's errors mapped to the contract's exit codes. A POST that failed with
 * a 5xx is not repeated (the server may have acted on it); the caller finds what it made by label.
 */
export class CloudApi {
  constructor(readonly options: CloudApiOptions) {}

  async request<T>(method: 'GET' | 'POST' | 'PUT' | 'DELETE', path: string, options: RequestOptions = {}): Promise<T> {
    const { endpoint, headers, requestTimeout, retries } = this.options
    const url = `${endpoint}${path}`
    for (let attempt = 0; ; attempt++) {
      try {
        const response = await ofetch.raw(url, {
          method,
          headers: { accept: 'application/json', ...headers },
          body: options.body as Record<string, unknown> | undefined,
          query: options.query,
          timeout: requestTimeout * 1000,
          retry: 0,
          responseType: 'json',
        })
        return response._data as T
      } catch (error) {
        const status = error instanceof FetchError ? error.response?.status : undefined
        const safe = method !== 'POST'
        const retriable = status === 429 || (status !== undefined && status >= 500 && safe) || (status === undefined && safe)
        if (retriable && attempt < retries) {
          const asked = retryAfterMs(error instanceof FetchError ? (error.response?.headers.get('retry-after') ?? null) : null)
          const backoff = 250 * 2 ** attempt
          await new Promise((resolve) => setTimeout(resolve, Math.min(asked ?? backoff, MAX_RETRY_DELAY_MS)))
          continue
        }
        throw this.toError(method, path, error, attempt)
      }
    }
  }

  private toError(method: string, path: string, error: unknown, attempt: number): ProvError {
    const { provider, credentialHint } = this.options
    const where = `${provider} API ${method} ${path}`
    if (!(error instanceof FetchError) || !error.response) {
      const reason = (error as Error)?.message?.split('\n')[0] ?? String(error)
      return new ProvError(ExitCode.FAILED, `cannot reach the ${provider} API: ${reason}`, {
        location: where,
        hint: `check the network and providers.${provider}.endpoint`,
        cause: error,
      })
    }
    const status = error.response.status
    const fault = this.options.faultOf(error.data)
    const said = (fault.message ?? error.response.statusText ?? '').slice(0, MAX_FAULT_MESSAGE)
    const text = `${provider} API answered ${status}${fault.code ? ` ${fault.code}` : ''}${said ? `: ${said}` : ''}`
    const options = { location: where, cause: error }
    if (fault.code && this.options.quotaCodes.includes(fault.code)) {
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
