/** The age backend: data keys wrapped by age (X25519) in process, with age-encryption. */
import { randomBytes } from 'node:crypto'
import { type AgeIdentity, deniedError, readAllIdentities, readIdentityFile, usageError } from '@prov/core'
import type { WrappedKey } from '../lib/envelope'
import type { KmsContext } from '../lib/settings'
import { decryptSmallAgeFile, encryptSmallAgeFile, parseX25519Identity, parseX25519Recipient, x25519IdentityToRecipient } from './age-x25519'

export type AgeModule = typeof import('age-encryption')
let ageModule: Promise<AgeModule> | undefined
export const loadAge = (): Promise<AgeModule> => {
  ageModule ??= import('age-encryption')
  return ageModule
}

const recipientPattern = /^age1[0-9a-z]{20,}$/

export function checkRecipients(recipients: string[]): string[] {
  for (const r of recipients) {
    if (!recipientPattern.test(r)) throw usageError(`'${r}' is not an age recipient`, { location: '--recipient', hint: 'recipients look like age1...' })
  }
  return recipients
}

/** Recipients: --recipient flags, else kms.recipients from config, else the own identity's. */
export async function resolveRecipients(ctx: KmsContext, flags: string[]): Promise<string[]> {
  if (flags.length) return checkRecipients(flags)
  if (ctx.settings.recipients.length) return checkRecipients(ctx.settings.recipients)
  const [identity] = readIdentityFile(ctx.identityPath)
  const native = x25519IdentityToRecipient(identity.secret)
  if (native) return [native]
  const age = await loadAge()
  return [await age.identityToRecipient(identity.secret)]
}

/** All identities that may decrypt: the current one, the retired ones, and $PROV_KMS_EXTRA_IDENTITY. */
export function decryptionIdentities(ctx: KmsContext): AgeIdentity[] {
  const identities = readAllIdentities(ctx.workspace?.path, ctx.identityPath)
  return identities
}

export class AgeKeyWrapper {
  private readonly unwrapped = new Map<string, Buffer>()
  private wrappedForSession?: Promise<WrappedKey>
  private identities?: AgeIdentity[]

  constructor(
    private readonly ctx: KmsContext,
    private readonly recipientFlags: string[] = [],
  ) {}

  /** One data key per invocation (record streams reuse it; each message gets its own salt). */
  sessionKey(): Promise<WrappedKey> {
    this.wrappedForSession ??= (async () => {
      const recipients = await resolveRecipients(this.ctx, this.recipientFlags)
      const key = randomBytes(32)
      // X25519 recipients (the usual case) are wrapped on node:crypto; others by age-encryption.
      const raw = recipients.map(parseX25519Recipient)
      if (raw.every((r): r is Buffer => r !== undefined)) return { key, wrapped: encryptSmallAgeFile(key, raw) }
      const age = await loadAge()
      const encrypter = new age.Encrypter()
      for (const r of recipients) encrypter.addRecipient(r)
      const wrapped = Buffer.from(await encrypter.encrypt(key))
      return { key, wrapped }
    })()
    return this.wrappedForSession
  }

  async unwrap(wrapped: Buffer): Promise<Buffer> {
    const cacheKey = wrapped.toString('base64')
    const known = this.unwrapped.get(cacheKey)
    if (known) return known
    this.identities ??= decryptionIdentities(this.ctx)
    const x25519 = this.identities.map((i) => parseX25519Identity(i.secret)).filter((k): k is Buffer => k !== undefined)
    let native: Buffer | undefined
    try {
      native = decryptSmallAgeFile(wrapped, x25519)
    } catch (error) {
      throw deniedError(`cannot unwrap the data key: ${(error as Error).message}`, { hint: 'the ciphertext was altered' })
    }
    if (native) {
      if (native.length !== 32) throw deniedError('the wrapped data key has the wrong size (corrupted ciphertext)')
      this.unwrapped.set(cacheKey, native)
      return native
    }
    const age = await loadAge()
    const decrypter = new age.Decrypter()
    for (const identity of this.identities) decrypter.addIdentity(identity.secret)
    let key: Buffer
    try {
      key = Buffer.from(await decrypter.decrypt(wrapped))
    } catch (error) {
      const message = (error as Error).message
      if (/no identity matched/i.test(message)) {
        throw deniedError('no identity can decrypt this ciphertext (wrong key)', {
          hint: `it was encrypted for another recipient; identity: ${this.ctx.identityPath}`,
        })
      }
      throw deniedError(`cannot unwrap the data key: ${message}`)
    }
    if (key.length !== 32) throw deniedError('the wrapped data key has the wrong size (corrupted ciphertext)')
    this.unwrapped.set(cacheKey, key)
    return key
  }
}
