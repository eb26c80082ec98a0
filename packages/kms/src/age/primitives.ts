/** The primitives of the age v1 format, on node:crypto: HKDF-SHA256, ChaCha20-Poly1305, canonical base64. */
import { hkdfSync } from 'node:crypto'
import { openAead, sealAead } from '../lib/aead'

export { TAG_SIZE } from '../lib/aead'

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
  return Buffer.concat(sealAead('chacha20-poly1305', key, nonce, plain))
}

/** The plaintext, or undefined when the tag does not authenticate. */
export const chachaOpen = (key: Buffer, nonce: Buffer, sealed: Buffer): Buffer | undefined => openAead('chacha20-poly1305', key, nonce, sealed)
