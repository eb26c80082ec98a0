/**
 * Whole age v1 files (age-encryption.org/v1) for X25519 recipients on node:crypto, streamed:
 * `--format age` output and the decryption of age files. age-encryption (pure JS) stays the
 * fallback for what this does not handle (scrypt passphrases, plugin recipients and identities).
 *
 *   header  = "age-encryption.org/v1\n" stanza+ "--- " b64(HMAC-SHA256(HKDF(file key, "", "header"), header up to "---")) "\n"
 *   payload = 16-byte nonce, then STREAM chunks: ChaCha20-Poly1305 under HKDF(file key, nonce, "payload"),
 *             64 KiB of plaintext each, nonce = 11-byte big-endian counter || last-chunk flag;
 *             the final chunk may be short, and is empty only when the whole payload is.
 */
import { createCipheriv, createHmac, randomBytes, timingSafeEqual } from 'node:crypto'
import { deniedError, usageError } from '@prov/core'
import { ByteReader, type ByteSource } from '../lib/io'
import { b64, chachaOpen, chachaSeal, hkdf, publicOf, x25519 } from './age-x25519'

export const AGE_CHUNK = 64 * 1024
const TAG = 16
const SEALED_CHUNK = AGE_CHUNK + TAG
const VERSION_LINE = 'age-encryption.org/v1'
/** Headers beyond this are refused (X25519 stanzas are ~120 bytes each). */
const MAX_HEADER = 1024 * 1024

export interface AgeStanza {
  type: string
  args: string[]
  body: Buffer
}

interface ParsedHeader {
  stanzas: AgeStanza[]
  /** The header up to and including "---": what the MAC covers. */
  macInput: Buffer
  mac: Buffer
  /** Bytes of the header including the MAC line's newline. */
  length: number
}

/** Canonical unpadded base64 (the spec requires decoders to reject anything else). */
function strictBase64(text: string, what: string): Buffer {
  if (!/^[A-Za-z0-9+/]*$/.test(text) || text.length % 4 === 1) throw usageError(`not a valid age file: bad base64 in the ${what}`)
  const data = Buffer.from(text, 'base64')
  if (b64(data) !== text) throw usageError(`not a valid age file: non-canonical base64 in the ${what}`)
  return data
}

/** Parses a header at the start of `data`; undefined while more bytes are needed. */
export function parseAgeHeader(data: Buffer): ParsedHeader | undefined {
  let pos = 0
  const nextLine = (): string | undefined => {
    const end = data.indexOf(10, pos)
    if (end < 0) return undefined
    const line = data.toString('latin1', pos, end)
    pos = end + 1
    return line
  }
  const version = nextLine()
  if (version === undefined) return undefined
  if (version !== VERSION_LINE) throw usageError('not a valid age file: unsupported version line')
  const stanzas: AgeStanza[] = []
  for (;;) {
    const lineStart = pos
    const line = nextLine()
    if (line === undefined) return undefined
    if (line.startsWith('--- ')) {
      if (!stanzas.length) throw usageError('not a valid age file: no recipient stanza')
      const mac = strictBase64(line.slice(4), 'header MAC')
      if (mac.length !== 32) throw usageError('not a valid age file: bad header MAC length')
      return { stanzas, macInput: data.subarray(0, lineStart + 3), mac, length: pos }
    }
    if (!line.startsWith('-> ')) throw usageError('not a valid age file: malformed header line')
    const args = line.slice(3).split(' ')
    if (args.some((arg) => !/^[\x21-\x7e]+$/.test(arg))) throw usageError('not a valid age file: malformed stanza arguments')
    // The body is wrapped at 64 columns and ends with a shorter (possibly empty) line.
    let body = ''
    for (;;) {
      const bodyLine = nextLine()
      if (bodyLine === undefined) return undefined
      if (bodyLine.length > 64) throw usageError('not a valid age file: stanza body line too long')
      body += bodyLine
      if (bodyLine.length < 64) break
    }
    stanzas.push({ type: args[0], args: args.slice(1), body: strictBase64(body, 'stanza body') })
  }
}

const headerMac = (fileKey: Buffer, macInput: Buffer | string) =>
  createHmac('sha256', hkdf(fileKey, Buffer.alloc(0), 'header'))
    .update(macInput)
    .digest()

/** A fresh file key and the header that wraps it for X25519 recipients (raw 32-byte keys). */
export function buildAgeHeader(recipients: Buffer[]): { fileKey: Buffer; header: Buffer } {
  const fileKey = randomBytes(16)
  let header = `${VERSION_LINE}\n`
  for (const recipient of recipients) {
    const ephemeral = randomBytes(32)
    const share = publicOf(ephemeral)
    const wrapKey = hkdf(x25519(ephemeral, recipient), Buffer.concat([share, recipient]), 'age-encryption.org/v1/X25519')
    header += `-> X25519 ${b64(share)}\n${b64(chachaSeal(wrapKey, Buffer.alloc(12), fileKey))}\n`
  }
  header += '---'
  return { fileKey, header: Buffer.from(`${header} ${b64(headerMac(fileKey, header))}\n`, 'latin1') }
}

/** The file key from the first X25519 stanza one of `identities` (raw secrets) opens. */
function unwrapFileKey(stanzas: AgeStanza[], identities: Buffer[]): Buffer | undefined {
  const ours = identities.map((secret) => ({ secret, pub: publicOf(secret) }))
  for (const stanza of stanzas) {
    if (stanza.type !== 'X25519') continue
    const share = stanza.args.length === 1 ? strictBase64(stanza.args[0], 'X25519 share') : undefined
    if (share?.length !== 32 || stanza.body.length !== 32) throw usageError('not a valid age file: malformed X25519 stanza')
    for (const identity of ours) {
      let shared: Buffer
      try {
        shared = x25519(identity.secret, share)
      } catch {
        throw deniedError('age decryption failed: X25519 stanza with a low-order share', { hint: 'the file was altered' })
      }
      const wrapKey = hkdf(shared, Buffer.concat([share, identity.pub]), 'age-encryption.org/v1/X25519')
      const fileKey = chachaOpen(wrapKey, Buffer.alloc(12), stanza.body)
      if (fileKey?.length === 16) return fileKey
    }
  }
  return undefined
}

function chunkNonce(counter: number, last: boolean): Buffer {
  const nonce = Buffer.alloc(12)
  nonce.writeUIntBE(counter, 5, 6)
  nonce[11] = last ? 1 : 0
  return nonce
}

/** Encrypts a byte source into a binary age file for X25519 recipients, one chunk at a time. */
export async function* encryptAgeStream(source: ByteSource, recipients: Buffer[]): ByteSource {
  const { fileKey, header } = buildAgeHeader(recipients)
  const nonce = randomBytes(16)
  yield Buffer.concat([header, nonce])
  const key = hkdf(fileKey, nonce, 'payload')
  const reader = new ByteReader(source)
  for (let counter = 0; ; counter++) {
    const plain = await reader.read(AGE_CHUNK)
    // A full chunk is the last one only when nothing follows it.
    const last = plain.length < AGE_CHUNK || (await reader.fill(1)) === 0
    const cipher = createCipheriv('chacha20-poly1305', key, chunkNonce(counter, last), { authTagLength: TAG })
    const sealed = cipher.update(plain)
    cipher.final()
    yield sealed
    yield cipher.getAuthTag()
    if (last) return
  }
}

/**
 * Decrypts an age file whose header has an X25519 stanza for one of `identities`, streaming the
 * payload. Undefined (nothing consumed) when the file is for other recipient types, so the caller
 * can hand the whole input to age-encryption; throws for damaged files and wrong keys.
 */
export async function decryptAgeStream(reader: ByteReader, identities: Buffer[], allIdentitiesNative: boolean): Promise<ByteSource | undefined> {
  let header: ParsedHeader | undefined
  for (let want = 4096; ; want *= 2) {
    const available = await reader.fill(want)
    header = parseAgeHeader(await reader.peek(available))
    if (header) break
    if (available < want) throw usageError('not a valid age file: the header is truncated')
    if (want >= MAX_HEADER) throw usageError('not a valid age file: the header is too large')
  }
  const fileKey = unwrapFileKey(header.stanzas, identities)
  if (!fileKey) {
    // Other stanza types may belong to identities only age-encryption understands.
    if (allIdentitiesNative && header.stanzas.every((stanza) => stanza.type === 'X25519')) {
      throw deniedError('no identity can decrypt this age file (wrong key)', { hint: 'see prov-kms keys list' })
    }
    return undefined
  }
  if (!timingSafeEqual(headerMac(fileKey, header.macInput), header.mac)) {
    throw deniedError('age decryption failed: header MAC mismatch', { hint: 'the file was altered' })
  }
  await reader.read(header.length)
  return openAgePayload(reader, fileKey)
}

async function* openAgePayload(reader: ByteReader, fileKey: Buffer): ByteSource {
  const nonce = await reader.read(16)
  if (nonce.length < 16) throw usageError('age file is truncated (no payload)')
  const key = hkdf(fileKey, nonce, 'payload')
  for (let counter = 0; ; counter++) {
    // More than one sealed chunk left: this one is a middle chunk.
    if ((await reader.fill(SEALED_CHUNK + 1)) > SEALED_CHUNK) {
      const plain = chachaOpen(key, chunkNonce(counter, false), await reader.read(SEALED_CHUNK))
      if (!plain) throw payloadFailure(counter)
      yield plain
      continue
    }
    const sealed = await reader.read(SEALED_CHUNK)
    if (sealed.length < TAG) throw usageError('age file is truncated')
    const plain = chachaOpen(key, chunkNonce(counter, true), sealed)
    if (plain) {
      if (plain.length === 0 && counter > 0) throw usageError('not a valid age file: empty final chunk')
      yield plain
      return
    }
    // A full middle chunk at the end: the final chunk was cut off.
    if (sealed.length === SEALED_CHUNK && chachaOpen(key, chunkNonce(counter, false), sealed)) throw usageError('age file is truncated (final chunk missing)')
    throw payloadFailure(counter)
  }
}

function payloadFailure(counter: number) {
  return deniedError(`age decryption failed at chunk ${counter}: authentication failed`, { hint: 'the file was altered or truncated' })
}
