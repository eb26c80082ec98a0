/**
 * The X25519 recipient type of the age v1 format (age-encryption.org/v1), on node:crypto, for
 * the one hot path of prov-kms: wrapping and unwrapping the 32-byte data key of a prov envelope.
 * It writes and reads ordinary age files (the `age` CLI and age-encryption open them), and it
 * spares record streams and small encrypt/decrypt calls the import of the full age-encryption
 * package. Anything else (other recipient types, plain age files, armor) goes to age-encryption.
 *
 *   header  = "age-encryption.org/v1\n-> X25519 <b64 share>\n<b64 wrapped file key>\n--- <b64 HMAC>\n"
 *   wrap    = ChaCha20-Poly1305(HKDF(X25519(eph, R), share||R, "age-encryption.org/v1/X25519"), 0^12, file key)
 *   mac     = HMAC-SHA256(HKDF(file key, "", "header"), header up to "---")
 *   payload = 16-byte nonce, then STREAM chunks sealed with HKDF(file key, nonce, "payload")
 */
import {
  createCipheriv,
  createDecipheriv,
  createHmac,
  createPrivateKey,
  createPublicKey,
  diffieHellman,
  hkdfSync,
  randomBytes,
  timingSafeEqual,
} from 'node:crypto'

const CHARSET = 'qpzry9x8gf2tvdw0s3jn54khce6mua7l'
const GENERATORS = [0x3b6a57b2, 0x26508e6d, 0x1ea119fa, 0x3d4233dd, 0x2a1462b3]

function polymod(values: number[]): number {
  let chk = 1
  for (const v of values) {
    const top = chk >>> 25
    chk = ((chk & 0x1ffffff) << 5) ^ v
    for (let i = 0; i < 5; i++) if ((top >>> i) & 1) chk ^= GENERATORS[i]
  }
  return chk
}

const expandHrp = (hrp: string) => [...[...hrp].map((c) => c.charCodeAt(0) >>> 5), 0, ...[...hrp].map((c) => c.charCodeAt(0) & 31)]

function convertBits(data: number[], from: number, to: number, pad: boolean): number[] | undefined {
  let acc = 0
  let bits = 0
  const out: number[] = []
  const max = (1 << to) - 1
  for (const value of data) {
    acc = (acc << from) | value
    bits += from
    while (bits >= to) {
      bits -= to
      out.push((acc >>> bits) & max)
    }
  }
  if (pad) {
    if (bits > 0) out.push((acc << (to - bits)) & max)
  } else if (bits >= from || (acc << (to - bits)) & max) return undefined
  return out
}

/** Bech32 (BIP 173, no length limit, as age uses it); undefined when the checksum is wrong. */
export function bech32Decode(text: string): { hrp: string; data: Buffer } | undefined {
  const lower = text.toLowerCase()
  if (text !== lower && text !== text.toUpperCase()) return undefined
  const sep = lower.lastIndexOf('1')
  if (sep < 1 || sep + 7 > lower.length) return undefined
  const hrp = lower.slice(0, sep)
  const values: number[] = []
  for (const c of lower.slice(sep + 1)) {
    const v = CHARSET.indexOf(c)
    if (v < 0) return undefined
    values.push(v)
  }
  if (polymod([...expandHrp(hrp), ...values]) !== 1) return undefined
  const bytes = convertBits(values.slice(0, -6), 5, 8, false)
  return bytes ? { hrp, data: Buffer.from(bytes) } : undefined
}

export function bech32Encode(hrp: string, data: Buffer): string {
  const values = convertBits([...data], 8, 5, true) as number[]
  const mod = polymod([...expandHrp(hrp), ...values, 0, 0, 0, 0, 0, 0]) ^ 1
  const checksum = Array.from({ length: 6 }, (_, i) => (mod >>> (5 * (5 - i))) & 31)
  return `${hrp}1${[...values, ...checksum].map((v) => CHARSET[v]).join('')}`
}

const PKCS8_PREFIX = Buffer.from('302e020100300506032b656e04220420', 'hex')
const SPKI_PREFIX = Buffer.from('302a300506032b656e032100', 'hex')

const privateKey = (raw: Buffer) => createPrivateKey({ key: Buffer.concat([PKCS8_PREFIX, raw]), format: 'der', type: 'pkcs8' })
const publicKey = (raw: Buffer) => createPublicKey({ key: Buffer.concat([SPKI_PREFIX, raw]), format: 'der', type: 'spki' })
export const publicOf = (secret: Buffer) => createPublicKey(privateKey(secret)).export({ format: 'der', type: 'spki' }).subarray(-32)

export function x25519(secret: Buffer, peer: Buffer): Buffer {
  const shared = diffieHellman({ privateKey: privateKey(secret), publicKey: publicKey(peer) })
  if (shared.every((b) => b === 0)) throw new Error('X25519: low-order point')
  return shared
}

export const hkdf = (ikm: Buffer, salt: Buffer, info: string) => Buffer.from(hkdfSync('sha256', ikm, salt, info, 32))
export const b64 = (data: Buffer) => data.toString('base64').replace(/=+$/, '')

export function chachaSeal(key: Buffer, nonce: Buffer, plain: Buffer): Buffer {
  const cipher = createCipheriv('chacha20-poly1305', key, nonce, { authTagLength: 16 })
  return Buffer.concat([cipher.update(plain), cipher.final(), cipher.getAuthTag()])
}

export function chachaOpen(key: Buffer, nonce: Buffer, sealed: Buffer): Buffer | undefined {
  if (sealed.length < 16) return undefined
  const decipher = createDecipheriv('chacha20-poly1305', key, nonce, { authTagLength: 16 })
  decipher.setAuthTag(sealed.subarray(sealed.length - 16))
  try {
    const plain = decipher.update(sealed.subarray(0, sealed.length - 16))
    decipher.final()
    return plain
  } catch {
    return undefined
  }
}

/** Raw public key of an `age1...` X25519 recipient; undefined for other recipient types. */
export function parseX25519Recipient(recipient: string): Buffer | undefined {
  const decoded = bech32Decode(recipient)
  return decoded && decoded.hrp === 'age' && decoded.data.length === 32 ? decoded.data : undefined
}

/** Raw secret of an `AGE-SECRET-KEY-1...` identity; undefined for other identity types. */
export function parseX25519Identity(identity: string): Buffer | undefined {
  const decoded = bech32Decode(identity)
  return decoded && decoded.hrp === 'age-secret-key-' && decoded.data.length === 32 ? decoded.data : undefined
}

/** The `age1...` recipient of an X25519 identity. */
export function x25519IdentityToRecipient(identity: string): string | undefined {
  const secret = parseX25519Identity(identity)
  return secret ? bech32Encode('age', publicOf(secret)) : undefined
}

/** A binary age file of `plain` (small: one STREAM chunk) for X25519 recipients. */
export function encryptSmallAgeFile(plain: Buffer, recipients: Buffer[]): Buffer {
  if (plain.length > 64 * 1024) throw new Error('encryptSmallAgeFile: one chunk at most')
  const fileKey = randomBytes(16)
  let header = 'age-encryption.org/v1\n'
  for (const recipient of recipients) {
    const ephemeral = randomBytes(32)
    const share = publicOf(ephemeral)
    const wrapKey = hkdf(x25519(ephemeral, recipient), Buffer.concat([share, recipient]), 'age-encryption.org/v1/X25519')
    header += `-> X25519 ${b64(share)}\n${b64(chachaSeal(wrapKey, Buffer.alloc(12), fileKey))}\n`
  }
  header += '---'
  const mac = createHmac('sha256', hkdf(fileKey, Buffer.alloc(0), 'header'))
    .update(header)
    .digest()
  const nonce = randomBytes(16)
  const chunkNonce = Buffer.alloc(12)
  chunkNonce[11] = 1
  const payload = chachaSeal(hkdf(fileKey, nonce, 'payload'), chunkNonce, plain)
  return Buffer.concat([Buffer.from(`${header} ${b64(mac)}\n`), nonce, payload])
}

/**
 * Opens a small binary age file with X25519 identities. Undefined when no X25519 stanza matches
 * (the caller falls back to age-encryption, which also reports the error); throws when a stanza
 * matched but the file is damaged.
 */
export function decryptSmallAgeFile(file: Buffer, identities: Buffer[]): Buffer | undefined {
  const end = file.indexOf('\n---')
  if (end < 0 || !file.subarray(0, 22).equals(Buffer.from('age-encryption.org/v1\n'))) return undefined
  const lineEnd = file.indexOf('\n', end + 1)
  if (lineEnd < 0) return undefined
  const headerText = file.subarray(0, end + 4).toString('latin1')
  const macText = file.subarray(end + 5, lineEnd).toString('latin1')
  const lines = headerText.split('\n')
  const ours = identities.map((secret) => ({ secret, pub: publicOf(secret) }))
  let fileKey: Buffer | undefined
  for (let i = 1; i < lines.length - 1 && !fileKey; i++) {
    const args = lines[i].split(' ')
    if (args[0] !== '->') continue
    // Body lines follow until one shorter than 64 columns.
    let body = ''
    let j = i + 1
    for (; j < lines.length - 1; j++) {
      body += lines[j]
      if (lines[j].length < 64) break
    }
    if (args[1] !== 'X25519' || args.length !== 3) continue
    const share = Buffer.from(args[2], 'base64')
    const sealed = Buffer.from(body, 'base64')
    if (share.length !== 32 || sealed.length !== 32) continue
    for (const identity of ours) {
      let shared: Buffer
      try {
        shared = x25519(identity.secret, share)
      } catch {
        continue
      }
      const key = chachaOpen(hkdf(shared, Buffer.concat([share, identity.pub]), 'age-encryption.org/v1/X25519'), Buffer.alloc(12), sealed)
      if (key) {
        fileKey = key
        break
      }
    }
  }
  if (!fileKey) return undefined
  const mac = createHmac('sha256', hkdf(fileKey, Buffer.alloc(0), 'header'))
    .update(headerText)
    .digest()
  const stored = Buffer.from(macText, 'base64')
  if (stored.length !== 32 || !timingSafeEqual(mac, stored)) throw new Error('age header MAC mismatch')
  const rest = file.subarray(lineEnd + 1)
  if (rest.length < 16 + 16 || rest.length > 16 + 64 * 1024 + 16) throw new Error('age payload has the wrong size')
  const chunkNonce = Buffer.alloc(12)
  chunkNonce[11] = 1
  const plain = chachaOpen(hkdf(fileKey, rest.subarray(0, 16), 'payload'), chunkNonce, rest.subarray(16))
  if (!plain) throw new Error('age payload authentication failed')
  return plain
}
