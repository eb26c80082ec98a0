/**
 * The age backend: data keys wrapped as small age files for the workspace's recipients and
 * opened with its identities, in process (src/age). Whole age files (`--format age`, files from
 * the `age` CLI) are its file format.
 */
import { type AgeIdentity, deniedError, isProvError, ProvError, readAllIdentities, readIdentityFile, usageError } from '@prov/core'
import { ageKeys, openAgeBuffer, openAnyAgeFile, recipientOfIdentity, sealAgeBuffer, sealAgeFile } from '../age/file'
import type { ByteSource } from '../lib/io'
import { describeIdentity } from '../lib/keyfile'
import { assertAgeAllowed, type KmsContext } from '../lib/settings'
import type { FileFormat, KeyWrapper, StatusProbe } from './key-wrapper'

const recipientPattern = /^age1[0-9a-z]{20,}$/

export function checkRecipients(recipients: string[]): string[] {
  for (const r of recipients) {
    if (!recipientPattern.test(r)) throw usageError(`'${r}' is not an age recipient`, { location: '--recipient', hint: 'recipients look like age1...' })
  }
  return recipients
}

/** Recipients: --recipient flags, else kms.recipients from config, else the own identity's. */
export async function resolveRecipients(ctx: KmsContext, flags: string[]): Promise<string[]> {
  assertAgeAllowed(ctx)
  if (flags.length) return checkRecipients(flags)
  if (ctx.settings.recipients.length) return checkRecipients(ctx.settings.recipients)
  const [identity] = readIdentityFile(ctx.identityPath)
  return [await recipientOfIdentity(identity.secret)]
}

/** All identities that may decrypt: the current one and the retired ones. */
export function decryptionIdentities(ctx: KmsContext): AgeIdentity[] {
  assertAgeAllowed(ctx)
  return ctx.identityOnly ? readIdentityFile(ctx.identityPath) : readAllIdentities(ctx.workspace?.path, ctx.identityPath)
}

/** A whole age file (a stored secret, a SOPS data key) opened with identities; errors name `source`. */
export async function openAgeData(data: Uint8Array, identities: AgeIdentity[], source: string): Promise<Buffer> {
  try {
    return await openAgeBuffer(data, ageKeys(identities.map((identity) => identity.secret)))
  } catch (error) {
    if (!isProvError(error)) throw error
    if (error.details?.reason === 'no-match') {
      throw deniedError(`no identity can decrypt ${source}`, { location: source, hint: 'it was encrypted for another key; see prov-kms keys list' })
    }
    throw new ProvError(error.code, `cannot decrypt ${source}: ${error.message}`, { location: source, hint: error.hint, details: error.details })
  }
}

/** An armored age file of `plain` for `recipients` (stored secrets, SOPS data keys). */
export async function sealAgeText(plain: Uint8Array, recipients: string[]): Promise<string> {
  return (await sealAgeBuffer(plain, checkRecipients(recipients), true)).toString('latin1')
}

export class AgeWrapper implements KeyWrapper, FileFormat, StatusProbe {
  private keys?: ReturnType<typeof ageKeys>

  constructor(
    private readonly ctx: KmsContext,
    private readonly recipientFlags: string[] = [],
  ) {}

  private identities() {
    this.keys ??= ageKeys(decryptionIdentities(this.ctx).map((identity) => identity.secret))
    return this.keys
  }

  /** A binary age file of the data key for the recipients (age binds no context: the envelope's AAD does). */
  async wrap(plain: Buffer): Promise<Buffer> {
    return sealAgeBuffer(plain, await resolveRecipients(this.ctx, this.recipientFlags), false)
  }

  async unwrap(wrapped: Buffer): Promise<Buffer> {
    try {
      return await openAgeBuffer(wrapped, this.identities(), 64 * 1024)
    } catch (error) {
      if (!isProvError(error)) throw error
      if (error.details?.reason === 'no-match') {
        throw deniedError('no identity can decrypt this ciphertext (wrong key)', {
          hint: `it was encrypted for another recipient; identity: ${this.ctx.identityPath}`,
        })
      }
      throw deniedError(`cannot unwrap the data key: ${error.message}`, { hint: 'the ciphertext was altered' })
    }
  }

  async *sealFile(source: ByteSource, armored: boolean): ByteSource {
    yield* sealAgeFile(source, await resolveRecipients(this.ctx, this.recipientFlags), armored)
  }

  openFile(source: ByteSource): Promise<ByteSource> {
    return openAnyAgeFile(source, this.identities())
  }

  async probe(): Promise<Record<string, unknown>> {
    const identity = await describeIdentity(this.ctx.identityPath, 'active')
    return { reachable: true, in_process: true, identity: identity.healthy ? 'ok' : (identity.problem ?? 'unhealthy') }
  }
}
