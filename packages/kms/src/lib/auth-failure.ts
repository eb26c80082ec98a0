/**
 * A ciphertext that does not authenticate under the context it is opened with (wrong context,
 * altered, or moved from another field or record). Marked in `details` so callers can tell it
 * from other denials (a wrong key, a refused token) without reading the message.
 */
import { deniedError, isProvError, type ProvError, type ProvErrorOptions } from '@prov/core'

export const AUTHENTICATION_FAILED = 'authentication'

export function authenticationError(message: string, options: ProvErrorOptions = {}): ProvError {
  return deniedError(message, { ...options, details: { ...options.details, reason: AUTHENTICATION_FAILED } })
}

export function isAuthenticationError(error: unknown): error is ProvError {
  return isProvError(error) && error.details?.reason === AUTHENTICATION_FAILED
}
