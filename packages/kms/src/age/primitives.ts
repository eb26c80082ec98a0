/** The primitives of the age v1 format, on node:crypto: HKDF-SHA256, ChaCha20-Poly1305, canonical base64. */
import { createCipheriv, createDecipheriv, hkdfSync } from 'node:crypto'

export const TAG_SIZE = 16

export const hkdf = (ikm: Buffer, salt: Buffer, info: string): Buffer => Buffer.from(hkdfSync('sha256', ikm, salt, info, 32))

/** Unpadded standard base64, as age writes it. */
export const b64 = (data: Buffer): string => data.toString('base64').replace(/=+$/, '')

/** Canonical unpadded base64 (what the spec requires decoders to accept); undefined otherwise. */
export function decodeCanonicalBase64(text: string): Buffer | undefined {
  if (!/^[A-Za-z0-9+/]*$/.test(text) || text.length % 4 === 1) return undefined
  const data = Buffer.from(text, 'base64')
  return b64(data) === text ? data : undefined
}

export function chachaSeal(key: Buffer, nonce: Buffer, plain: Buffer): Buffer {
  const cipher = createCipheriv('chacha20-poly1305', key, nonce, { authTagLength: TAG_SIZE })
  return Buffer.concat([cipher.update(plain), cipher.final(), cipher.getAuthTag()])
}

/** The plaintext, or undefined when the tag does not authenticate. */
export function chachaOpen(key: Buffer, nonce: Buffer, sealed: Buffer): Buffer | undefined {
  if (sealed.length < TAG_SIZE) return undefined
  const decipher = createDecipheriv('chacha20-poly1305', key, nonce, { authTagLength: TAG_SIZE })
  decipher.setAuthTag(sealed.subarray(sealed.length - TAG_SIZE))
  try {
    const plain = decipher.update(sealed.subarray(0, sealed.length - TAG_SIZE))
    decipher.final()
    return plain
  } catch {
    return undefined
  }
}
