/**
 * AWS KMS backend (@aws-sdk/client-kms, imported lazily): Encrypt and Decrypt as wrap/unwrap,
 * GenerateDataKey, DescribeKey as the status probe, all with the EncryptionContext. The endpoint is configurable (kms.aws.endpoint, or
 * $AWS_ENDPOINT_URL_KMS) so it can point at a local contract server or a VPC endpoint.
 * Throttling is retried by the SDK with exponential backoff, then reported clearly.
 */
import { configError, deniedError, failedError, notFoundError, type ProvError, usageError } from '@prov/core'
import { authenticationError } from '../lib/auth-failure'
import type { EncryptionContext } from '../lib/context'
import { retryPolicy } from '../lib/retry'
import type { KmsSettings } from '../lib/settings'
import type { DataKeySource, KeyWrapper, StatusProbe, WrappedKey } from './key-wrapper'

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

/** KMS Encrypt takes at most 4096 bytes of plaintext. */
export const AWS_ENCRYPT_LIMIT = 4096

export class AwsKms implements KeyWrapper, DataKeySource, StatusProbe {
  private client?: Promise<{ mod: KmsModule; client: InstanceType<KmsModule['KMSClient']> }>

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

  /** KMS Encrypt: at most 4096 bytes, bound to the EncryptionContext; the CiphertextBlob. */
  async wrap(plain: Buffer, context: EncryptionContext): Promise<Buffer> {
    if (plain.length > AWS_ENCRYPT_LIMIT)
      throw usageError(`AWS KMS Encrypt takes at most ${AWS_ENCRYPT_LIMIT} bytes`, { hint: 'prov-kms uses the envelope format for larger input' })
    const { mod, client } = await this.connect()
    try {
      const out = await client.send(new mod.EncryptCommand({ KeyId: this.options.keyId, Plaintext: plain, EncryptionContext: context }))
      return Buffer.from(out.CiphertextBlob ?? new Uint8Array())
    } catch (error) {
      throw this.fail(error, 'Encrypt')
    }
  }

  async unwrap(blob: Buffer, context: EncryptionContext): Promise<Buffer> {
    const { mod, client } = await this.connect()
    try {
      const out = await client.send(new mod.DecryptCommand({ CiphertextBlob: blob, EncryptionContext: context, KeyId: this.options.keyId }))
      return Buffer.from(out.Plaintext ?? new Uint8Array())
    } catch (error) {
      throw this.fail(error, 'Decrypt')
    }
  }

  readonly dataKeyBits = [128, 256] as const

  async generateDataKey(context: EncryptionContext, bits: number): Promise<WrappedKey> {
    const { mod, client } = await this.connect()
    try {
      const out = await client.send(
        new mod.GenerateDataKeyCommand({ KeyId: this.options.keyId, KeySpec: bits === 128 ? 'AES_128' : 'AES_256', EncryptionContext: context }),
      )
      return { key: Buffer.from(out.Plaintext ?? new Uint8Array()), wrapped: Buffer.from(out.CiphertextBlob ?? new Uint8Array()) }
    } catch (error) {
      throw this.fail(error, 'GenerateDataKey')
    }
  }

  async probe(): Promise<Record<string, unknown>> {
    const describe = { region: this.options.region, endpoint: this.options.endpoint ?? null }
    const started = Date.now()
    const { mod, client } = await this.connect()
    try {
      await client.send(new mod.DescribeKeyCommand({ KeyId: this.options.keyId }))
      return { ...describe, reachable: true, key: this.options.keyId, latency_ms: Date.now() - started }
    } catch (error) {
      const name = (error as Error).name
      return {
        ...describe,
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
