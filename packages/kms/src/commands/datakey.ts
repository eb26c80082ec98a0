import { randomBytes } from 'node:crypto'
import { defineProvCommand, usageError } from '@prov/core'
import { hasDataKeys } from '../backends/key-wrapper'
import { backends } from '../backends/registry'
import { backendFlag, cryptArgs, listFlag } from '../lib/args'
import { parseContext } from '../lib/context'
import { Crypt } from '../lib/crypt'
import { kmsContext } from '../lib/settings'

const allowedBits = [128, 256, 512]

export default defineProvCommand({
  meta: {
    name: 'datakey',
    description: 'A fresh data key for envelope encryption: plaintext (base64) and its wrapped form (decrypt it with prov-kms decrypt)',
    examples: ['prov-kms datakey', 'prov-kms datakey --context env=prod'],
    mutating: false,
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
    if (!allowedBits.includes(bits)) throw usageError(`bad --bits '${String(args.bits)}'`, { location: '--bits', hint: 'use 128, 256 or 512' })
    const context = parseContext(listFlag(args.context, 'context'))
    const crypt = new Crypt({ ctx, context, recipients: listFlag(args.recipient, 'recipient', 'r') })
    const wrapper = crypt.wrapper(backend)
    const direct = backends[backend].direct
    let plaintext: Buffer
    let ciphertext: string
    if (hasDataKeys(wrapper) && direct) {
      // The service makes the key and wraps it: its own ciphertext stands alone.
      if (!wrapper.dataKeyBits.includes(bits)) {
        throw usageError(`${backend} data keys are ${wrapper.dataKeyBits.join(' or ')} bits`, { location: '--bits' })
      }
      const generated = await wrapper.generateDataKey(context, bits)
      plaintext = generated.key
      ciphertext = direct.encode(generated.wrapped)
    } else {
      plaintext = randomBytes(bits / 8)
      ciphertext = await crypt.encryptValue(plaintext, backend)
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
