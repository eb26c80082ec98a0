import { randomBytes } from 'node:crypto'
import { defineProvCommand, usageError } from '@prov/core'
import { backendFlag, cryptArgs, listFlag } from '../lib/args'
import { parseContext } from '../lib/context'
import { Crypt, PREFIX } from '../lib/crypt'
import { kmsContext } from '../lib/settings'

export default defineProvCommand({
  meta: {
    name: 'datakey',
    description: 'A fresh data key for envelope encryption: plaintext (base64) and its wrapped form (decrypt it with prov-kms decrypt)',
  },
  args: {
    ...cryptArgs,
    recipient: { type: 'string', alias: 'r', description: 'age recipients (age backend)' },
    bits: { type: 'string', description: 'Key size: 128, 256 (default) or 512' },
    'wrapped-only': { type: 'boolean', description: 'Leave the plaintext key out of the output' },
  },
  async run({ args, common, emit }) {
    const ctx = await kmsContext(common)
    const backend = backendFlag(args.backend, ctx.settings.backend)
    const bits = Number(args.bits ?? 256)
    if (![128, 256, 512].includes(bits)) throw usageError(`bad --bits '${String(args.bits)}'`, { location: '--bits', hint: 'use 128, 256 or 512' })
    if (backend === 'awskms' && bits === 512) throw usageError('AWS KMS data keys are 128 or 256 bits', { location: '--bits' })
    const context = parseContext(listFlag(args.context, 'context'))
    const crypt = new Crypt({ ctx, context, recipients: listFlag(args.recipient, 'recipient', 'r') })
    let plaintext: Buffer
    let ciphertext: string
    if (backend === 'vault') {
      ;({ plaintext, ciphertext } = await crypt.vault().datakey(crypt.aad, bits))
    } else if (backend === 'awskms') {
      const wrapped = await crypt.aws().generateDataKey(context)
      plaintext = bits === 128 ? wrapped.key.subarray(0, 16) : wrapped.key
      ciphertext = PREFIX.awsBlob + wrapped.wrapped.toString('base64')
      if (bits === 128) ciphertext = await crypt.encryptValue(plaintext, 'awskms')
    } else {
      plaintext = randomBytes(bits / 8)
      ciphertext = await crypt.encryptValue(plaintext, 'age')
    }
    emit({
      schema: 'prov.kms.datakey/v1',
      backend,
      bits,
      ...(args['wrapped-only'] ? {} : { plaintext: plaintext.toString('base64') }),
      ciphertext,
      context,
    })
  },
})
