import { defineProvCommand, usageError } from '@prov/core'
import { cryptArgs, listFlag } from '../lib/args'
import { authenticationError, isAuthenticationError } from '../lib/auth-failure'
import { boundContext, type FieldPlace, parseContext } from '../lib/context'
import { Crypt } from '../lib/crypt'
import { assertRecordMode, checkStructure, isCiphertext, transformRecordStream } from '../lib/fields'
import { bufferSource, stdinSource, writeAllOut } from '../lib/io'
import { outputFileArg, previewOutputFile, writeAllToFile } from '../lib/output-file'
import { identityArg, kmsContext } from '../lib/settings'

const describePlace = (place: FieldPlace) => (place.record === undefined ? `field ${place.path}` : `field ${place.path} of record '${place.record}'`)

export default defineProvCommand({
  meta: {
    name: 'decrypt',
    description: 'Decrypt a prov, Vault or age ciphertext (backend chosen by its prefix); --field decrypts one field of each record',
    examples: ['prov-kms decrypt --context env=prod < secret.enc', 'prov-server list | prov-kms encrypt --field ssh | prov-kms decrypt --field ssh'],
    mutating: false,
  },
  args: {
    data: { type: 'positional', description: "Ciphertext ('-' or nothing: stdin)", required: false },
    context: cryptArgs.context,
    identity: identityArg,
    'output-file': outputFileArg,
    field: { type: 'string', description: 'Decrypt this field (dotted path, repeatable) in each record on stdin' },
    'allow-unbound': {
      type: 'boolean',
      description: 'With --field: also accept values not bound to their field and record (written by prov-kms before field binding); warns',
    },
  },
  async run({ args, common, emit, log }) {
    const ctx = await kmsContext(common, { identity: args.identity })
    const context = parseContext(listFlag(args.context, 'context'))
    const crypt = new Crypt({ ctx, context })
    const fields = listFlag(args.field, 'field')
    if (args['allow-unbound'] && !fields.length) throw usageError('--allow-unbound only applies to --field', { location: '--allow-unbound' })
    if (fields.length) {
      assertRecordMode(args)
      const unbound: string[] = []
      const open = async (value: string, place: FieldPlace): Promise<Buffer> => {
        try {
          return await crypt.decryptValue(value, boundContext(context, place))
        } catch (error) {
          if (!isAuthenticationError(error)) throw error
          if (args['allow-unbound']) {
            const plain = await crypt.decryptValue(value).catch(() => undefined)
            if (plain) {
              unbound.push(describePlace(place))
              return plain
            }
          }
          throw authenticationError(
            `${describePlace(place)} does not decrypt here: wrong --context, or the value was moved from another field or record, or altered`,
            {
              location: `field ${place.path}`,
              hint: 'a --field ciphertext only opens in the field and record it was written for; values from before field binding need --allow-unbound',
            },
          )
        }
      }
      await transformRecordStream(stdinSource('records'), fields, async (value, place) => {
        if (typeof value !== 'string' || !isCiphertext(value) || value.startsWith('ENC[')) return value
        const plain = await open(value, place).catch((error: Error & { location?: string }) => {
          Object.assign(error, { location: error.location ?? `field ${place.path}` })
          throw error
        })
        const text = plain.toString('utf8')
        // Objects and arrays were encrypted as their JSON text: restore them.
        if (/^[[{]/.test(text)) {
          let restored: unknown
          try {
            restored = JSON.parse(text)
          } catch {
            return text
          }
          checkStructure(restored, `field ${place.path}`)
          return restored
        }
        return text
      })
      if (unbound.length) {
        log.warn(
          `${unbound.length} value(s) were not bound to their field and record (${unbound.slice(0, 3).join(', ')}${unbound.length > 3 ? ', ...' : ''}); re-encrypt them with prov-kms encrypt --field`,
        )
      }
      return
    }
    if (previewOutputFile(common, emit, args['output-file'])) return
    const source = args.data === undefined || args.data === '-' ? stdinSource('ciphertext') : bufferSource(Buffer.from(String(args.data), 'utf8'))
    const output = crypt.decrypt(source)
    if (args['output-file']) await writeAllToFile(output, String(args['output-file']))
    else await writeAllOut(output)
  },
})
