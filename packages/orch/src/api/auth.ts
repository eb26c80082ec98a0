import { createHash, createPublicKey, type KeyObject, timingSafeEqual } from 'node:crypto'
import { readFileSync, statSync } from 'node:fs'
import type { MiddlewareHandler } from 'hono'
import { ApiError, RANK, type Role, type Vars } from './envelope'

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

/** Sets `who` and `role` for the request, or refuses it (401/403). `/health` is open. */
export function authenticate(options: AuthOptions): MiddlewareHandler<Vars> {
  const expected = options.token ? digest(options.token) : undefined
  return async (c, next) => {
    if (c.req.path === '/health') return next()
    if (c.get('transport') === 'unix') {
      c.set('who', 'owner@unix-socket')
      c.set('role', 'admin')
      return next()
    }
    const presented = bearer(c.req.header('authorization'))
    if (options.mode === 'token') {
      if (!expected || !timingSafeEqual(digest(presented), expected)) throw new ApiError(401, 'UNAUTHORIZED', 'invalid token')
      c.set('who', `owner@${c.get('client')}`)
      c.set('role', 'admin')
      return next()
    }
    const { jwtVerify, errors } = await import('jose')
    try {
      const { payload } = await jwtVerify(presented, options.key as Uint8Array, {
        audience: options.audience,
        issuer: options.issuer,
        requiredClaims: ['exp', 'sub'],
      })
      const roles = [payload.role, ...(Array.isArray(payload.roles) ? payload.roles : [])].filter((r): r is Role => typeof r === 'string' && r in RANK)
      c.set('who', String(payload.sub))
      if (!roles.length) throw new ApiError(403, 'FORBIDDEN', 'token carries no role (viewer, operator or admin)')
      c.set('role', roles.sort((a, b) => RANK[b] - RANK[a])[0])
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
    return next()
  }
}

export function requireRole(c: { get(key: 'role'): Role }, role: Role) {
  if (RANK[c.get('role')] < RANK[role]) throw new ApiError(403, 'FORBIDDEN', `role '${c.get('role')}' may not do this (needs ${role})`)
}
