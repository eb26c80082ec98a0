/**
 * The age payload: a 16-byte nonce, then STREAM chunks of ChaCha20-Poly1305 under
 * HKDF(file key, nonce, "payload"), 64 KiB of plaintext each; chunk nonce = 11-byte big-endian
 * counter || last-chunk flag. The final chunk may be short, and is empty only when the whole
 * payload is.
 *
 * Opening releases a chunk only once it has authenticated and, for a middle chunk, once the next
 * chunk has started: a file cut between chunks never passes for a complete one.
 */
import { randomBytes } from 'node:crypto'
import { sealAead, streamNonce } from '../lib/aead'
import { ByteReader, type ByteSource } from '../lib/io'
import { ageFailure } from './format'
import { chachaOpen, hkdf, TAG_SIZE } from './primitives'

export const CHUNK_SIZE = 64 * 1024
export const NONCE_SIZE = 16
const SEALED_CHUNK = CHUNK_SIZE + TAG_SIZE

export const chunkNonce = streamNonce

export const payloadKey = (fileKey: Buffer, nonce: Buffer): Buffer => hkdf(fileKey, nonce, 'payload')

/** The nonce, then the sealed chunks (ciphertext and tag as separate pieces: no copy into one buffer). */
export async function* sealPayload(source: ByteSource, fileKey: Buffer): ByteSource {
  const nonce = randomBytes(NONCE_SIZE)
  yield nonce
  const key = payloadKey(fileKey, nonce)
  const reader = new ByteReader(source)
  for (let counter = 0; ; counter++) {
    const plain = await reader.read(CHUNK_SIZE)
    // A full chunk is the last one only when nothing follows it.
    const last = plain.length < CHUNK_SIZE || (await reader.fill(1)) === 0
    yield* sealAead('chacha20-poly1305', key, chunkNonce(counter, last), plain)
    if (last) return
  }
}

function chunkFailure(counter: number) {
  return ageFailure('payload', `age decryption failed at chunk ${counter}: authentication failed`, 'the file was altered or truncated')
}

/** Reads the nonce (a missing or short one is a header failure) and yields the authenticated plaintext. */
export async function* openPayload(reader: ByteReader, fileKey: Buffer): ByteSource {
  const nonce = await reader.read(NONCE_SIZE)
  if (nonce.length < NONCE_SIZE) throw ageFailure('header', 'the payload nonce is missing or short')
  const key = payloadKey(fileKey, nonce)
  for (let counter = 0; ; counter++) {
    // More than one sealed chunk left: this one is a middle chunk.
    if ((await reader.fill(SEALED_CHUNK + 1)) > SEALED_CHUNK) {
      const sealed = await reader.read(SEALED_CHUNK)
      const plain = chachaOpen(key, chunkNonce(counter, false), sealed)
      if (plain) {
        yield plain
        continue
      }
      // Nothing may follow the final chunk; its plaintext is not released either.
      if (chachaOpen(key, chunkNonce(counter, true), sealed)) throw ageFailure('malformed-payload', 'not a valid age file: data after the final chunk')
      throw chunkFailure(counter)
    }
    const sealed = await reader.read(SEALED_CHUNK)
    if (sealed.length < TAG_SIZE) {
      throw ageFailure(
        'truncated',
        counter ? 'age file is truncated (final chunk missing)' : 'age file is truncated (no payload chunk)',
        'the file was cut short',
      )
    }
    const plain = chachaOpen(key, chunkNonce(counter, true), sealed)
    if (plain) {
      if (plain.length === 0 && counter > 0) throw ageFailure('malformed-payload', 'not a valid age file: empty final chunk')
      yield plain
      return
    }
    // A middle chunk at the end: the final chunk was cut off (a short one was also cut inside).
    if (chachaOpen(key, chunkNonce(counter, false), sealed)) {
      throw ageFailure('truncated', 'age file is truncated (final chunk missing)', 'the file was cut short')
    }
    throw chunkFailure(counter)
  }
}
