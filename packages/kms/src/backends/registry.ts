/**
 * The one registry of KMS backends: how to create each one from the configuration, and which
 * ciphertexts belong to it. Encryption picks a backend by `--backend`/`kms.backend`; decryption
 * by the ciphertext's prefix:
 *
 *   prov:age:v1:<base64>        prov envelope, data key wrapped by age (binary: "prov:age:v1\n" + body)
 *   prov:awskms:env1:<base64>   prov envelope, data key from AWS KMS (binary: "prov:awskms:env1\n" + body)
 *   prov:awskms:v1:<base64>     an AWS KMS CiphertextBlob (Encrypt of up to 4 KiB, or a data key)
 *   vault:vN:...                Vault Transit ciphertext, as Vault writes it
 *   age files                   -----BEGIN AGE ENCRYPTED FILE----- / age-encryption.org/v1
 */
import { usageError } from '@prov/core'
import { base64DecodeStrict } from '../lib/io'
import type { BackendName, KmsContext } from '../lib/settings'
import { AgeWrapper } from './age'
import { AWS_ENCRYPT_LIMIT, AwsKms, awsOptions } from './awskms'
import type { KeyWrapper } from './key-wrapper'
import { VaultTransit, vaultOptions } from './vault'

/** A backend's own text ciphertext, standing alone (no prov envelope). */
export interface DirectFormat {
  matches(text: string): boolean
  encode(wrapped: Buffer): string
  decode(text: string): Buffer
  /** Largest plaintext written this way when the backend also has an envelope (else: any). */
  maxPlain?: number
}

export interface BackendSpec {
  name: BackendName
  create(ctx: KmsContext, recipients: string[]): KeyWrapper
  /** The prov envelope prefixes when the backend wraps an envelope's data key. */
  envelope?: { text: string; binary: string }
  direct?: DirectFormat
  /** Whole files of the backend's own format (read by the backend's FileFormat). */
  fileFormat?: { matches(head: string): boolean }
  /** How its ciphertexts start, for messages. */
  prefixes: string[]
  /** Its keys are the age identity files of the workspace or user (not a remote service). */
  localKeys: boolean
}

const awsBlobPrefix = 'prov:awskms:v1:'

export const backends: Record<BackendName, BackendSpec> = {
  age: {
    name: 'age',
    create: (ctx, recipients) => new AgeWrapper(ctx, recipients),
    envelope: { text: 'prov:age:v1:', binary: 'prov:age:v1\n' },
    fileFormat: { matches: (head) => head.startsWith('-----BEGIN AGE ENCRYPTED FILE-----') || head.startsWith('age-encryption.org/v1\n') },
    prefixes: ['prov:age:v1:', 'age files'],
    localKeys: true,
  },
  awskms: {
    name: 'awskms',
    create: (ctx) => new AwsKms(awsOptions(ctx.settings.aws)),
    envelope: { text: 'prov:awskms:env1:', binary: 'prov:awskms:env1\n' },
    direct: {
      matches: (text) => text.startsWith(awsBlobPrefix),
      encode: (wrapped) => `${awsBlobPrefix}${wrapped.toString('base64')}`,
      decode: (text) => base64DecodeStrict(text.slice(awsBlobPrefix.length)),
      maxPlain: AWS_ENCRYPT_LIMIT,
    },
    prefixes: ['prov:awskms:v1:', 'prov:awskms:env1:'],
    localKeys: false,
  },
  vault: {
    name: 'vault',
    create: (ctx) => new VaultTransit(vaultOptions(ctx.settings.vault)),
    direct: {
      matches: (text) => /^vault:v\d+:/.test(text),
      encode: (wrapped) => wrapped.toString('latin1'),
      decode: (text) => Buffer.from(text, 'latin1'),
    },
    prefixes: ['vault:v1:'],
    localKeys: false,
  },
}

export type CiphertextKind =
  | { kind: 'envelope'; spec: BackendSpec; binary: boolean; prefix: string }
  | { kind: 'direct'; spec: BackendSpec; format: DirectFormat }
  | { kind: 'file'; spec: BackendSpec }

/** Classifies a ciphertext by its first bytes (leading whitespace ignored); anything unknown is exit 2. */
export function classify(head: Buffer): CiphertextKind {
  const text = head.toString('latin1').replace(/^\s+/, '')
  for (const spec of Object.values(backends)) {
    if (spec.envelope && text.startsWith(spec.envelope.text)) return { kind: 'envelope', spec, binary: false, prefix: spec.envelope.text }
    if (spec.envelope && text.startsWith(spec.envelope.binary)) return { kind: 'envelope', spec, binary: true, prefix: spec.envelope.binary }
    if (spec.direct?.matches(text)) return { kind: 'direct', spec, format: spec.direct }
    if (spec.fileFormat?.matches(text)) return { kind: 'file', spec }
  }
  const prefix = /^([a-z0-9-]+:[a-z0-9-]*:?[a-z0-9]*:?)/i.exec(text)?.[1]
  throw usageError(prefix ? `unknown ciphertext prefix '${prefix}'` : 'input is not a prov-kms ciphertext (no known prefix)', {
    hint: `known prefixes: ${Object.values(backends)
      .flatMap((spec) => spec.prefixes)
      .join(', ')}`,
  })
}
