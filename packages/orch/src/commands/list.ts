import { defineProvCommand, usageError, WORKFLOW_STATUSES } from '@prov/core'
import { openStore, positiveInt, storeArg } from '../context'

export default defineProvCommand({
  meta: { name: 'list', description: 'Workflows, newest first, with the counts of their steps by status' },
  args: {
    store: storeArg,
    status: { type: 'enum', options: [...WORKFLOW_STATUSES], description: 'Only workflows in this status' },
    limit: { type: 'string', description: 'At most N (default 50)', valueHint: 'N' },
    offset: { type: 'string', description: 'Skip N', valueHint: 'N' },
  },
  async run({ args, positionals, common, writer }) {
    if (positionals.length) throw usageError(`unexpected argument '${positionals[0]}'`)
    const limit = positiveInt(args.limit, '--limit', 50)
    const offset = args.offset === undefined ? 0 : positiveInt(args.offset, '--offset', 0)
    const store = await openStore(common, args.store)
    try {
      const { items } = await store.list({ status: args.status as string | undefined, limit, offset })
      const out = writer()
      for (const item of items) out.write(item)
      out.end()
    } finally {
      await store.close()
    }
  },
})
