import { defineProvCommand, usageError, WORKFLOW_STATUSES } from '@prov/core'
import { openExistingStore, positiveInt, storeArg } from '../context'

export default defineProvCommand({
  meta: {
    name: 'list',
    description: 'Workflows, newest first, with the counts of their steps by status',
    examples: ['prov-orch list', 'prov-orch list --status failed --limit 10'],
    mutating: false,
  },
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
    const store = await openExistingStore(common, args.store)
    const out = writer()
    try {
      // No store yet: no workflows (and none is created by looking).
      const items = store ? (await store.list({ status: args.status as string | undefined, limit, offset })).items : []
      for (const item of items) out.write(item)
      out.end()
    } finally {
      await store?.close()
    }
  },
})
