import { defineProvCommand, usageError } from '@prov/core'
import { cryptArgs, listFlag } from '../lib/args'
import { parseContext } from '../lib/context'
import { Crypt } from '../lib/crypt'
import { transformRecordStream } from '../lib/fields'
import { bufferSource, stdinSource, writeAllOut } from '../lib/io'
import { kmsContext } from '../lib/settings'

export default defineProvCommand({
  meta: { name: 'decrypt', description: 'Decrypt a prov, Vault or age ciphertext (backend chosen by its prefix); --field decrypts one field of each record' },
  args: {
    data: { type: 'positional', description: "Ciphertext ('-' or nothing: stdin)", required: false },
    context: cryptArgs.context,
    field: { type: 'string', description: 'Decrypt this field (dotted path, repeatable) in each record on stdin' },
  },
  async run({ args, common }) {
    const ctx = await kmsContext(common)
    const crypt = new Crypt({ ctx, context: parseContext(listFlag(args.context, 'context')) })
    const fields = listFlag(args.field, 'field')
    if (fields.length) {
      if (args.data !== undefined && args.data !== '-') throw usageError('--field reads records from stdin; do not pass DATA', { location: 'DATA' })
      await transformRecordStream(stdinSource('records'), fields, async (value, path) => {
        if (typeof value !== 'string' || !/^(prov:|vault:v\d+:|-----BEGIN AGE)/.test(value)) return value
        const plain = await crypt.decryptValue(value).catch((error: Error & { location?: string }) => {
          Object.assign(error, { location: error.location ?? `field ${path}` })
          throw error
        })
        const text = plain.toString('utf8')
        // Objects and arrays were encrypted as their JSON text: restore them.
        if (/^[[{]/.test(text)) {
          try {
            return JSON.parse(text)
          } catch {
            return text
          }
        }
        return text
      })
      return
    }
    const source = args.data === undefined || args.data === '-' ? stdinSource('ciphertext') : bufferSource(Buffer.from(String(args.data), 'utf8'))
    await writeAllOut(crypt.decrypt(source))
  },
})
