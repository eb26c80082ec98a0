/**
 * Encrypt/decrypt across backends. Ciphertext prefixes name backend and format so decrypt picks
 * the backend by itself:
 *   prov:age:v1:<base64>        prov envelope, data key wrapped by age (binary: "prov:age:v1\n" + body)
 *   prov:awskms:env1:<base64>   prov envelope, data key from AWS KMS GenerateDataKey (binary: "prov:awskms:env1\n")
 *   prov:awskms:v1:<base64>     an AWS KMS CiphertextBlob (Encrypt of up to 4 KiB, or a datakey)
 *   vault:v1:...                Vault Transit ciphertext, as Vault writes it
 *   -----BEGIN AGE ENCRYPTED FILE----- / age-encryption.org/v1   plain age files
 */
import { deniedError, usageError } from '@prov/core'
import { AgeKeyWrapper, decryptionIdentities, loadAge, resolveRecipients } from '../backends/age'
import { AwsKms, awsOptions } from '../backends/awskms'
import { VaultTransit, vaultOptions } from '../backends/vault'
import { canonicalContext, type EncryptionContext } from './context'
import { openEnvelope, readWrappedKey, sealBuffer, sealEnvelope } from './envelope'
import { ByteReader, type ByteSource, base64Decode, base64Encode, bufferSource, readAll } from './io'
import type { BackendName, KmsContext } from './settings'

export const PREFIX = {
  age: 'prov:age:v1:',
  ageBinary: 'prov:age:v1\n',
  awsEnvelope: 'prov:awskms:env1:',
  awsEnvelopeBinary: 'prov:awskms:env1\n',
  awsBlob: 'prov:awskms:v1:',
  vault: 'vault:v',
  ageArmor: '-----BEGIN AGE ENCRYPTED FILE-----',
  ageBinaryFile: 'age-encryption.org/v1\n',
} as const

/** AWS KMS Encrypt takes at most 4096 bytes of plaintext. */
const AWS_DIRECT_LIMIT = 4096

export type CiphertextKind = 'age' | 'age-binary' | 'awskms-env' | 'awskms-env-binary' | 'awskms-blob' | 'vault' | 'age-file-armor' | 'age-file'

/** Classifies a ciphertext by its first bytes; anything unknown is a usage error (exit 2). */
export function classify(head: Buffer): CiphertextKind {
  const text = head.toString('latin1').replace(/^\s+/, '')
  if (text.startsWith(PREFIX.age)) return 'age'
  if (text.startsWith(PREFIX.ageBinary)) return 'age-binary'
  if (text.startsWith(PREFIX.awsEnvelope)) return 'awskms-env'
  if (text.startsWith(PREFIX.awsEnvelopeBinary)) return 'awskms-env-binary'
  if (text.startsWith(PREFIX.awsBlob)) return 'awskms-blob'
  if (/^vault:v\d+:/.test(text)) return 'vault'
  if (text.startsWith(PREFIX.ageArmor)) return 'age-file-armor'
  if (text.startsWith(PREFIX.ageBinaryFile)) return 'age-file'
  const prefix = /^([a-z0-9-]+:[a-z0-9-]*:?[a-z0-9]*:?)/i.exec(text)?.[1]
  throw usageError(prefix ? `unknown ciphertext prefix '${prefix}'` : 'input is not a prov-kms ciphertext (no known prefix)', {
    hint: 'known prefixes: prov:age:v1:, prov:awskms:v1:, prov:awskms:env1:, vault:v1:, age files',
  })
}

export interface CryptOptions {
  ctx: KmsContext
  context: EncryptionContext
  recipients?: string[]
}

/** Holds the backend clients of one invocation (one data key per stream, unwrap cache). */
export class Crypt {
  private ageWrapper?: AgeKeyWrapper
  private vaultClient?: VaultTransit
  private awsClient?: AwsKms
  readonly aad: Buffer

  constructor(readonly options: CryptOptions) {
    this.aad = canonicalContext(options.context)
  }

  age(): AgeKeyWrapper {
    this.ageWrapper ??= new AgeKeyWrapper(this.options.ctx, this.options.recipients ?? [])
    return this.ageWrapper
  }

  vault(): VaultTransit {
    this.vaultClient ??= new VaultTransit(vaultOptions(this.options.ctx.settings.vault))
    return this.vaultClient
  }

  aws(): AwsKms {
    this.awsClient ??= new AwsKms(awsOptions(this.options.ctx.settings.aws))
    return this.awsClient
  }

  /** Streams an encryption; yields the output bytes. */
  async *encrypt(plainSource: ByteSource, backend: BackendName, binary: boolean): ByteSource {
    let source = plainSource
    if (backend === 'vault') {
      const plain = await readAll(source)
      yield Buffer.from(`${await this.vault().encrypt(plain, this.aad)}${binary ? '' : '\n'}`)
      return
    }
    if (backend === 'awskms') {
      // Up to 4 KiB goes to KMS Encrypt directly; larger input uses the envelope (GenerateDataKey).
      const reader = new ByteReader(source)
      if ((await reader.fill(AWS_DIRECT_LIMIT + 1)) <= AWS_DIRECT_LIMIT && !binary) {
        const plain = await readAll(reader.rest())
        if (plain.length) {
          yield Buffer.from(`${PREFIX.awsBlob}${(await this.aws().encrypt(plain, this.options.context)).toString('base64')}\n`)
          return
        }
      }
      source = reader.rest()
    }
    const wrapped = backend === 'age' ? await this.age().sessionKey() : await this.aws().sessionKey(this.options.context)
    const body = sealEnvelope(source, wrapped, this.aad)
    if (binary) {
      yield Buffer.from(backend === 'age' ? PREFIX.ageBinary : PREFIX.awsEnvelopeBinary)
      yield* body
    } else {
      yield Buffer.from(backend === 'age' ? PREFIX.age : PREFIX.awsEnvelope)
      yield* base64Encode(body)
      yield Buffer.from('\n')
    }
  }

  /** Encrypts one value to an armored string (record fields). */
  async encryptValue(plain: Buffer, backend: BackendName): Promise<string> {
    if (backend === 'vault') return this.vault().encrypt(plain, this.aad)
    if (backend === 'awskms') {
      const wrapped = await this.aws().sessionKey(this.options.context)
      return PREFIX.awsEnvelope + sealBuffer(plain, wrapped, this.aad).toString('base64')
    }
    const wrapped = await this.age().sessionKey()
    return PREFIX.age + sealBuffer(plain, wrapped, this.aad).toString('base64')
  }

  /** Streams a decryption of any known ciphertext. */
  async *decrypt(source: ByteSource): ByteSource {
    const reader = new ByteReader(source)
    const head = await reader.peek(64)
    if (!head.length) throw usageError('no ciphertext on input')
    const kind = classify(head)
    const skipWs = head.length - head.toString('latin1').replace(/^\s+/, '').length
    if (skipWs) await reader.read(skipWs)
    switch (kind) {
      case 'age':
      case 'awskms-env': {
        await reader.read(kind === 'age' ? PREFIX.age.length : PREFIX.awsEnvelope.length)
        yield* this.openBody(new ByteReader(base64Decode(reader.rest())), kind === 'age' ? 'age' : 'awskms')
        return
      }
      case 'age-binary':
      case 'awskms-env-binary':
        await reader.read(kind === 'age-binary' ? PREFIX.ageBinary.length : PREFIX.awsEnvelopeBinary.length)
        yield* this.openBody(reader, kind === 'age-binary' ? 'age' : 'awskms')
        return
      case 'awskms-blob': {
        const text = (await readAll(reader.rest(), 1 << 20)).toString('latin1').trim()
        yield await this.aws().decrypt(decodeBase64Strict(text.slice(PREFIX.awsBlob.length)), this.options.context)
        return
      }
      case 'vault': {
        const text = (await readAll(reader.rest())).toString('latin1').trim()
        yield await this.vault().decrypt(text, this.aad)
        return
      }
      case 'age-file-armor':
      case 'age-file':
        yield* this.decryptAgeFile(reader, kind === 'age-file-armor')
        return
    }
  }

  /** Decrypts one armored value (record fields). */
  async decryptValue(text: string): Promise<Buffer> {
    const chunks: Buffer[] = []
    for await (const chunk of this.decrypt(bufferSource(Buffer.from(text)))) chunks.push(Buffer.from(chunk))
    return Buffer.concat(chunks)
  }

  private async *openBody(reader: ByteReader, backend: 'age' | 'awskms'): ByteSource {
    const wrapped = await readWrappedKey(reader)
    const key = backend === 'age' ? await this.age().unwrap(wrapped) : await this.aws().decrypt(wrapped, this.options.context)
    yield* openEnvelope(reader, key, this.aad)
  }

  private async *decryptAgeFile(reader: ByteReader, armored: boolean): ByteSource {
    if (Object.keys(this.options.context).length) {
      throw usageError('plain age files carry no encryption context', { location: '--context', hint: 'drop --context for age files' })
    }
    const age = await loadAge()
    const decrypter = new age.Decrypter()
    for (const identity of decryptionIdentities(this.options.ctx)) decrypter.addIdentity(identity.secret)
    const source = armored ? ageArmorDecode(reader.rest()) : reader.rest()
    let stream: ReadableStream<Uint8Array>
    try {
      stream = await decrypter.decrypt(ReadableStream.from(source) as ReadableStream<Uint8Array>)
    } catch (error) {
      throw ageError(error)
    }
    try {
      for await (const chunk of stream as unknown as AsyncIterable<Uint8Array>) yield chunk
    } catch (error) {
      throw ageError(error)
    }
  }

  /** Writes a plain age file (what the `age` CLI reads); armored unless binary. */
  async *encryptAgeFile(source: ByteSource, binary: boolean): ByteSource {
    if (Object.keys(this.options.context).length) {
      throw usageError('--format age cannot bind an encryption context', { location: '--context', hint: 'use the default prov:age:v1 format for context' })
    }
    const age = await loadAge()
    const encrypter = new age.Encrypter()
    for (const r of await resolveRecipients(this.options.ctx, this.options.recipients ?? [])) encrypter.addRecipient(r)
    const stream = await encrypter.encrypt(ReadableStream.from(source) as ReadableStream<Uint8Array>)
    const body = stream as unknown as AsyncIterable<Uint8Array>
    if (binary) yield* body
    else yield* ageArmorEncode(body)
  }
}

function decodeBase64Strict(text: string): Buffer {
  if (!/^[A-Za-z0-9+/]*={0,2}$/.test(text) || !text.length) throw usageError('ciphertext is not valid base64')
  return Buffer.from(text, 'base64')
}

function ageError(error: unknown) {
  const message = (error as Error).message ?? String(error)
  if (/no identity matched/i.test(message)) {
    return deniedError('no identity can decrypt this age file (wrong key)', { hint: 'see prov-kms keys list' })
  }
  if (/invalid|malformed|unexpected|parse|header|short|truncat|empty/i.test(message) && !/mac|tag|auth/i.test(message)) {
    return usageError(`not a valid age file: ${message}`)
  }
  return deniedError(`age decryption failed: ${message}`, { hint: 'the file was altered or truncated' })
}

const ARMOR_BEGIN = '-----BEGIN AGE ENCRYPTED FILE-----'
const ARMOR_END = '-----END AGE ENCRYPTED FILE-----'

/** age's ASCII armor (PEM-like, 64-column base64), streamed. */
async function* ageArmorEncode(source: AsyncIterable<Uint8Array>): ByteSource {
  yield Buffer.from(`${ARMOR_BEGIN}\n`)
  let carry = Buffer.alloc(0)
  for await (const chunk of source) {
    const data = Buffer.concat([carry, chunk])
    const usable = data.length - (data.length % 48)
    if (usable) yield Buffer.from(data.subarray(0, usable).toString('base64').replace(/.{64}/g, '$&\n'))
    carry = Buffer.from(data.subarray(usable))
  }
  if (carry.length) yield Buffer.from(`${carry.toString('base64')}\n`)
  yield Buffer.from(`${ARMOR_END}\n`)
}

async function* ageArmorDecode(source: ByteSource): ByteSource {
  let started = false
  let ended = false
  let pending = ''
  const lines = async function* () {
    for await (const chunk of source) {
      pending += Buffer.from(chunk).toString('latin1')
      const parts = pending.split('\n')
      pending = parts.pop() ?? ''
      yield* parts
    }
    if (pending) yield pending
  }
  for await (const rawLine of lines()) {
    const line = rawLine.trim()
    if (!started) {
      if (!line) continue
      if (line !== ARMOR_BEGIN) throw usageError('bad age armor header')
      started = true
      continue
    }
    if (ended) {
      if (line) throw usageError('trailing data after the age armor')
      continue
    }
    if (line === ARMOR_END) {
      ended = true
      continue
    }
    if (!/^[A-Za-z0-9+/]*={0,2}$/.test(line) || line.length > 64) throw usageError('bad base64 in age armor')
    yield Buffer.from(line, 'base64')
  }
  if (!ended) throw usageError('age armor is truncated (no END line)')
}
