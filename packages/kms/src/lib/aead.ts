/**
 * The AEAD building blocks shared by the prov envelope (AES-256-GCM) and the age payload
 * (ChaCha20-Poly1305): both seal 64 KiB chunks under a STREAM nonce, an 11-byte big-endian chunk
 * counter followed by a last-chunk flag, so reordered, dropped or truncated chunks fail.
 */
import { createCipheriv, createDecipheriv } from 'node:crypto'

export const TAG_SIZE = 16
export type AeadAlgorithm = 'aes-256-gcm' | 'chacha20-poly1305'

export function streamNonce(counter: number, last: boolean): Buffer {
  const nonce = Buffer.alloc(12)
  nonce.writeUIntBE(counter, 5, 6)
  nonce[11] = last ? 1 : 0
  return nonce
}

/** One sealed piece as [ciphertext, tag]: two pieces, no copy into one buffer. */
export function sealAead(algorithm: AeadAlgorithm, key: Buffer, nonce: Buffer, plain: Buffer, aad?: Buffer): [Buffer, Buffer] {
  // Both algorithms take the same options; the GCM overload types them.
  const cipher = createCipheriv(algorithm as 'aes-256-gcm', key, nonce, { authTagLength: TAG_SIZE })
  if (aad) cipher.setAAD(aad)
  const sealed = cipher.update(plain)
  cipher.final()
  return [sealed, cipher.getAuthTag()]
}

/** The plaintext of ciphertext||tag, or undefined when it does not authenticate. */
export function openAead(algorithm: AeadAlgorithm, key: Buffer, nonce: Buffer, sealed: Buffer, aad?: Buffer): Buffer | undefined {
  if (sealed.length < TAG_SIZE) return undefined
  const decipher = createDecipheriv(algorithm as 'aes-256-gcm', key, nonce, { authTagLength: TAG_SIZE })
  if (aad) decipher.setAAD(aad)
  decipher.setAuthTag(sealed.subarray(sealed.length - TAG_SIZE))
  try {
    const plain = decipher.update(sealed.subarray(0, sealed.length - TAG_SIZE))
    decipher.final()
    return plain
  } catch {
    return undefined
  }
}
