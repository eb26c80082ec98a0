/** Retry with exponential backoff for throttled remote KMS calls (429/503, ThrottlingException). */
import { setTimeout as sleep } from 'node:timers/promises'

export interface RetryPolicy {
  /** Attempts in total (first try included). */
  attempts: number
  /** First delay; doubles each time, with jitter. */
  baseDelayMs: number
  maxDelayMs: number
}

export function retryPolicy(): RetryPolicy {
  const attempts = Number(process.env.PROV_KMS_RETRIES ?? 4) + 1
  const baseDelayMs = Number(process.env.PROV_KMS_RETRY_BASE_MS ?? 200)
  return {
    attempts: Number.isFinite(attempts) && attempts >= 1 ? Math.floor(attempts) : 5,
    baseDelayMs: Number.isFinite(baseDelayMs) && baseDelayMs >= 0 ? baseDelayMs : 200,
    maxDelayMs: 10_000,
  }
}

export function backoffDelay(policy: RetryPolicy, attempt: number, retryAfterSeconds?: number): number {
  if (retryAfterSeconds !== undefined && Number.isFinite(retryAfterSeconds)) return Math.min(policy.maxDelayMs, retryAfterSeconds * 1000)
  const exp = policy.baseDelayMs * 2 ** attempt
  return Math.min(policy.maxDelayMs, exp / 2 + Math.random() * (exp / 2))
}

export { sleep }
