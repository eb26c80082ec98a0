import { defineProvCommand, usageError } from '@prov/core'
import { settingArgs, targetArgs } from '../lib/common'
import { runQuery } from '../lib/query'

export default defineProvCommand({
  meta: {
    name: 'logs',
    description: 'The last lines of a taskserv daemon log on servers (journal with systemd)',
    examples: ['prov-taskserv logs postgres --infra demo'],
    mutating: false,
    uses: ['infra', 'parallel'],
  },
  args: {
    name: { type: 'positional', description: 'Taskserv', required: true },
    server: { type: 'string', description: "One server (same as --servers S; 'all': every one)" },
    ...targetArgs,
    tail: { type: 'string', description: 'Lines (default 50)', valueHint: 'N' },
    set: settingArgs.set,
  },
  run(ctx) {
    const tail = ctx.args.tail === undefined ? 50 : Number(ctx.args.tail)
    if (!Number.isInteger(tail) || tail < 1)
      throw usageError(`--tail must be a whole number of at least 1, got '${String(ctx.args.tail)}'`, { location: '--tail' })
    if (ctx.args.server !== undefined) (ctx.args as Record<string, unknown>).servers = ctx.args.server
    return runQuery(ctx, 'logs', { PROV_TAIL: String(tail) }, tail)
  },
})
