/**
 * The prov envelope (`prov:<backend>:v1:`): a random data key wrapped by a backend (age or AWS
 * KMS), the payload sealed with AES-256-GCM in 64 KiB chunks whose AAD is the canonical
 * encryption context. Binary layout of the body:
 *
 *   u32 BE wrapped-key length | wrapped key | 16-byte salt | chunk* (each ≤ 64 KiB + 16-byte tag)
 *
 * The chunk key is HKDF-SHA256(data key, salt, "prov-kms/v1 payload"), so one wrapped data key
 * can serve many messages of one invocation (record streams) without nonce reuse. Chunk nonce:
 * 11-byte big-endian counter + 1 byte "last chunk" flag, which detects reordering and truncation.
 */
import { createHmac, randomBytes } from 'node:crypto'
import { usageError } from '@prov/core'
import type { WrappedKey } from '../backends/key-wrapper'
import { openAead, sealAead, streamNonce, TAG_SIZE } from './aead'
import { authenticationError } from './auth-failure'
import { ByteReader, type ByteSource } from './io'

export const CHUNK_SIZE = 64 * 1024
const SALT_SIZE = 16
const MAX_WRAPPED = 64 * 1024

const PAYLOAD_INFO = Buffer.from('prov-kms/v1 payload\x01')

/** HKDF-SHA256(dataKey, salt, "prov-kms/v1 payload") for one 32-byte block (RFC 5869), with plain HMACs: cheaper per message than hkdfSync. */
export function chunkKey(dataKey: Buffer, salt: Buffer): Buffer {
  const prk = createHmac('sha256', salt).update(dataKey).digest()
  return createHmac('sha256', prk).update(PAYLOAD_INFO).digest()
}

const sealChunk = (key: Buffer, counter: number, last: boolean, aad: Buffer, plain: Buffer) =>
  sealAead('aes-256-gcm', key, streamNonce(counter, last), plain, aad)
const openChunk = (key: Buffer, counter: number, last: boolean, aad: Buffer, sealed: Buffer) =>
  openAead('aes-256-gcm', key, streamNonce(counter, last), sealed, aad)

/** Seals a byte source; yields the body (header first, then chunks as they are ready). */
export async function* sealEnvelope(source: ByteSource, wrapped: WrappedKey, aad: Buffer): ByteSource {
  const header = Buffer.alloc(4)
  header.writeUInt32BE(wrapped.wrapped.length)
  const salt = randomBytes(SALT_SIZE)
  yield Buffer.concat([header, wrapped.wrapped, salt])
  const key = chunkKey(wrapped.key, salt)
  const reader = new ByteReader(source)
  for (let counter = 0; ; counter++) {
    const plain = await reader.read(CHUNK_SIZE)
    // A full chunk is the last one only when no byte follows it.
    const last = plain.length < CHUNK_SIZE || (await reader.fill(1)) === 0
    const [sealed, tag] = sealChunk(key, counter, last, aad, plain)
    yield sealed
    yield tag
    if (last) return
  }
}

/** Seals a small buffer at once (record fields). */
export function sealBuffer(plain: Buffer, wrapped: WrappedKey, aad: Buffer): Buffer {
  const parts: Buffer[] = []
  const header = Buffer.alloc(4)
  header.writeUInt32BE(wrapped.wrapped.length)
  const salt = randomBytes(SALT_SIZE)
  parts.push(header, wrapped.wrapped, salt)
  const key = chunkKey(wrapped.key, salt)
  let counter = 0
  for (let offset = 0; ; offset += CHUNK_SIZE) {
    const piece = plain.subarray(offset, offset + CHUNK_SIZE)
    const last = offset + CHUNK_SIZE >= plain.length
    parts.push(...sealChunk(key, counter++, last, aad, piece))
    if (last) break
  }
  return Buffer.concat(parts)
}

/** Reads the wrapped data key at the start of a body. */
export async function readWrappedKey(reader: ByteReader): Promise<Buffer> {
  const header = await reader.read(4)
  if (header.length < 4) throw usageError('ciphertext is truncated (no key header)')
  const length = header.readUInt32BE()
  if (length === 0 || length > MAX_WRAPPED) throw usageError('ciphertext is corrupted (bad key header)')
  const wrapped = await reader.read(length)
  if (wrapped.length < length) throw usageError('ciphertext is truncated (inside the wrapped key)')
  return wrapped
}

/** Opens the chunks that follow the wrapped key; wrong context/key -> exit 4, truncation -> exit 2. */
export async function* openEnvelope(reader: ByteReader, dataKey: Buffer, aad: Buffer): ByteSource {
  const salt = await reader.read(SALT_SIZE)
  if (salt.length < SALT_SIZE) throw usageError('ciphertext is truncated (no salt)')
  const key = chunkKey(dataKey, salt)
  const sealedSize = CHUNK_SIZE + TAG_SIZE
  let counter = 0
  for (;;) {
    const available = await reader.fill(sealedSize + 1)
    if (available > sealedSize) {
      const sealed = await reader.read(sealedSize)
      const plain = openChunk(key, counter, false, aad, sealed)
      if (!plain) throw authFailure(counter)
      counter++
      yield plain
      continue
    }
    const sealed = await reader.read(sealedSize)
    if (sealed.length < TAG_SIZE) throw usageError('ciphertext is truncated')
    const plain = openChunk(key, counter, true, aad, sealed)
    if (plain) {
      if (plain.length === 0 && counter > 0) throw usageError('ciphertext is corrupted (empty final chunk)')
      yield plain
      return
    }
    // Sealed as a middle chunk: the rest of the ciphertext was cut off.
    if (openChunk(key, counter, false, aad, sealed)) throw usageError('ciphertext is truncated')
    throw authFailure(counter)
  }
}

function authFailure(counter: number) {
  return counter === 0
    ? authenticationError('decryption failed: wrong encryption context, or the ciphertext was altered', {
        hint: 'pass the same --context used to encrypt',
      })
    : authenticationError(`decryption failed at chunk ${counter}: the ciphertext was altered`)
}
