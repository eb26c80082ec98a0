import { isIP } from 'node:net'
import { networkInterfaces } from 'node:os'
import { isLoopbackHost } from '@prov/core'
import type { MiddlewareHandler } from 'hono'
import { bodyLimit } from 'hono/body-limit'
import { ApiError, type Vars } from './envelope'

const MUTATING = new Set(['POST', 'PUT', 'PATCH', 'DELETE'])
const BODY_TYPES = new Set(['application/json', 'application/yaml', 'application/x-yaml'])

export const isMutating = (method: string) => MUTATING.has(method)

/** The host name of a Host header value (`[::1]:9090` -> `::1`, `Example.org:80` -> `example.org`). */
export function hostName(hostHeader: string): string {
  const bracketed = /^\[([^\]]+)\](?::\d+)?$/.exec(hostHeader)
  if (bracketed) return bracketed[1].toLowerCase()
  return hostHeader.replace(/:\d+$/, '').toLowerCase()
}

function localAddresses(): Set<string> {
  const out = new Set<string>()
  for (const list of Object.values(networkInterfaces())) for (const a of list ?? []) out.add(a.address.toLowerCase())
  return out
}

/**
 * Names this server answers to: loopback, the bound address, and configured names. A browser
 * lured by DNS rebinding sends the attacker's name in Host, which is never among them. A wildcard
 * bind also answers to the host's own interface addresses (IP literals cannot be rebound).
 */
export function hostGuard(boundHost: string, allowedHosts: string[]): MiddlewareHandler<Vars> {
  const names = new Set([...allowedHosts.map((h) => h.toLowerCase()), boundHost.toLowerCase().replace(/^\[(.*)\]$/, '$1')])
  const wildcard = boundHost === '0.0.0.0' || boundHost === '::'
  const interfaces = wildcard ? localAddresses() : new Set<string>()
  return async (c, next) => {
    if (c.get('transport') === 'unix') return next()
    const header = c.req.header('host') ?? new URL(c.req.url).host
    const name = header ? hostName(header) : ''
    const known = name && (isLoopbackHost(name) || names.has(name) || (isIP(name) && interfaces.has(name)))
    if (!known) {
      throw new ApiError(421, 'MISDIRECTED', `this server does not answer to host '${name || '(none)'}'`, {
        hint: 'use 127.0.0.1 or localhost, or add the name to orchestrator.allowed_hosts (--allow-host)',
      })
    }
    return next()
  }
}

/**
 * Browsers send `Origin` on cross-site requests: only the server's own origin and configured
 * ones (--cors) pass; CORS headers are sent for configured origins only, never a wildcard.
 */
export function originGuard(cors: string[]): MiddlewareHandler<Vars> {
  const allowed = new Set(cors.map((o) => o.replace(/\/+$/, '').toLowerCase()))
  return async (c, next) => {
    const origin = c.req.header('origin')
    if (origin === undefined || c.get('transport') === 'unix') return next()
    const normalized = origin.toLowerCase()
    const own = `${new URL(c.req.url).protocol}//${(c.req.header('host') ?? '').toLowerCase()}`
    const configured = allowed.has(normalized)
    if (normalized !== own && !configured) {
      throw new ApiError(403, 'FORBIDDEN_ORIGIN', `requests from origin '${origin}' are refused`, {
        hint: 'allow a browser origin with prov-orch serve --cors ORIGIN (orchestrator.cors)',
      })
    }
    if (configured) {
      c.header('Access-Control-Allow-Origin', origin)
      c.header('Vary', 'Origin')
      if (c.req.method === 'OPTIONS') {
        c.header('Access-Control-Allow-Methods', 'GET, POST, DELETE')
        c.header('Access-Control-Allow-Headers', 'Authorization, Content-Type, X-Request-Id, Last-Event-ID')
        c.header('Access-Control-Max-Age', '600')
        return c.body(null, 204)
      }
    }
    return next()
  }
}

/**
 * Mutating requests carry JSON or YAML, nothing else: `text/plain` and form posts are what a
 * hostile page can send without a CORS preflight. A mutating request without a body needs no type.
 */
export function contentTypeGuard(): MiddlewareHandler<Vars> {
  return async (c, next) => {
    if (!isMutating(c.req.method)) return next()
    const type = c.req.header('content-type')
    const hasBody = c.req.header('transfer-encoding') !== undefined || Number(c.req.header('content-length') ?? 0) > 0
    if (type === undefined && !hasBody) return next()
    const mediaType = (type ?? '').split(';')[0].trim().toLowerCase()
    if (!BODY_TYPES.has(mediaType)) {
      throw new ApiError(415, 'UNSUPPORTED_MEDIA_TYPE', `content type '${type ?? '(none)'}' is not accepted`, {
        hint: 'send application/json (or application/yaml)',
      })
    }
    return next()
  }
}

/** Refuses bodies above `maxBytes` (413): by Content-Length before reading, or while streaming a chunked body. */
export function bodySizeGuard(maxBytes: number): MiddlewareHandler<Vars> {
  return bodyLimit({
    maxSize: maxBytes,
    onError: () => {
      throw new ApiError(413, 'PAYLOAD_TOO_LARGE', `request body larger than ${maxBytes} bytes`, { limit: maxBytes })
    },
  }) as MiddlewareHandler<Vars>
}

const MAX_CLIENTS = 10_000

/**
 * A token bucket per client address, checked before authentication so that unauthenticated
 * floods are refused cheaply: `perSecond` requests/s, bursts of twice that. The table of clients
 * is bounded (idle, full buckets are dropped first).
 */
export function rateLimiter(perSecond: number, clock: () => number = Date.now): MiddlewareHandler<Vars> {
  const buckets = new Map<string, { tokens: number; at: number }>()
  const burst = perSecond * 2
  const refill = (bucket: { tokens: number; at: number }, now: number) => {
    bucket.tokens = Math.min(burst, bucket.tokens + ((now - bucket.at) / 1000) * perSecond)
    bucket.at = now
  }
  return async (c, next) => {
    const key = c.get('client')
    const now = clock()
    let bucket = buckets.get(key)
    if (!bucket) {
      if (buckets.size >= MAX_CLIENTS) {
        for (const [k, b] of buckets) {
          refill(b, now)
          if (b.tokens >= burst) buckets.delete(k)
        }
        if (buckets.size >= MAX_CLIENTS) buckets.clear()
      }
      bucket = { tokens: burst, at: now }
      buckets.set(key, bucket)
    }
    refill(bucket, now)
    if (bucket.tokens < 1) {
      const retryAfter = Math.max(1, Math.ceil((1 - bucket.tokens) / perSecond))
      throw new ApiError(429, 'RATE_LIMITED', `rate limit of ${perSecond} requests/s exceeded`, { retry_after: retryAfter })
    }
    bucket.tokens -= 1
    return next()
  }
}
