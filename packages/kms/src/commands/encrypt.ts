import { defineProvCommand, usageError } from '@prov/core'
import { backendFlag, cryptArgs, listFlag } from '../lib/args'
import { boundContext, parseContext } from '../lib/context'
import { Crypt } from '../lib/crypt'
import { assertRecordMode, skipForEncrypt, transformRecordStream } from '../lib/fields'
import { bufferSource, stdinSource, writeAllOut } from '../lib/io'
import { outputFileArg, previewOutputFile, writeAllToFile } from '../lib/output-file'
import { kmsContext } from '../lib/settings'

export default defineProvCommand({
  meta: {
    name: 'encrypt',
    description: 'Encrypt DATA or stdin (binary-safe, streamed); --field encrypts one field of each JSON/NDJSON record',
    examples: ['echo s3cret | prov-kms encrypt --context env=prod', 'prov-kms encrypt --format age -r age1... < backup.tar > backup.tar.age'],
    mutating: false,
  },
  args: {
    data: { type: 'positional', description: "Plain text to encrypt ('-' or nothing: stdin)", required: false },
    recipient: { type: 'string', alias: 'r', description: 'age recipient age1... (repeatable; default: kms.recipients, else the own key)' },
    ...cryptArgs,
    binary: { type: 'boolean', description: 'Raw binary output instead of armored text' },
    format: { type: 'string', description: 'prov (default: prov:<backend>:v1 envelope with context) or age (a plain age file the age CLI reads)' },
    'output-file': outputFileArg,
    field: { type: 'string', description: 'Encrypt this field (dotted path, repeatable) in each record on stdin' },
  },
  async run({ args, common, emit }) {
    const ctx = await kmsContext(common)
    const backend = backendFlag(args.backend, ctx.settings.backend)
    const format = (args.format as string | undefined) ?? 'prov'
    if (format !== 'prov' && format !== 'age') throw usageError(`unknown format '${format}'`, { location: '--format', hint: 'use prov or age' })
    // A file format is a backend's own (age files are written by the age backend).
    if (format !== 'prov' && format !== backend) throw usageError(`--format ${format} needs the ${format} backend`, { location: '--format' })
    const context = parseContext(listFlag(args.context, 'context'))
    const crypt = new Crypt({ ctx, context, recipients: listFlag(args.recipient, 'recipient', 'r') })
    const fields = listFlag(args.field, 'field')
    if (fields.length) {
      assertRecordMode(args)
      if (format === 'age' || args.binary) throw usageError('--field writes armored prov ciphertexts; drop --format/--binary', { location: '--field' })
      // Each value is bound to its field path and record identity (see docs/prov-kms.md).
      await transformRecordStream(stdinSource('records'), fields, async (value, place) => {
        if (skipForEncrypt(value)) return value
        const text = typeof value === 'string' ? value : JSON.stringify(value)
        return crypt.encryptValue(Buffer.from(text, 'utf8'), backend, boundContext(context, place))
      })
      return
    }
    if (previewOutputFile(common, emit, args['output-file'])) return
    const source = args.data === undefined || args.data === '-' ? stdinSource('plain text') : bufferSource(Buffer.from(String(args.data), 'utf8'))
    const output = format === 'age' ? crypt.encryptFile(source, backend, Boolean(args.binary)) : crypt.encrypt(source, backend, Boolean(args.binary))
    if (args['output-file']) await writeAllToFile(output, String(args['output-file']))
    else await writeAllOut(output)
  },
})
