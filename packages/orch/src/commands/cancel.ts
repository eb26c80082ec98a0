import { defineProvCommand } from '@prov/core'
import { openStore, requireId, storeArg } from '../context'

export default defineProvCommand({
  meta: { name: 'cancel', description: 'Cancel a workflow: queued steps never start, running ones are killed (process group)' },
  args: { store: storeArg },
  async run({ args, positionals, common, emit }) {
    const id = requireId(positionals, 'cancel')
    const store = await openStore(common, args.store)
    try {
      emit(await store.cancel(id))
    } finally {
      await store.close()
    }
  },
})
