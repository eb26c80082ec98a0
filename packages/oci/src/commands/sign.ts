import { defineProvCommand } from '@prov/core'
import { ociContext, referenceName, transportArgs } from '../context'
import { planPull } from '../pull'
import { formatReference } from '../ref'
import { readKey, signingKey, signManifest, trustedKeys, verifyManifest } from '../sign'

export const signCommand = defineProvCommand({
  meta: {
    name: 'sign',
    description: 'Sign an artifact (ed25519 or ECDSA P-256); the signature is an OCI 1.1 referrer',
    examples: ['prov-oci sign 127.0.0.1:5000/prov/taskservs/redis:7.0.0 --key signing.pem'],
    mutating: true,
  },
  args: {
    ref: { type: 'positional', description: 'Reference', required: true },
    key: { type: 'string', description: 'Private key (PEM)', required: true },
    ...transportArgs,
  },
  async run({ args, common, emit, log }) {
    const oci = await ociContext(common, args)
    const ref = oci.parse(args.ref)
    if (common.check) {
      // The key is checked as for real; the subject's digest only when known without a connection.
      const { algorithm, fingerprint } = signingKey(args.key)
      const { digest } = await planPull(oci, ref)
      emit({ schema: 'prov.oci.signature/v1', reference: formatReference(ref), subject: digest, key: fingerprint, algorithm, planned: true })
      return
    }
    const result = await signManifest(oci.target(ref), referenceName(ref), args.key, formatReference(ref))
    log.success(`signed ${result.reference} (${result.subject.slice(0, 19)}) with key ${result.key.slice(0, 19)}`)
    emit(result)
  },
})

export const verifyCommand = defineProvCommand({
  meta: {
    name: 'verify',
    description: 'Verify that an artifact carries a valid signature by a trusted key (exit 4 if not)',
    examples: ['prov-oci verify 127.0.0.1:5000/prov/taskservs/redis:7.0.0'],
    mutating: false,
  },
  args: {
    ref: { type: 'positional', description: 'Reference', required: true },
    key: { type: 'string', description: 'Public key (PEM); default oci.trusted_keys' },
    ...transportArgs,
  },
  async run({ args, common, emit }) {
    const oci = await ociContext(common, args)
    const ref = oci.parse(args.ref)
    const target = oci.target(ref)
    const keys = args.key ? [readKey(args.key, 'public')] : trustedKeys(oci.settings.trustedKeys)
    const subject = await target.resolve(referenceName(ref))
    emit(await verifyManifest(target, subject, keys, formatReference(ref)))
  },
})
