import { defineProvCommand } from '@prov/core'
import { openStore, requireId, storeArg } from '../context'

export default defineProvCommand({
  meta: { name: 'rollback', description: 'Run the compensations of a finished workflow’s completed steps, in reverse dependency order' },
  args: { store: storeArg },
  async run({ args, positionals, common, emit }) {
    const id = requireId(positionals, 'rollback')
    const store = await openStore(common, args.store)
    try {
      emit(await store.rollback(id))
    } finally {
      await store.close()
    }
  },
})
