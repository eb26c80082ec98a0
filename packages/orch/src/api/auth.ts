import { createHash, createPublicKey, type KeyObject, timingSafeEqual } from 'node:crypto'
import { readFileSync, statSync } from 'node:fs'
import type { Context, MiddlewareHandler } from 'hono'
import { getCookie } from 'hono/cookie'
import { ApiError, isRole, RANK, type Role, type Vars } from './envelope'
import { isMutating } from './guard'
import { isOpenUiPath, requireOwnOrigin, sameSecret, sessionCookieName, type UiSession, type UiSessions } from './ui'

export interface AuthOptions {
  /**
   * TCP clients prove who they are with the owner's token (`token`, the content of the 0600
   * token file) or a JWT (`jwt`). Clients on the unix socket are the owner: the socket's file
   * mode already shut everyone else out.
   */
  mode: 'token' | 'jwt'
  token?: string
  /** HS* shared secret (bytes) or a PEM public key (RS*, ES*, EdDSA). */
  key?: Uint8Array | KeyObject
  audience?: string
  issuer?: string
}

/** Reads the JWT verification key: a PEM public key, or a shared secret (file must not be readable by others). */
export function loadJwtKey(file: string): Uint8Array | KeyObject {
  const text = readFileSync(file, 'utf8')
  if (text.includes('-----BEGIN')) return createPublicKey(text)
  if (statSync(file).mode & 0o077) throw new Error(`JWT secret ${file} is readable by group or others; chmod 600 it`)
  const secret = text.trim()
  if (secret.length < 32) throw new Error(`JWT secret in ${file} is shorter than 32 characters`)
  return new TextEncoder().encode(secret)
}

const digest = (text: string) => createHash('sha256').update(text).digest()

function bearer(header: string | undefined): string {
  const match = /^Bearer\s+(\S+)$/i.exec(header ?? '')
  if (!match) throw new ApiError(401, 'UNAUTHORIZED', 'missing bearer token (Authorization: Bearer <token>)')
  return match[1]
}

/** The identity a JWT carries (sub, highest known role), or a 401/403 ApiError. */
export async function verifyJwt(presented: string, options: AuthOptions): Promise<{ who: string; role: Role; expires: number }> {
  const { jwtVerify, errors } = await import('jose')
  try {
    const { payload } = await jwtVerify(presented, options.key as Uint8Array, {
      audience: options.audience,
      issuer: options.issuer,
      requiredClaims: ['exp', 'sub'],
    })
    const roles = [payload.role, ...(Array.isArray(payload.roles) ? payload.roles : [])].filter(isRole)
    if (!roles.length) throw new ApiError(403, 'FORBIDDEN', 'token carries no role (viewer, operator or admin)')
    return { who: String(payload.sub), role: roles.sort((a, b) => RANK[b] - RANK[a])[0], expires: (payload.exp as number) * 1000 }
  } catch (error) {
    if (error instanceof ApiError) throw error
    const message =
      error instanceof errors.JWTExpired
        ? 'token expired'
        : error instanceof errors.JWTClaimValidationFailed
          ? `token rejected: ${error.message}`
          : 'invalid token (signature or format)'
    throw new ApiError(401, 'UNAUTHORIZED', message)
  }
}

/**
 * A dashboard session: the cookie names it, the X-CSRF-Token header proves the request comes
 * from the page that logged in (every request, reads too: the cookie reaches other ports of the
 * host), and a mutating request must come from this server's own origin.
 */
function sessionOf(c: Context<Vars>, sessions: UiSessions, cookie: string): UiSession {
  const session = sessions.lookup(cookie)
  if (!session) throw new ApiError(401, 'UNAUTHORIZED', 'dashboard session expired or unknown; log in again (prov-orch ui prints a login link)')
  const proof = c.req.header('x-csrf-token')
  if (!proof || !sameSecret(proof, session.csrf)) throw new ApiError(403, 'CSRF', 'missing or wrong X-CSRF-Token for this session')
  if (isMutating(c.req.method)) requireOwnOrigin(c)
  return session
}

/**
 * Sets `who` and `role` for the request, or refuses it (401/403). `/health`, the dashboard's
 * files and its login exchange are open; a bearer token wins over a session cookie.
 */
export function authenticate(options: AuthOptions, sessions?: UiSessions): MiddlewareHandler<Vars> {
  const expected = options.token ? digest(options.token) : undefined
  return async (c, next) => {
    if (c.req.path === '/health' || isOpenUiPath(c.req.method, c.req.path)) return next()
    if (c.get('transport') === 'unix') {
      c.set('who', 'owner@unix-socket')
      c.set('role', 'admin')
      return next()
    }
    const cookie = sessions && c.req.header('authorization') === undefined ? getCookie(c, sessionCookieName(c)) : undefined
    if (sessions && cookie) {
      const session = sessionOf(c, sessions, cookie)
      c.set('who', session.who)
      c.set('role', session.role)
      return next()
    }
    const presented = bearer(c.req.header('authorization'))
    if (options.mode === 'token') {
      if (!expected || !timingSafeEqual(digest(presented), expected)) throw new ApiError(401, 'UNAUTHORIZED', 'invalid token')
      c.set('who', `owner@${c.get('client')}`)
      c.set('role', 'admin')
      return next()
    }
    const { who, role } = await verifyJwt(presented, options)
    c.set('who', who)
    c.set('role', role)
    return next()
  }
}

export function requireRole(c: { get(key: 'role'): Role }, role: Role) {
  // Fail closed: a role that is not ours (it cannot be set, but a comparison with undefined is false) is refused.
  const held = c.get('role')
  if (!isRole(held) || RANK[held] < RANK[role]) throw new ApiError(403, 'FORBIDDEN', `role '${c.get('role')}' may not do this (needs ${role})`)
}
