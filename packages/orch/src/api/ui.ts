/**
 * The dashboard's side of the API: its static files (built by Vite into dist/ui, read once at
 * start, served only by exact name), one-time login tokens, and browser sessions.
 *
 * A browser session is two secrets kept in two places: an HttpOnly SameSite=Strict cookie and a
 * CSRF token the page holds in its origin's storage and sends as `X-CSRF-Token` on every
 * request. Cookies are shared by every port of a host (a page of another local user on another
 * port is "same site" and its requests carry our cookie), but origin storage is not: the cookie
 * alone opens nothing.
 */
import { createHash, randomBytes, timingSafeEqual } from 'node:crypto'
import { existsSync, lstatSync, readdirSync, readFileSync } from 'node:fs'
import { dirname, join } from 'node:path'
import { fileURLToPath } from 'node:url'
import type { Context } from 'hono'
import { ApiError, type Role, type Vars } from './envelope'

export const LOGIN_TOKEN_TTL_MS = 5 * 60_000
export const SESSION_TTL_MS = 12 * 3600_000
const MAX_SESSIONS = 1000
const MAX_LOGIN_TOKENS = 100
/** A built dashboard is a few hundred KiB; anything far larger in dist/ui is not ours. */
const MAX_ASSET_BYTES = 8 * 1024 * 1024

export interface UiSession {
  who: string
  role: Role
  csrf: string
  expires: number
}

const hash = (secret: string) => createHash('sha256').update(secret).digest('hex')
const secret = () => randomBytes(32).toString('base64url')

/** Drops expired entries, then the oldest ones, until `map` has room for one more. */
function makeRoom<T extends { expires: number }>(map: Map<string, T>, max: number, now: number) {
  for (const [k, v] of map) if (v.expires <= now) map.delete(k)
  while (map.size >= max) map.delete(map.keys().next().value as string)
}

/** Login tokens and sessions, in memory: a restart of the server logs every browser out. Keys are hashes of the secrets. */
export class UiSessions {
  private logins = new Map<string, { who: string; role: Role; expires: number }>()
  private sessions = new Map<string, UiSession>()

  constructor(private readonly clock: () => number = Date.now) {}

  /** A token that opens one session, once, within LOGIN_TOKEN_TTL_MS. */
  mintLogin(who: string, role: Role): { token: string; expires: number } {
    const now = this.clock()
    makeRoom(this.logins, MAX_LOGIN_TOKENS, now)
    const token = secret()
    const expires = now + LOGIN_TOKEN_TTL_MS
    this.logins.set(hash(token), { who, role, expires })
    return { token, expires }
  }

  /** The identity a login token stands for; the token is spent whatever the outcome. */
  redeemLogin(token: string): { who: string; role: Role } | undefined {
    const key = hash(token)
    const entry = this.logins.get(key)
    this.logins.delete(key)
    return entry && entry.expires > this.clock() ? { who: entry.who, role: entry.role } : undefined
  }

  open(who: string, role: Role, notAfter = Number.POSITIVE_INFINITY): { id: string; session: UiSession } {
    const now = this.clock()
    makeRoom(this.sessions, MAX_SESSIONS, now)
    const id = secret()
    const session = { who, role, csrf: secret(), expires: Math.min(now + SESSION_TTL_MS, notAfter) }
    this.sessions.set(hash(id), session)
    return { id, session }
  }

  lookup(id: string): UiSession | undefined {
    const key = hash(id)
    const session = this.sessions.get(key)
    if (session && session.expires <= this.clock()) this.sessions.delete(key)
    else return session
    return undefined
  }

  close(id: string) {
    this.sessions.delete(hash(id))
  }
}

/** Compares two secrets in constant time (different lengths simply differ). */
export function sameSecret(given: string, expected: string): boolean {
  const a = Buffer.from(given)
  const b = Buffer.from(expected)
  return a.length === b.length && timingSafeEqual(a, b)
}

/**
 * The session cookie's name carries the port: two servers on one host (each workspace its own
 * port) would otherwise overwrite each other's cookie, cookies being shared by all ports.
 */
export const sessionCookieName = (c: Context<Vars>) => `prov_orch_session_${new URL(c.req.url).port || '80'}`

/** The origin this request was addressed to (`http://host:port`), as a browser of this server would send it. */
export const ownOrigin = (c: Context<Vars>) => `${new URL(c.req.url).protocol}//${(c.req.header('host') ?? '').toLowerCase()}`

/**
 * Browser-only requests (the login exchange, anything a session cookie authenticates) must name
 * this server as their Origin: Chromium and Firefox send it on every POST and DELETE, so a
 * missing one is not a browser of ours.
 */
export function requireOwnOrigin(c: Context<Vars>) {
  const origin = c.req.header('origin')?.toLowerCase()
  if (origin !== ownOrigin(c)) {
    throw new ApiError(
      403,
      'FORBIDDEN_ORIGIN',
      origin ? `requests from origin '${origin}' are refused` : 'a browser session request must carry this server as its Origin',
    )
  }
}

export interface UiAsset {
  body: Buffer
  type: string
}

const TYPES: Record<string, string> = {
  '.html': 'text/html; charset=utf-8',
  '.js': 'text/javascript; charset=utf-8',
  '.css': 'text/css; charset=utf-8',
  '.svg': 'image/svg+xml',
  '.png': 'image/png',
  '.ico': 'image/x-icon',
  '.woff2': 'font/woff2',
}

/** dist/ui of the orch package, from this file's place (src/api in tests, dist/ or dist/chunks once built). */
export function defaultUiDir(): string | undefined {
  let dir = dirname(fileURLToPath(import.meta.url))
  for (let i = 0; i < 4; i++) {
    const manifest = join(dir, 'package.json')
    if (existsSync(manifest)) {
      try {
        if (JSON.parse(readFileSync(manifest, 'utf8')).name === '@prov/orch') return join(dir, 'dist', 'ui')
      } catch {
        // not a package of ours
      }
    }
    dir = dirname(dir)
  }
  return undefined
}

/**
 * The dashboard's files by URL path (`/ui/`, `/ui/assets/index-abc.js`): read once, regular files
 * only, plain names only. Requests are answered from this table, so no request path ever reaches
 * the file system.
 */
export function loadUiAssets(dir: string | undefined): Map<string, UiAsset> {
  const assets = new Map<string, UiAsset>()
  if (!dir || !existsSync(join(dir, 'index.html'))) return assets
  const add = (urlPath: string, file: string) => {
    const st = lstatSync(file)
    const type = TYPES[/\.[a-z0-9]+$/.exec(file)?.[0] ?? '']
    if (!st.isFile() || st.size > MAX_ASSET_BYTES || !type) return
    assets.set(urlPath, { body: readFileSync(file), type })
  }
  add('/ui/', join(dir, 'index.html'))
  const assetDir = join(dir, 'assets')
  if (existsSync(assetDir)) {
    for (const name of readdirSync(assetDir)) if (/^[\w.-]+$/.test(name) && !name.startsWith('.')) add(`/ui/assets/${name}`, join(assetDir, name))
  }
  return assets
}

/**
 * What the dashboard may load and where it may connect: only this server. No inline script or
 * style, no frames, no form posts elsewhere.
 */
export const UI_HEADERS: Record<string, string> = {
  'Content-Security-Policy':
    "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; connect-src 'self'; font-src 'self'; base-uri 'none'; form-action 'none'; frame-ancestors 'none'",
  'X-Content-Type-Options': 'nosniff',
  'X-Frame-Options': 'DENY',
  'Referrer-Policy': 'no-referrer',
  'Cross-Origin-Opener-Policy': 'same-origin',
  'Cross-Origin-Resource-Policy': 'same-origin',
}

/** Paths answered without credentials: the dashboard's files and the login exchange. */
export const isOpenUiPath = (method: string, path: string) =>
  (method === 'GET' && (path === '/ui' || path.startsWith('/ui/'))) || (method === 'POST' && path === '/ui/login')
