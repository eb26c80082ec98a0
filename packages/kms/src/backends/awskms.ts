/**
 * AWS KMS backend (@aws-sdk/client-kms, imported lazily): Encrypt, Decrypt and GenerateDataKey
 * with EncryptionContext. The endpoint is configurable (kms.aws.endpoint, or
 * $AWS_ENDPOINT_URL_KMS) so it can point at a local contract server or a VPC endpoint.
 * Throttling is retried by the SDK with exponential backoff, then reported clearly.
 */
import { configError, deniedError, failedError, notFoundError, type ProvError, usageError } from '@prov/core'
import { authenticationError } from '../lib/auth-failure'
import type { EncryptionContext } from '../lib/context'
import type { WrappedKey } from '../lib/envelope'
import { retryPolicy } from '../lib/retry'
import type { KmsSettings } from '../lib/settings'

type KmsModule = typeof import('@aws-sdk/client-kms')

export interface AwsKmsOptions {
  region: string
  keyId: string
  endpoint?: string
}

export function awsOptions(settings: KmsSettings['aws'], env: NodeJS.ProcessEnv = process.env): AwsKmsOptions {
  return {
    region: env.AWS_REGION || env.AWS_DEFAULT_REGION || settings.region,
    keyId: env.PROV_KMS_AWS_KEY_ID || settings.key_id,
    endpoint: settings.endpoint || env.AWS_ENDPOINT_URL_KMS || undefined,
  }
}

export class AwsKms {
  private client?: Promise<{ mod: KmsModule; client: InstanceType<KmsModule['KMSClient']> }>
  private readonly unwrapped = new Map<string, Buffer>()
  private session?: Promise<WrappedKey>

  constructor(private readonly options: AwsKmsOptions) {}

  private connect() {
    this.client ??= (async () => {
      quietSdkWarnings()
      const mod = await import('@aws-sdk/client-kms')
      const policy = retryPolicy()
      const client = new mod.KMSClient({
        region: this.options.region,
        endpoint: this.options.endpoint,
        maxAttempts: policy.attempts,
      })
      return { mod, client }
    })()
    return this.client
  }

  private fail(error: unknown, what: string): ProvError {
    const err = error as Error & { name?: string; $metadata?: { httpStatusCode?: number; attempts?: number } }
    const name = err.name ?? 'Error'
    const where = `${this.options.endpoint ?? `kms.${this.options.region}`} ${this.options.keyId}`
    const detail = err.message && err.message !== name && err.message !== 'UnknownError' ? `: ${err.message}` : ''
    const message = `AWS KMS ${what}: ${name}${detail}`
    if (name === 'InvalidCiphertextException') return authenticationError(message, { location: where, hint: 'wrong --context or altered ciphertext' })
    switch (name) {
      case 'AccessDeniedException':
      case 'UnrecognizedClientException':
      case 'InvalidSignatureException':
      case 'ExpiredTokenException':
      case 'IncorrectKeyException':
      case 'KMSInvalidStateException':
      case 'DisabledException':
        return deniedError(message, {
          location: where,
          hint: 'check the IAM policy and the key state',
        })
      case 'NotFoundException':
        return notFoundError(message, { location: where, hint: 'check kms.aws.key_id' })
      case 'ThrottlingException':
      case 'LimitExceededException':
      case 'KMSInternalException':
      case 'DependencyTimeoutException':
        return failedError(`${message} (after ${err.$metadata?.attempts ?? retryPolicy().attempts} attempts with backoff)`, {
          location: where,
          hint: 'retry later or raise PROV_KMS_RETRIES',
        })
      case 'CredentialsProviderError':
        return configError('no AWS credentials found', { location: where, hint: 'set AWS_ACCESS_KEY_ID/AWS_SECRET_ACCESS_KEY or AWS_PROFILE' })
      case 'ValidationException':
        return usageError(message, { location: where })
      default:
        return failedError(message, { location: where })
    }
  }

  async encrypt(plain: Buffer, context: EncryptionContext): Promise<Buffer> {
    if (plain.length > 4096) throw usageError('AWS KMS Encrypt takes at most 4096 bytes', { hint: 'prov-kms uses the envelope format for larger input' })
    const { mod, client } = await this.connect()
    try {
      const out = await client.send(new mod.EncryptCommand({ KeyId: this.options.keyId, Plaintext: plain, EncryptionContext: context }))
      return Buffer.from(out.CiphertextBlob ?? new Uint8Array())
    } catch (error) {
      throw this.fail(error, 'Encrypt')
    }
  }

  async decrypt(blob: Buffer, context: EncryptionContext): Promise<Buffer> {
    const cacheKey = blob.toString('base64')
    const known = this.unwrapped.get(cacheKey)
    if (known) return known
    const { mod, client } = await this.connect()
    try {
      const out = await client.send(new mod.DecryptCommand({ CiphertextBlob: blob, EncryptionContext: context, KeyId: this.options.keyId }))
      const plain = Buffer.from(out.Plaintext ?? new Uint8Array())
      this.unwrapped.set(cacheKey, plain)
      return plain
    } catch (error) {
      throw this.fail(error, 'Decrypt')
    }
  }

  async generateDataKey(context: EncryptionContext): Promise<WrappedKey> {
    const { mod, client } = await this.connect()
    try {
      const out = await client.send(new mod.GenerateDataKeyCommand({ KeyId: this.options.keyId, KeySpec: 'AES_256', EncryptionContext: context }))
      return { key: Buffer.from(out.Plaintext ?? new Uint8Array()), wrapped: Buffer.from(out.CiphertextBlob ?? new Uint8Array()) }
    } catch (error) {
      throw this.fail(error, 'GenerateDataKey')
    }
  }

  /** One data key per invocation for envelope encryption. */
  sessionKey(context: EncryptionContext): Promise<WrappedKey> {
    this.session ??= this.generateDataKey(context)
    return this.session
  }

  async ping(): Promise<Record<string, unknown>> {
    const started = Date.now()
    const { mod, client } = await this.connect()
    try {
      await client.send(new mod.DescribeKeyCommand({ KeyId: this.options.keyId }))
      return { reachable: true, key: this.options.keyId, latency_ms: Date.now() - started }
    } catch (error) {
      const name = (error as Error).name
      return {
        reachable: !/ECONNREFUSED|TimeoutError|fetch failed/i.test(`${name} ${(error as Error).message}`),
        error: `${name}: ${(error as Error).message}`,
      }
    }
  }
}

let warningsPatched = false
/** The SDK warns about Node 20 on stderr; stderr carries prov's own lines only (debug shows it). */
function quietSdkWarnings(): void {
  if (warningsPatched) return
  warningsPatched = true
  const original = process.emitWarning.bind(process)
  process.emitWarning = ((warning: string | Error, ...rest: unknown[]) => {
    const text = typeof warning === 'string' ? warning : warning.message
    if (text.startsWith('NodeVersionSupportWarning')) {
      if (process.env.PROV_DEBUG === '1') original(warning as string, ...(rest as []))
      return
    }
    original(warning as string, ...(rest as []))
  }) as typeof process.emitWarning
}
