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
import { decryptAgeStream, encryptAgeStream } from '../backends/age-stream'
import { parseX25519Identity, parseX25519Recipient } from '../backends/age-x25519'
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

  /**
   * Encrypts one value to an armored string (record fields). `context` (default: the invocation's)
   * is what the value is bound to; the data key of the invocation stays wrapped under the
   * invocation's context, so one key serves every field.
   */
  async encryptValue(plain: Buffer, backend: BackendName, context: EncryptionContext = this.options.context): Promise<string> {
    const aad = canonicalContext(context)
    if (backend === 'vault') return this.vault().encrypt(plain, aad)
    if (backend === 'awskms') {
      const wrapped = await this.aws().sessionKey(this.options.context)
      return PREFIX.awsEnvelope + sealBuffer(plain, wrapped, aad).toString('base64')
    }
    const wrapped = await this.age().sessionKey()
    return PREFIX.age + sealBuffer(plain, wrapped, aad).toString('base64')
  }

  /** Streams a decryption of any known ciphertext, opened with `context` (default: the invocation's). */
  async *decrypt(source: ByteSource, context: EncryptionContext = this.options.context): ByteSource {
    const aad = context === this.options.context ? this.aad : canonicalContext(context)
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
        yield* this.openBody(new ByteReader(base64Decode(reader.rest())), kind === 'age' ? 'age' : 'awskms', aad)
        return
      }
      case 'age-binary':
      case 'awskms-env-binary':
        await reader.read(kind === 'age-binary' ? PREFIX.ageBinary.length : PREFIX.awsEnvelopeBinary.length)
        yield* this.openBody(reader, kind === 'age-binary' ? 'age' : 'awskms', aad)
        return
      case 'awskms-blob': {
        const text = (await readAll(reader.rest(), 1 << 20)).toString('latin1').trim()
        yield await this.aws().decrypt(decodeBase64Strict(text.slice(PREFIX.awsBlob.length)), context)
        return
      }
      case 'vault': {
        const text = (await readAll(reader.rest())).toString('latin1').trim()
        yield await this.vault().decrypt(text, aad)
        return
      }
      case 'age-file-armor':
      case 'age-file':
        yield* this.decryptAgeFile(reader, kind === 'age-file-armor', context)
        return
    }
  }

  /** Decrypts one armored value (record fields), opened with `context` (default: the invocation's). */
  async decryptValue(text: string, context: EncryptionContext = this.options.context): Promise<Buffer> {
    const chunks: Buffer[] = []
    for await (const chunk of this.decrypt(bufferSource(Buffer.from(text)), context)) chunks.push(Buffer.from(chunk))
    return Buffer.concat(chunks)
  }

  private async *openBody(reader: ByteReader, backend: 'age' | 'awskms', aad: Buffer): ByteSource {
    const wrapped = await readWrappedKey(reader)
    const key = backend === 'age' ? await this.age().unwrap(wrapped) : await this.aws().decrypt(wrapped, this.options.context)
    yield* openEnvelope(reader, key, aad)
  }

  private async *decryptAgeFile(reader: ByteReader, armored: boolean, context: EncryptionContext): ByteSource {
    if (Object.keys(context).length) {
      throw usageError('plain age files carry no encryption context', { location: '--context', hint: 'drop --context for age files' })
    }
    const identities = decryptionIdentities(this.options.ctx)
    const x25519 = identities.map((identity) => parseX25519Identity(identity.secret)).filter((key): key is Buffer => key !== undefined)
    const file = armored ? new ByteReader(ageArmorDecode(reader.rest())) : reader
    // X25519 files (age -r, --format age) are opened on node:crypto, chunk by chunk.
    const native = await decryptAgeStream(file, x25519, x25519.length === identities.length)
    if (native) {
      yield* native
      return
    }
    const age = await loadAge()
    const decrypter = new age.Decrypter()
    for (const identity of identities) decrypter.addIdentity(identity.secret)
    let stream: ReadableStream<Uint8Array>
    try {
      stream = await decrypter.decrypt(ReadableStream.from(file.rest()) as ReadableStream<Uint8Array>)
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
    const recipients = await resolveRecipients(this.options.ctx, this.options.recipients ?? [])
    const raw = recipients.map(parseX25519Recipient)
    let body: AsyncIterable<Uint8Array>
    if (raw.every((key): key is Buffer => key !== undefined)) body = encryptAgeStream(source, raw)
    else {
      const age = await loadAge()
      const encrypter = new age.Encrypter()
      for (const r of recipients) encrypter.addRecipient(r)
      body = (await encrypter.encrypt(ReadableStream.from(source) as ReadableStream<Uint8Array>)) as unknown as AsyncIterable<Uint8Array>
    }
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

/** age's ASCII armor (strict PEM, RFC 7468: 64-column padded base64), streamed. */
async function* ageArmorEncode(source: AsyncIterable<Uint8Array>): ByteSource {
  yield Buffer.from(`${ARMOR_BEGIN}\n`)
  let carry = Buffer.alloc(0)
  for await (const chunk of source) {
    const data = carry.length ? Buffer.concat([carry, chunk]) : Buffer.from(chunk.buffer, chunk.byteOffset, chunk.length)
    const usable = data.length - (data.length % 48)
    if (usable) yield armorLines(data.subarray(0, usable))
    carry = Buffer.from(data.subarray(usable))
  }
  if (carry.length) yield Buffer.from(`${carry.toString('base64')}\n`)
  yield Buffer.from(`${ARMOR_END}\n`)
}

/** Full 64-column lines for a multiple of 48 bytes: one base64 pass, then a newline every 64. */
function armorLines(data: Buffer): Buffer {
  const text = Buffer.from(data.toString('base64'), 'latin1')
  const lines = text.length / 64
  const out = Buffer.allocUnsafe(lines * 65)
  for (let i = 0; i < lines; i++) {
    text.copy(out, i * 65, i * 64, i * 64 + 64)
    out[i * 65 + 64] = 10
  }
  return out
}

/**
 * Reads age's armor: whitespace around the block is allowed (and CRLF), inside it every line but
 * the last holds exactly 64 base64 characters and only the last may carry `=` padding. Runs of
 * full lines are checked and decoded as one block (a 10 MB file is ~200,000 lines).
 */
async function* ageArmorDecode(source: ByteSource): ByteSource {
  let started = false
  let ended = false
  let finalLine = false
  let pending: Buffer = Buffer.alloc(0)
  /** Full 64-column lines from `pos` on, decoded; undefined when a byte is out of place. */
  const fullLines = (data: Buffer, pos: number, end: number): { data: Buffer; next: number } | undefined => {
    let next = pos
    while (next + 65 <= end && data[next + 64] === 10) next += 65
    if (next === pos) return undefined
    const block = data.subarray(pos, next)
    // Node's decoder skips bytes outside the alphabet and stops at '=', so any stray byte
    // (newline, space, '=', '!') shortens the result; '-' and '_' it would accept are refused here.
    if (block.indexOf(0x2d) >= 0 || block.indexOf(0x5f) >= 0 || block.indexOf(13) >= 0) return undefined
    const decoded = Buffer.from(data.toString('latin1', pos, next), 'base64')
    return decoded.length === ((next - pos) / 65) * 48 ? { data: decoded, next } : undefined
  }
  const line = (rawLine: string): Buffer | undefined => {
    const text = rawLine.length === 64 ? rawLine : rawLine.trim()
    if (!started) {
      if (!text) return undefined
      if (text !== ARMOR_BEGIN) throw usageError('bad age armor header')
      started = true
      return undefined
    }
    if (ended) {
      if (text) throw usageError('trailing data after the age armor')
      return undefined
    }
    if (text === ARMOR_END) {
      ended = true
      return undefined
    }
    if (finalLine || text.length > 64 || !text.length || !/^[A-Za-z0-9+/]*={0,2}$/.test(text)) throw usageError('bad base64 in age armor')
    if (text.length < 64 || text.endsWith('=')) finalLine = true
    return Buffer.from(text, 'base64')
  }
  /** Decodes the complete lines in data[0, end). */
  function* lines(data: Buffer, end: number): Generator<Buffer> {
    let pos = 0
    while (pos < end) {
      if (started && !ended && !finalLine) {
        const block = fullLines(data, pos, end)
        if (block) {
          yield block.data
          pos = block.next
          continue
        }
      }
      const newline = data.indexOf(10, pos)
      const decoded = line(data.toString('latin1', pos, newline))
      if (decoded?.length) yield decoded
      pos = newline + 1
    }
  }
  for await (const chunk of source) {
    const data = pending.length ? Buffer.concat([pending, chunk]) : Buffer.from(chunk.buffer, chunk.byteOffset, chunk.length)
    const end = data.lastIndexOf(10) + 1
    if (end > 0) yield* lines(data, end)
    pending = Buffer.from(data.subarray(end))
  }
  if (pending.length) {
    const decoded = line(pending.toString('latin1'))
    if (decoded?.length) yield decoded
  }
  if (!ended) throw usageError('age armor is truncated (no END line)')
}
