import { confirmOrCancel, defineProvCommand, failedError, usageError } from '@prov/core'
import { idArg, requireId, storeArg, withWorkflowStore } from '../context'

export default defineProvCommand({
  meta: {
    name: 'cancel',
    description: 'Cancel a workflow: queued steps never start, running ones are killed (process group)',
    examples: ['prov-orch cancel wf-20261130-abc123 --yes', 'prov-orch cancel wf-20261130-abc123 --check'],
    mutating: true,
    destructive: true,
    confirms: true,
  },
  args: { id: idArg, store: storeArg },
  async run({ args, positionals, common, emit }) {
    const id = requireId(positionals, 'cancel')
    await withWorkflowStore(common, args.store, id, async (store) => {
      if (common.check) return emit(await store.preview('cancel', id))
      await confirmOrCancel({ yes: common.yes, what: `cancel workflow ${id}`, question: `cancel workflow ${id} (its running steps are killed)?` })
      emit(await store.cancel(id))
    })
  },
})
