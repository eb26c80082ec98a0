import { ExitCode, isProvError, PROV_VERSION } from '@prov/core'
import type { Context } from 'hono'

export type Role = 'viewer' | 'operator' | 'admin'
export const RANK: Record<Role, number> = { viewer: 1, operator: 2, admin: 3 }

/**
 * A role name from request data (a token claim, a body field) counts only when it is one of our
 * own role names: `in` or indexing would also accept what every object inherits
 * (`constructor`, `toString`, `__proto__`), whose rank compares as neither lower nor higher.
 */
export function isRole(value: unknown): value is Role {
  return typeof value === 'string' && Object.hasOwn(RANK, value)
}

/** How a request reached the server: the owner-only unix socket, or TCP. */
export type Transport = 'unix' | 'tcp'

export type Vars = {
  Variables: { requestId: string; client: string; transport: Transport; who?: string; role: Role }
}

export type ApiStatus = 400 | 401 | 403 | 404 | 409 | 413 | 415 | 421 | 429 | 500

export class ApiError extends Error {
  constructor(
    readonly status: ApiStatus,
    readonly code: string,
    message: string,
    readonly details?: Record<string, unknown>,
  ) {
    super(message)
  }
}

/** The answer envelope: status, data, metadata {timestamp, request_id, version}, error. */
export function envelope(
  c: Context<Vars>,
  status: 'success' | 'error' | 'pending',
  data: unknown,
  error: { code: string; message: string; details?: unknown } | null = null,
) {
  return {
    status,
    data,
    metadata: { timestamp: new Date().toISOString(), request_id: c.get('requestId'), version: PROV_VERSION },
    error: error ? { code: error.code, message: error.message, details: error.details ?? {} } : null,
  }
}

const STATUS_OF: Partial<Record<number, { status: ApiStatus; code: string }>> = {
  [ExitCode.USAGE]: { status: 400, code: 'BAD_REQUEST' },
  [ExitCode.CONFIG]: { status: 400, code: 'BAD_REQUEST' },
  [ExitCode.DENIED]: { status: 403, code: 'FORBIDDEN' },
  [ExitCode.NOT_FOUND]: { status: 404, code: 'NOT_FOUND' },
}

export function toApiError(error: unknown): ApiError {
  if (error instanceof ApiError) return error
  if (isProvError(error)) {
    const conflict = error.details?.kind === 'conflict'
    const mapped = conflict ? { status: 409 as const, code: 'CONFLICT' } : (STATUS_OF[error.code] ?? { status: 500 as const, code: 'FAILED' })
    return new ApiError(mapped.status, mapped.code, error.message, error.location ? { location: error.location } : undefined)
  }
  return new ApiError(500, 'INTERNAL', (error as Error).message ?? 'internal error')
}
