import { defineProvCommand } from '@prov/core'
import { idArg, requireId, storeArg, withWorkflowStore } from '../context'

export default defineProvCommand({
  meta: {
    name: 'logs',
    description: 'stderr (and engine notes) of a workflow’s steps',
    examples: ['prov-orch logs wf-20261130-abc123', 'prov-orch logs wf-20261130-abc123 --step deploy'],
    mutating: false,
  },
  args: { id: idArg, store: storeArg, step: { type: 'string', description: 'Only this step' } },
  async run({ args, positionals, common, writer }) {
    const id = requireId(positionals, 'logs')
    await withWorkflowStore(common, args.store, id, async (store) => {
      const out = writer()
      for (const line of await store.logs(id, args.step)) out.write(line)
      out.end()
    })
  },
})
