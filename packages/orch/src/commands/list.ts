import { defineProvCommand, usageError } from '@prov/core'
import { openStore, positiveInt, storeArg } from '../context'

export default defineProvCommand({
  meta: { name: 'list', description: 'Workflows, newest first' },
  args: {
    store: storeArg,
    status: { type: 'string', description: 'Only this status: queued|running|rolling_back|succeeded|failed|cancelled|rolled_back' },
    limit: { type: 'string', description: 'At most N (default 50)', valueHint: 'N' },
    offset: { type: 'string', description: 'Skip N', valueHint: 'N' },
  },
  async run({ args, positionals, common, writer }) {
    if (positionals.length) throw usageError(`unexpected argument '${positionals[0]}'`)
    const { WORKFLOW_STATUS } = await import('../store/store')
    if (args.status && !(WORKFLOW_STATUS as readonly string[]).includes(args.status)) {
      throw usageError(`unknown status '${args.status}'`, { location: '--status', hint: `use ${WORKFLOW_STATUS.join(', ')}` })
    }
    const limit = positiveInt(args.limit, '--limit', 50)
    const offset = args.offset === undefined ? 0 : positiveInt(args.offset, '--offset', 0)
    const store = await openStore(common, args.store)
    try {
      const { items } = await store.list({ status: args.status, limit, offset })
      const out = writer()
      for (const item of items) out.write(item)
      out.end()
    } finally {
      await store.close()
    }
  },
})
