import { confirmOrCancel, defineProvCommand, failedError, usageError } from '@prov/core'
import { idArg, requireId, storeArg, warnIfUnserved, withWorkflowStore } from '../context'

export default defineProvCommand({
  meta: {
    name: 'rollback',
    description: 'Run the compensations of a finished workflow’s completed steps, in reverse dependency order',
    examples: ['prov-orch rollback wf-20261130-abc123 --yes', 'prov-orch rollback wf-20261130-abc123 --check'],
    mutating: true,
    destructive: true,
    confirms: true,
  },
  args: { id: idArg, store: storeArg },
  async run({ args, positionals, common, emit }) {
    const id = requireId(positionals, 'rollback')
    await withWorkflowStore(common, args.store, id, async (store) => {
      if (common.check) return emit(await store.preview('rollback', id))
      await confirmOrCancel({ yes: common.yes, what: `roll back workflow ${id}`, question: `roll back workflow ${id} (its compensations run)?` })
      emit(await store.rollback(id))
      await warnIfUnserved(store, id)
    })
  },
})
