import { defineProvCommand } from '@prov/core'
import { openStore, readWorkflowArg, storeArg } from '../context'

export default defineProvCommand({
  meta: { name: 'submit', description: 'Queue a workflow (FILE or - for stdin) for the running orchestrator or workers; prints its id' },
  args: { store: storeArg },
  async run({ args, positionals, common, emit, log }) {
    const workflow = await readWorkflowArg(positionals, 'submit')
    const store = await openStore(common, args.store)
    try {
      const id = await store.submit(workflow, `cli:${process.env.USER ?? 'unknown'}`)
      log.success(`submitted ${id} (${workflow.steps.length} steps)`)
      emit({ schema: 'prov.orch.submission/v1', workflow_id: id, name: workflow.name, status: 'queued', steps: workflow.steps.length })
    } finally {
      await store.close()
    }
  },
})
