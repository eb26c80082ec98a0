import { defineProvCommand, writeStdout } from '@prov/core'
import { idArg, requireId, storeArg, withWorkflowStore } from '../context'
import { renderWorkflow } from '../render'

export default defineProvCommand({
  meta: {
    name: 'status',
    description: 'A workflow and its steps (on a terminal: one line per step with state and duration)',
    examples: ['prov-orch status wf-20261130-abc123', 'prov-orch status wf-20261130-abc123 --out yaml'],
    mutating: false,
  },
  args: { id: idArg, store: storeArg },
  async run({ args, positionals, common, emit }) {
    const id = requireId(positionals, 'status')
    await withWorkflowStore(common, args.store, id, async (store) => {
      const workflow = await store.get(id)
      const steps = await store.steps(id)
      // On a terminal (--out table): one line per step with its state and duration.
      if (common.out === 'table') writeStdout(renderWorkflow(workflow, steps))
      else emit({ ...workflow, steps })
    })
  },
})
