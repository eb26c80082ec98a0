import { defineProvCommand } from '@prov/core'
import { idArg, requireId, storeArg, withWorkflowStore } from '../context'

export default defineProvCommand({
  meta: {
    name: 'status',
    description: 'A workflow and its steps',
    examples: ['prov-orch status wf-20261130-abc123', 'prov-orch status wf-20261130-abc123 --out yaml'],
    mutating: false,
  },
  args: { id: idArg, store: storeArg },
  async run({ args, positionals, common, emit }) {
    const id = requireId(positionals, 'status')
    await withWorkflowStore(common, args.store, id, async (store) => emit({ ...(await store.get(id)), steps: await store.steps(id) }))
  },
})
