import { readFileSync, statSync } from 'node:fs'
import { defineProvCommand, isProvError, notFoundError, readStdinBuffer, usageError } from '@prov/core'
import { MAX_DOCUMENT_BYTES } from '../dayzero/provision'

export default defineProvCommand({
  meta: {
    name: 'butane',
    description: 'Translate a Butane config (fcos 1.0-1.5, flatcar 1.0-1.1) to Ignition JSON, like the butane tool',
    examples: ['prov-server butane infra/demo/web.bu --files-dir infra/demo --pretty', 'prov-server butane --strict < web.bu > web.ign'],
    mutating: false,
  },
  args: {
    file: { type: 'positional', required: false, description: 'Butane file (default: stdin)' },
    'files-dir': { type: 'string', alias: ['d'], description: 'Directory that local: paths are relative to' },
    strict: { type: 'boolean', description: 'Fail on any warning' },
    pretty: { type: 'boolean', description: 'Indent the JSON output (butane -p; here -p is --parallel)' },
  },
  async run(ctx) {
    if (ctx.positionals.length > 1) throw usageError('butane takes one file', { hint: 'prov-server butane web.bu' })
    const file = ctx.positionals[0]
    let text: string
    if (file && file !== '-') {
      let size: number
      try {
        const info = statSync(file)
        if (!info.isFile()) throw usageError(`${file} is not a regular file`, { location: file, hint: 'prov-server butane FILE.bu, or pipe it on stdin' })
        size = info.size
      } catch (error) {
        if (isProvError(error)) throw error
        throw notFoundError(`no such file: ${file}`, { location: file })
      }
      if (size > MAX_DOCUMENT_BYTES) throw usageError(`${file} is larger than ${MAX_DOCUMENT_BYTES} bytes`, { location: file })
      text = readFileSync(file, 'utf8')
    } else {
      const input = await readStdinBuffer(process.stdin, MAX_DOCUMENT_BYTES)
      if (!input) throw usageError('no Butane config given', { hint: 'prov-server butane FILE.bu, or pipe it on stdin' })
      text = input.toString('utf8')
    }
    const filesDir = ctx.args['files-dir'] as string | undefined
    if (filesDir) {
      let dir = false
      try {
        dir = statSync(filesDir).isDirectory()
      } catch {}
      if (!dir) throw notFoundError(`--files-dir ${filesDir} is not a directory`, { location: filesDir })
    }
    const { translateButane } = await import('../dayzero/butane')
    const result = translateButane(text, { filesDir, strict: Boolean(ctx.args.strict), source: file && file !== '-' ? file : 'stdin' })
    for (const warning of result.warnings) ctx.log.warn(warning)
    const { writeDayZeroDocument } = await import('../dayzero/document')
    writeDayZeroDocument(`${JSON.stringify(result.config)}\n`, 'ignition', ctx.args.out as string | undefined, Boolean(ctx.args.pretty))
  },
})
