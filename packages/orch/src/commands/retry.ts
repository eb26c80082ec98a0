import { defineProvCommand } from '@prov/core'
import { openStore, requireId, storeArg } from '../context'

export default defineProvCommand({
  meta: { name: 'retry', description: 'Queue the failed and cancelled steps of a workflow again (completed steps are kept)' },
  args: { store: storeArg, step: { type: 'string', description: 'Check that this step exists and is among those retried' } },
  async run({ args, positionals, common, emit }) {
    const id = requireId(positionals, 'retry')
    const store = await openStore(common, args.store)
    try {
      emit(await store.retry(id, args.step))
    } finally {
      await store.close()
    }
  },
})
