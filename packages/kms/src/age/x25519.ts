/**
 * The X25519 recipient type of age, on node:crypto:
 *
 *   stanza  = "-> X25519 " b64(ephemeral share) "\n" b64(wrapped file key)
 *   wrap    = ChaCha20-Poly1305(HKDF(X25519(eph, R), share || R, "age-encryption.org/v1/X25519"), 0^12, file key)
 *
 * `unwrapFileKey` follows the age Identity contract: null when no stanza is for this identity,
 * an exception when an X25519 stanza is malformed (wrong arguments, non-canonical or wrong-size
 * share, a low-order point, a file key that is not 16 bytes).
 */
import { createPrivateKey, createPublicKey, diffieHellman, randomBytes } from 'node:crypto'
import { usageError } from '@prov/core'
import { bech32Decode, bech32Encode } from './bech32'
import { ageFailure, type Stanza } from './format'
import { b64, chachaOpen, chachaSeal, decodeCanonicalBase64, hkdf } from './primitives'

const STANZA_TYPE = 'X25519'
const LABEL = 'age-encryption.org/v1/X25519'
const IDENTITY_HRP = 'age-secret-key-'
const RECIPIENT_HRP = 'age'
const PKCS8_PREFIX = Buffer.from('302e020100300506032b656e04220420', 'hex')
const SPKI_PREFIX = Buffer.from('302a300506032b656e032100', 'hex')
const ZERO_NONCE = Buffer.alloc(12)

const privateKey = (raw: Buffer) => createPrivateKey({ key: Buffer.concat([PKCS8_PREFIX, raw]), format: 'der', type: 'pkcs8' })
const publicKey = (raw: Buffer) => createPublicKey({ key: Buffer.concat([SPKI_PREFIX, raw]), format: 'der', type: 'spki' })
const publicOf = (secret: Buffer): Buffer => createPublicKey(privateKey(secret)).export({ format: 'der', type: 'spki' }).subarray(-32)

/** X25519(secret, peer); undefined for the all-zero result of a low-order point (which OpenSSL refuses outright). */
function sharedSecret(secret: Buffer, peer: Buffer): Buffer | undefined {
  let shared: Buffer
  try {
    shared = diffieHellman({ privateKey: privateKey(secret), publicKey: publicKey(peer) })
  } catch {
    return undefined
  }
  return shared.every((b) => b === 0) ? undefined : shared
}

/** Raw public key of an `age1...` X25519 recipient; undefined for other recipient types. */
export function parseX25519Recipient(recipient: string): Buffer | undefined {
  const decoded = bech32Decode(recipient)
  return decoded?.hrp === RECIPIENT_HRP && decoded.data.length === 32 ? decoded.data : undefined
}

/** Raw secret of an `AGE-SECRET-KEY-1...` identity; undefined for other identity types. */
export function parseX25519Identity(identity: string): Buffer | undefined {
  const decoded = bech32Decode(identity)
  return decoded?.hrp === IDENTITY_HRP && decoded.data.length === 32 ? decoded.data : undefined
}

/** A new `AGE-SECRET-KEY-1...` identity. */
export function generateX25519Identity(): string {
  return bech32Encode(IDENTITY_HRP, randomBytes(32)).toUpperCase()
}

export class X25519Recipient {
  constructor(readonly publicKey: Buffer) {}

  static parse(recipient: string): X25519Recipient | undefined {
    const raw = parseX25519Recipient(recipient)
    return raw ? new X25519Recipient(raw) : undefined
  }

  toString(): string {
    return bech32Encode(RECIPIENT_HRP, this.publicKey)
  }

  wrapFileKey(fileKey: Buffer): Stanza[] {
    const ephemeral = randomBytes(32)
    const share = publicOf(ephemeral)
    const shared = sharedSecret(ephemeral, this.publicKey)
    // Only a low-order recipient key gives the zero secret; age refuses such keys too.
    if (!shared) throw usageError(`age recipient ${this.toString()} is not a valid X25519 key`, { location: '--recipient' })
    const wrapKey = hkdf(shared, Buffer.concat([share, this.publicKey]), LABEL)
    return [{ args: [STANZA_TYPE, b64(share)], body: chachaSeal(wrapKey, ZERO_NONCE, fileKey) }]
  }
}

export class X25519Identity {
  private readonly ownPublicKey: Buffer

  constructor(private readonly secret: Buffer) {
    this.ownPublicKey = publicOf(secret)
  }

  static parse(identity: string): X25519Identity | undefined {
    const raw = parseX25519Identity(identity)
    return raw ? new X25519Identity(raw) : undefined
  }

  get recipient(): X25519Recipient {
    return new X25519Recipient(this.ownPublicKey)
  }

  /** The file key from the first X25519 stanza for this identity; null when none is. */
  unwrapFileKey(stanzas: Stanza[]): Buffer | null {
    for (const stanza of stanzas) {
      if (stanza.args[0] !== STANZA_TYPE) continue
      if (stanza.args.length !== 2) throw ageFailure('header', 'malformed X25519 stanza (wrong number of arguments)')
      const share = decodeCanonicalBase64(stanza.args[1])
      if (share?.length !== 32) throw ageFailure('header', 'malformed X25519 stanza (bad share)')
      if (stanza.body.length !== 32) throw ageFailure('header', 'malformed X25519 stanza (the file key is not 16 bytes)')
      const shared = sharedSecret(this.secret, share)
      if (!shared) throw ageFailure('header', 'X25519 stanza with a low-order share', 'the file was altered')
      const fileKey = chachaOpen(hkdf(shared, Buffer.concat([share, this.ownPublicKey]), LABEL), ZERO_NONCE, stanza.body)
      if (fileKey) return fileKey
    }
    return null
  }
}
