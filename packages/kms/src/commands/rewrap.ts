import { defineProvCommand, usageError } from '@prov/core'
import { hasRewrap } from '../backends/key-wrapper'
import { classify } from '../backends/registry'
import { cryptArgs, listFlag } from '../lib/args'
import { parseContext } from '../lib/context'
import { Crypt } from '../lib/crypt'
import { bufferSource, readAll, stdinSource, writeOut } from '../lib/io'
import { kmsContext } from '../lib/settings'

export default defineProvCommand({
  meta: {
    name: 'rewrap',
    description: 'Re-encrypt a Vault ciphertext with the latest key version (the plaintext never leaves Vault)',
    examples: ['prov-kms rewrap vault:v1:abc...'],
    mutating: false,
  },
  args: { data: { type: 'positional', description: "vault:vN:... ciphertext ('-' or nothing: stdin)", required: false }, context: cryptArgs.context },
  async run({ args, common }) {
    const ctx = await kmsContext(common)
    const source = args.data === undefined || args.data === '-' ? stdinSource('ciphertext') : bufferSource(Buffer.from(String(args.data)))
    const text = (await readAll(source, 1 << 20)).toString('utf8').trim()
    const refuse = () =>
      usageError('rewrap takes a Vault ciphertext (vault:vN:...)', { hint: 'age and AWS ciphertexts are re-encrypted by keys rotate / a new encrypt' })
    const found = classify(Buffer.from(text))
    if (found.kind !== 'direct') throw refuse()
    const crypt = new Crypt({ ctx, context: parseContext(listFlag(args.context, 'context')) })
    const wrapper = crypt.wrapper(found.spec.name)
    if (!hasRewrap(wrapper)) throw refuse()
    const rewrapped = await wrapper.rewrap(found.format.decode(text), crypt.options.context)
    await writeOut(`${found.format.encode(rewrapped)}\n`)
  },
})
