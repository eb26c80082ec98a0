/**
 * HashiCorp Vault Transit backend (HTTP API, ofetch): encrypt/decrypt as wrap/unwrap, rewrap,
 * datakey, sys/health. Auth: a token ($VAULT_TOKEN or the configured variable) or AppRole
 * (role_id + secret_id). Context: the canonical encryption context, base64, as the `context`
 * field of derived keys.
 */
import { configError, deniedError, failedError, notFoundError, type ProvError, usageError } from '@prov/core'
import { authenticationError } from '../lib/auth-failure'
import { canonicalContext, type EncryptionContext } from '../lib/context'
import { backoffDelay, type RetryPolicy, retryPolicy, sleep } from '../lib/retry'
import type { KmsSettings } from '../lib/settings'
import type { DataKeySource, KeyWrapper, Rewrapper, StatusProbe, WrappedKey } from './key-wrapper'

export interface VaultOptions {
  address: string
  mount: string
  key: string
  token?: string
  roleId?: string
  secretId?: string
  retry?: RetryPolicy
  timeoutMs?: number
}

export function vaultOptions(settings: KmsSettings['vault'], env: NodeJS.ProcessEnv = process.env): VaultOptions {
  return {
    address: (env.VAULT_ADDR || settings.address).replace(/\/+$/, ''),
    mount: settings.mount,
    key: settings.key,
    token: env[settings.token_env] || undefined,
    roleId: settings.role_id || env.VAULT_ROLE_ID || undefined,
    secretId: (settings.secret_id_env ? env[settings.secret_id_env] : undefined) || env.VAULT_SECRET_ID || undefined,
  }
}

interface VaultResponse {
  status: number
  body: { data?: Record<string, unknown>; auth?: { client_token?: string }; errors?: string[] } & Record<string, unknown>
  retryAfter?: number
}

export class VaultTransit implements KeyWrapper, DataKeySource, Rewrapper, StatusProbe {
  private token?: string
  private readonly retry: RetryPolicy

  constructor(private readonly options: VaultOptions) {
    this.token = options.token
    this.retry = options.retry ?? retryPolicy()
  }

  private async call(method: 'GET' | 'POST', path: string, body?: Record<string, unknown>, auth = true): Promise<VaultResponse> {
    const { ofetch } = await import('ofetch')
    const url = `${this.options.address}/v1/${path}`
    for (let attempt = 0; ; attempt++) {
      let response: VaultResponse
      try {
        const raw = await ofetch.raw(url, {
          method,
          body,
          headers: auth && this.token ? { 'X-Vault-Token': this.token } : {},
          ignoreResponseError: true,
          retry: 0,
          timeout: this.options.timeoutMs ?? 15_000,
          responseType: 'json',
        })
        const retryAfter = raw.headers.get('retry-after')
        response = { status: raw.status, body: (raw._data ?? {}) as VaultResponse['body'], retryAfter: retryAfter ? Number(retryAfter) : undefined }
      } catch (error) {
        if (attempt + 1 < this.retry.attempts && /ECONNRESET|fetch failed|socket/i.test(String((error as Error).message))) {
          await sleep(backoffDelay(this.retry, attempt))
          continue
        }
        throw failedError(`Vault at ${this.options.address} is unreachable: ${(error as Error).message}`, {
          location: url,
          hint: 'check VAULT_ADDR / kms.vault.address',
        })
      }
      if ((response.status === 429 || response.status === 503) && attempt + 1 < this.retry.attempts) {
        await sleep(backoffDelay(this.retry, attempt, response.retryAfter))
        continue
      }
      return response
    }
  }

  private fail(response: VaultResponse, what: string): ProvError {
    // Vault's messages may span lines ("1 error occurred:\n\t* permission denied"): one line here.
    const detail =
      (Array.isArray(response.body.errors) ? response.body.errors : [])
        .map((e) => String(e).replace(/\s+/g, ' ').trim())
        .filter(Boolean)
        .join('; ') || `HTTP ${response.status}`
    const where = `${this.options.address} ${this.options.mount}/${this.options.key}`
    switch (response.status) {
      case 400:
        // Vault tells these apart only by message (sdk/helper/keysutil, builtin/logical/transit).
        if (/encryption key not found/i.test(detail)) {
          return notFoundError(`Vault ${what}: ${detail}`, {
            location: where,
            hint: `create the key: vault write -f ${this.options.mount}/keys/${this.options.key}`,
          })
        }
        if (/message authentication failed|invalid ciphertext|missing 'context'|version is too new|disallowed by policy/i.test(detail)) {
          return authenticationError(`Vault ${what} refused: ${detail}`, { location: where, hint: 'wrong --context or altered ciphertext' })
        }
        return usageError(`Vault ${what} rejected the request: ${detail}`, { location: where })
      case 401:
      case 403:
        return deniedError(`Vault ${what}: ${detail}`, {
          location: where,
          hint: 'check the token or AppRole policy (update on transit/encrypt|decrypt|datakey)',
        })
      case 404:
        return notFoundError(`Vault ${what}: ${detail}`, {
          location: where,
          hint: `create the key: vault write -f ${this.options.mount}/keys/${this.options.key}`,
        })
      case 429:
      case 503:
        return failedError(`Vault ${what} still throttled or unavailable after ${this.retry.attempts} attempts: ${detail}`, {
          location: where,
          hint: 'retry later or raise PROV_KMS_RETRIES',
        })
      default:
        return failedError(`Vault ${what} failed: ${detail}`, { location: where })
    }
  }

  private async login(): Promise<void> {
    if (this.token) return
    if (!this.options.roleId || !this.options.secretId) {
      throw configError('no Vault credentials: set VAULT_TOKEN or an AppRole (kms.vault.role_id + secret_id_env)', { location: 'kms.vault' })
    }
    const response = await this.call('POST', 'auth/approle/login', { role_id: this.options.roleId, secret_id: this.options.secretId }, false)
    if (response.status !== 200 || !response.body.auth?.client_token) throw this.fail(response, 'AppRole login')
    this.token = response.body.auth.client_token
  }

  private async transit(operation: string, body: Record<string, unknown>): Promise<Record<string, unknown>> {
    await this.login()
    const response = await this.call('POST', `${this.options.mount}/${operation}/${this.options.key}`, body)
    if (response.status !== 200 || !response.body.data) throw this.fail(response, operation.split('/')[0])
    return response.body.data
  }

  /** Vault binds the context for keys created with derived=true: the canonical pairs, base64. */
  private withContext(body: Record<string, unknown>, context: EncryptionContext): Record<string, unknown> {
    return { ...body, context: canonicalContext(context).toString('base64') }
  }

  /** The plaintext (base64) goes to Vault; the answer is Vault's own text ciphertext (`vault:vN:...`). */
  async wrap(plain: Buffer, context: EncryptionContext): Promise<Buffer> {
    const data = await this.transit('encrypt', this.withContext({ plaintext: plain.toString('base64') }, context))
    return Buffer.from(String(data.ciphertext), 'latin1')
  }

  async unwrap(wrapped: Buffer, context: EncryptionContext): Promise<Buffer> {
    const data = await this.transit('decrypt', this.withContext({ ciphertext: wrapped.toString('latin1').trim() }, context))
    return Buffer.from(String(data.plaintext ?? ''), 'base64')
  }

  async rewrap(wrapped: Buffer, context: EncryptionContext): Promise<Buffer> {
    const data = await this.transit('rewrap', this.withContext({ ciphertext: wrapped.toString('latin1').trim() }, context))
    return Buffer.from(String(data.ciphertext), 'latin1')
  }

  readonly dataKeyBits = [128, 256, 512] as const

  async generateDataKey(context: EncryptionContext, bits: number): Promise<WrappedKey> {
    const data = await this.transit('datakey/plaintext', this.withContext({ bits }, context))
    return { key: Buffer.from(String(data.plaintext), 'base64'), wrapped: Buffer.from(String(data.ciphertext), 'latin1') }
  }

  async probe(): Promise<Record<string, unknown>> {
    const describe = {
      address: this.options.address,
      mount: this.options.mount,
      key: this.options.key,
      auth: this.options.token ? 'token' : this.options.roleId ? 'approle' : 'none',
    }
    const started = Date.now()
    try {
      const { ofetch } = await import('ofetch')
      const raw = await ofetch.raw(`${this.options.address}/v1/sys/health`, { ignoreResponseError: true, retry: 0, timeout: 3000 })
      const body = (raw._data ?? {}) as Record<string, unknown>
      return {
        ...describe,
        reachable: true,
        status: raw.status,
        initialized: body.initialized ?? null,
        sealed: body.sealed ?? null,
        standby: body.standby ?? null,
        version: body.version ?? null,
        latency_ms: Date.now() - started,
      }
    } catch (error) {
      return { ...describe, reachable: false, error: (error as Error).message }
    }
  }
}
