import { defineProvCommand } from '@prov/core'
import { openStore, requireId, storeArg } from '../context'

export default defineProvCommand({
  meta: { name: 'logs', description: 'stderr (and engine notes) of a workflow’s steps' },
  args: { store: storeArg, step: { type: 'string', description: 'Only this step' } },
  async run({ args, positionals, common, writer }) {
    const id = requireId(positionals, 'logs')
    const store = await openStore(common, args.store)
    try {
      const out = writer()
      for (const line of await store.logs(id, args.step)) out.write(line)
      out.end()
    } finally {
      await store.close()
    }
  },
})
