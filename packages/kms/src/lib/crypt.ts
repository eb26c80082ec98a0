/**
 * Encrypt/decrypt across backends. The backend of an encryption comes from `--backend` or
 * `kms.backend`; a decryption finds it by the ciphertext's prefix (backends/registry.ts). What a
 * backend can do beyond wrapping keys is found through its capabilities (backends/key-wrapper.ts).
 */
import { randomBytes } from 'node:crypto'
import { deniedError, usageError } from '@prov/core'
import { hasDataKeys, hasFileFormat, type KeyWrapper, type WrappedKey } from '../backends/key-wrapper'
import { type BackendSpec, backends, classify } from '../backends/registry'
import { canonicalContext, type EncryptionContext } from './context'
import { openEnvelope, readWrappedKey, sealBuffer, sealEnvelope } from './envelope'
import { ByteReader, type ByteSource, base64Decode, base64Encode, bufferSource, readAll } from './io'
import type { BackendName, KmsContext } from './settings'

/** Direct ciphertexts (a KMS blob, a Vault ciphertext) are read whole, up to this size. */
const MAX_DIRECT_CIPHERTEXT = 1 << 20
const DATA_KEY_BITS = 256

export interface CryptOptions {
  ctx: KmsContext
  context: EncryptionContext
  recipients?: string[]
}

/** Holds the backends of one invocation: one data key per backend, unwrapped keys cached. */
export class Crypt {
  private readonly wrappers = new Map<BackendName, KeyWrapper>()
  private readonly sessions = new Map<BackendName, Promise<WrappedKey>>()
  private readonly unwrapped = new Map<string, Promise<Buffer>>()
  readonly aad: Buffer

  constructor(readonly options: CryptOptions) {
    this.aad = canonicalContext(options.context)
  }

  wrapper(name: BackendName): KeyWrapper {
    let wrapper = this.wrappers.get(name)
    if (!wrapper) {
      wrapper = backends[name].create(this.options.ctx, this.options.recipients ?? [])
      this.wrappers.set(name, wrapper)
    }
    return wrapper
  }

  /** One data key per invocation and backend (record streams reuse it; each message gets its own salt). */
  private sessionKey(name: BackendName): Promise<WrappedKey> {
    let session = this.sessions.get(name)
    if (!session) {
      const wrapper = this.wrapper(name)
      const context = this.options.context
      session = hasDataKeys(wrapper)
        ? wrapper.generateDataKey(context, DATA_KEY_BITS)
        : (async () => {
            const key = randomBytes(DATA_KEY_BITS / 8)
            return { key, wrapped: await wrapper.wrap(key, context) }
          })()
      this.sessions.set(name, session)
    }
    return session
  }

  /** Unwraps once per wrapped key and context (a stream of fields shares one data key). */
  private unwrap(spec: BackendSpec, wrapped: Buffer, context: EncryptionContext): Promise<Buffer> {
    const cacheKey = `${spec.name}\n${canonicalContext(context).toString('base64')}\n${wrapped.toString('base64')}`
    let pending = this.unwrapped.get(cacheKey)
    if (!pending) {
      pending = this.wrapper(spec.name).unwrap(wrapped, context)
      this.unwrapped.set(cacheKey, pending)
      pending.catch(() => this.unwrapped.delete(cacheKey))
    }
    return pending
  }

  /** Streams an encryption; yields the output bytes. */
  async *encrypt(plainSource: ByteSource, backend: BackendName, binary: boolean): ByteSource {
    const spec = backends[backend]
    const direct = spec.direct
    let source = plainSource
    // A backend without an envelope encrypts the whole input itself; one with both takes small
    // text input directly (AWS KMS Encrypt, up to 4 KiB) and everything else in an envelope.
    const small = direct && spec.envelope && !binary ? direct.maxPlain : undefined
    if (direct && (!spec.envelope || small)) {
      const reader = new ByteReader(source)
      if (!small || (await reader.fill(small + 1)) <= small) {
        const plain = await readAll(reader.rest())
        if (plain.length || !spec.envelope) {
          const text = direct.encode(await this.wrapper(backend).wrap(plain, this.options.context))
          yield Buffer.from(binary ? text : `${text}\n`, 'latin1')
          return
        }
      }
      source = reader.rest()
    }
    const envelope = spec.envelope as NonNullable<BackendSpec['envelope']>
    const body = sealEnvelope(source, await this.sessionKey(backend), this.aad)
    if (binary) {
      yield Buffer.from(envelope.binary)
      yield* body
    } else {
      yield Buffer.from(envelope.text)
      yield* base64Encode(body)
      yield Buffer.from('\n')
    }
  }

  /**
   * Encrypts one value to an armored string (record fields). `context` (default: the invocation's)
   * is what the value is bound to; the data key of the invocation stays wrapped under the
   * invocation's context, so one key serves every field.
   */
  async encryptValue(plain: Buffer, backend: BackendName, context: EncryptionContext = this.options.context): Promise<string> {
    const spec = backends[backend]
    if (!spec.envelope) return (spec.direct as NonNullable<BackendSpec['direct']>).encode(await this.wrapper(backend).wrap(plain, context))
    return spec.envelope.text + sealBuffer(plain, await this.sessionKey(backend), canonicalContext(context)).toString('base64')
  }

  /** Streams a decryption of any known ciphertext, opened with `context` (default: the invocation's). */
  async *decrypt(source: ByteSource, context: EncryptionContext = this.options.context): ByteSource {
    const aad = context === this.options.context ? this.aad : canonicalContext(context)
    const reader = new ByteReader(source)
    const head = await reader.peek(64)
    if (!head.length) throw usageError('no ciphertext on input')
    const found = classify(head)
    const skipWs = head.length - head.toString('latin1').replace(/^\s+/, '').length
    if (skipWs) await reader.read(skipWs)
    switch (found.kind) {
      case 'envelope': {
        await reader.read(found.prefix.length)
        const body = found.binary ? reader : new ByteReader(base64Decode(reader.rest()))
        const key = await this.unwrap(found.spec, await readWrappedKey(body), this.options.context)
        if (key.length !== 32) throw deniedError('the wrapped data key has the wrong size (corrupted ciphertext)')
        yield* openEnvelope(body, key, aad)
        return
      }
      case 'direct': {
        const text = (await readAll(reader.rest(), MAX_DIRECT_CIPHERTEXT)).toString('latin1').trim()
        yield await this.unwrap(found.spec, found.format.decode(text), context)
        return
      }
      case 'file':
        yield* await this.openFile(found.spec, reader.rest(), context)
        return
    }
  }

  /** Decrypts one armored value (record fields), opened with `context` (default: the invocation's). */
  async decryptValue(text: string, context: EncryptionContext = this.options.context): Promise<Buffer> {
    const chunks: Buffer[] = []
    for await (const chunk of this.decrypt(bufferSource(Buffer.from(text)), context)) chunks.push(Buffer.from(chunk))
    return Buffer.concat(chunks)
  }

  private async openFile(spec: BackendSpec, source: ByteSource, context: EncryptionContext): Promise<ByteSource> {
    if (Object.keys(context).length) {
      throw usageError(`plain ${spec.name} files carry no encryption context`, { location: '--context', hint: `drop --context for ${spec.name} files` })
    }
    const wrapper = this.wrapper(spec.name)
    if (!hasFileFormat(wrapper)) throw usageError(`the ${spec.name} backend reads no whole files`)
    return wrapper.openFile(source)
  }

  /** Writes a whole file in the backend's own format (a plain age file the `age` CLI reads); armored unless binary. */
  async *encryptFile(source: ByteSource, backend: BackendName, binary: boolean): ByteSource {
    const wrapper = this.wrapper(backend)
    if (!hasFileFormat(wrapper)) throw usageError(`the ${backend} backend has no file format of its own`, { location: '--format' })
    if (Object.keys(this.options.context).length) {
      throw usageError(`--format ${backend} cannot bind an encryption context`, {
        location: '--context',
        hint: 'use the default prov envelope format for context',
      })
    }
    yield* wrapper.sealFile(source, !binary)
  }
}
