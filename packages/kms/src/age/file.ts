/**
 * Whole age files: written for recipients, opened with identities, streamed.
 *
 * X25519 (`age1...`, `AGE-SECRET-KEY-1...`), the usual case, runs here on node:crypto. Other
 * types (post-quantum hybrid, tags, plugins) are handed to age-encryption: for opening, only the
 * header's stanzas (its `decryptHeader` returns the file key, MAC checked); for writing, the
 * whole file. Either way the header is parsed by format.ts first and the payload is opened by
 * stream.ts, so every file meets the same strict checks.
 */
import { randomBytes } from 'node:crypto'
import { usageError } from '@prov/core'
import { ByteReader, type ByteSource, bufferSource, readAll } from '../lib/io'
import { armorDecode, armorEncode } from './armor'
import { type AgeHeader, ageFailure, encodeHeader, MAX_HEADER_SIZE, parseHeader, type Stanza, verifyHeaderMac } from './format'
import { openPayload, sealPayload } from './stream'
import { X25519Identity, X25519Recipient } from './x25519'

type AgeModule = typeof import('age-encryption')
let ageModule: Promise<AgeModule> | undefined
/** age-encryption, loaded only when a recipient or identity type other than X25519 is used. */
export const loadAgeEncryption = (): Promise<AgeModule> => {
  ageModule ??= import('age-encryption')
  return ageModule
}

/** An identity in age's sense: null for "no stanza is mine", an exception for "mine but broken". */
export interface AgeIdentityKey {
  unwrapFileKey(stanzas: Stanza[]): Buffer | null
}

/** The identities to open files with: X25519 ones natively, others (as text) through age-encryption. */
export interface AgeKeys {
  native: AgeIdentityKey[]
  foreign: string[]
}

export function ageKeys(secrets: string[]): AgeKeys {
  const keys: AgeKeys = { native: [], foreign: [] }
  for (const secret of secrets) {
    const x25519 = X25519Identity.parse(secret)
    if (x25519) keys.native.push(x25519)
    else keys.foreign.push(secret)
  }
  return keys
}

/** Reads the header, growing the read until it is complete (bounded by MAX_HEADER_SIZE). */
async function readHeader(reader: ByteReader): Promise<AgeHeader> {
  for (let want = 4096; ; want *= 2) {
    const available = await reader.fill(want)
    const header = parseHeader(await reader.peek(available), available < want)
    if (header) return header
    if (want >= MAX_HEADER_SIZE) throw ageFailure('header', 'the header is too large')
  }
}

/** Messages of age-encryption's errors that mean "none of the stanzas is for these identities". */
const foreignNoMatch = /no identity matched/i

async function unwrapForeign(header: AgeHeader, identities: string[]): Promise<Buffer> {
  const age = await loadAgeEncryption()
  const decrypter = new age.Decrypter()
  try {
    for (const identity of identities) decrypter.addIdentity(identity)
  } catch (error) {
    throw usageError(`unusable age identity: ${(error as Error).message}`, { hint: 'identities look like AGE-SECRET-KEY-1... or AGE-SECRET-KEY-PQ-1...' })
  }
  try {
    return Buffer.from(await decrypter.decryptHeader(header.raw))
  } catch (error) {
    // age-encryption reports through messages only; this is the one place they are read.
    const message = (error as Error).message
    if (foreignNoMatch.test(message)) throw noMatch()
    if (/header HMAC/i.test(message)) throw ageFailure('hmac', 'age decryption failed: header MAC mismatch', 'the file was altered')
    throw ageFailure('header', message)
  }
}

const noMatch = () => ageFailure('no-match', 'no identity can decrypt this age file (wrong key)', 'see prov-kms keys list')

/** The file key of a parsed header, MAC verified. */
export async function unwrapHeader(header: AgeHeader, keys: AgeKeys): Promise<Buffer> {
  for (const identity of keys.native) {
    const fileKey = identity.unwrapFileKey(header.stanzas)
    if (!fileKey) continue
    verifyHeaderMac(header, fileKey)
    return fileKey
  }
  if (keys.foreign.length) return unwrapForeign(header, keys.foreign)
  throw noMatch()
}

/** Opens a binary age file: the header is read and checked before the first plaintext byte. */
export async function openAgeFile(reader: ByteReader, keys: AgeKeys): Promise<ByteSource> {
  const header = await readHeader(reader)
  const fileKey = await unwrapHeader(header, keys)
  await reader.read(header.length)
  return openPayload(reader, fileKey)
}

/** Opens an age file that may be armored (told by its first bytes). */
export async function openAnyAgeFile(source: ByteSource, keys: AgeKeys): Promise<ByteSource> {
  const reader = new ByteReader(source)
  const armored = /^\s*-----/.test((await reader.peek(1100)).toString('latin1'))
  return openAgeFile(armored ? new ByteReader(armorDecode(reader.rest())) : reader, keys)
}

/** A whole (small) age file, armored or binary, opened into one buffer. */
export async function openAgeBuffer(data: Uint8Array, keys: AgeKeys, limit?: number): Promise<Buffer> {
  return readAll(await openAnyAgeFile(bufferSource(data), keys), limit)
}

/** Writes an age file for `recipients` (`age1...`), binary or armored. */
export async function* sealAgeFile(source: ByteSource, recipients: string[], armored: boolean): ByteSource {
  const native = recipients.map((recipient) => X25519Recipient.parse(recipient))
  let body: AsyncIterable<Uint8Array>
  if (native.every((recipient): recipient is X25519Recipient => recipient !== undefined)) {
    body = sealNative(source, native)
  } else {
    const age = await loadAgeEncryption()
    const encrypter = new age.Encrypter()
    for (const recipient of recipients) encrypter.addRecipient(recipient)
    body = (await encrypter.encrypt(ReadableStream.from(source) as ReadableStream<Uint8Array>)) as unknown as AsyncIterable<Uint8Array>
  }
  yield* armored ? armorEncode(body) : body
}

async function* sealNative(source: ByteSource, recipients: X25519Recipient[]): ByteSource {
  if (!recipients.length) throw usageError('no age recipients')
  const fileKey = randomBytes(16)
  yield encodeHeader(
    recipients.flatMap((recipient) => recipient.wrapFileKey(fileKey)),
    fileKey,
  )
  yield* sealPayload(source, fileKey)
}

/** A whole (small) age file for `recipients`, as one buffer. */
export async function sealAgeBuffer(plain: Uint8Array, recipients: string[], armored: boolean): Promise<Buffer> {
  return readAll(sealAgeFile(bufferSource(plain), recipients, armored))
}

/** The `age1...` recipient of an identity (X25519 natively, other types through age-encryption). */
export async function recipientOfIdentity(identity: string): Promise<string> {
  const x25519 = X25519Identity.parse(identity)
  if (x25519) return x25519.recipient.toString()
  const age = await loadAgeEncryption()
  return age.identityToRecipient(identity)
}
