import { defineProvCommand } from '@prov/core'
import { idArg, requireId, storeArg, warnIfUnserved, withWorkflowStore } from '../context'

export default defineProvCommand({
  meta: {
    name: 'retry',
    description: 'Queue the failed and cancelled steps of a workflow again (completed steps are kept)',
    examples: ['prov-orch retry wf-20261130-abc123', 'prov-orch retry wf-20261130-abc123 --step deploy --check'],
    mutating: true,
  },
  args: { id: idArg, store: storeArg, step: { type: 'string', description: 'Check that this step exists and is among those retried' } },
  async run({ args, positionals, common, emit }) {
    const id = requireId(positionals, 'retry')
    await withWorkflowStore(common, args.store, id, async (store) => {
      if (common.check) return emit(await store.preview('retry', id, args.step))
      emit(await store.retry(id, args.step))
      await warnIfUnserved(store, id)
    })
  },
})
