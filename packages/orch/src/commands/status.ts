import { defineProvCommand } from '@prov/core'
import { openStore, requireId, storeArg } from '../context'

export default defineProvCommand({
  meta: { name: 'status', description: 'A workflow and its steps' },
  args: { store: storeArg },
  async run({ args, positionals, common, emit }) {
    const id = requireId(positionals, 'status')
    const store = await openStore(common, args.store)
    try {
      emit({ ...(await store.get(id)), steps: await store.steps(id) })
    } finally {
      await store.close()
    }
  },
})
