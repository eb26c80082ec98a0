/**
 * The one interface every KMS backend implements (age, Vault Transit, AWS KMS), and the optional
 * capabilities some have. Callers find a capability with the guards below, never by the
 * backend's name or class.
 */
import type { EncryptionContext } from '../lib/context'
import type { ByteSource } from '../lib/io'

/** A data key and the form its backend wrapped it in. */
export interface WrappedKey {
  key: Buffer
  wrapped: Buffer
}

/**
 * Wraps a secret (the data key of an envelope, or a short value) under the backend's key, bound
 * to an encryption context, and unwraps it again. A backend that cannot bind a context itself
 * (age) relies on the envelope, whose AAD is the context.
 */
export interface KeyWrapper {
  wrap(plain: Buffer, context: EncryptionContext): Promise<Buffer>
  unwrap(wrapped: Buffer, context: EncryptionContext): Promise<Buffer>
}

/** The backend makes data keys itself (Vault `datakey`, AWS `GenerateDataKey`). */
export interface DataKeySource {
  readonly dataKeyBits: readonly number[]
  generateDataKey(context: EncryptionContext, bits: number): Promise<WrappedKey>
}

/** The backend re-encrypts its own ciphertext under its newest key version without revealing it (Vault `rewrap`). */
export interface Rewrapper {
  rewrap(wrapped: Buffer, context: EncryptionContext): Promise<Buffer>
}

/** The backend can say whether it is reachable and healthy (`prov-kms status`). */
export interface StatusProbe {
  probe(): Promise<Record<string, unknown>>
}

/** The backend has a whole-file format of its own that other tools read (age files). */
export interface FileFormat {
  sealFile(source: ByteSource, armored: boolean): ByteSource
  openFile(source: ByteSource): Promise<ByteSource>
}

const has = (value: object, method: string) => typeof (value as Record<string, unknown>)[method] === 'function'

export const hasDataKeys = (wrapper: KeyWrapper): wrapper is KeyWrapper & DataKeySource => has(wrapper, 'generateDataKey')
export const hasRewrap = (wrapper: KeyWrapper): wrapper is KeyWrapper & Rewrapper => has(wrapper, 'rewrap')
export const hasProbe = (wrapper: KeyWrapper): wrapper is KeyWrapper & StatusProbe => has(wrapper, 'probe')
export const hasFileFormat = (wrapper: KeyWrapper): wrapper is KeyWrapper & FileFormat => has(wrapper, 'sealFile') && has(wrapper, 'openFile')
