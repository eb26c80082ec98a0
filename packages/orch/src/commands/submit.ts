import { defineProvCommand } from '@prov/core'
import { compiledRecord, followEvents, openStore, readWorkflowArg, storeArg, warnIfUnserved, workflowExitCode, workflowFileArg } from '../context'

export default defineProvCommand({
  meta: {
    name: 'submit',
    description:
      'Queue a workflow (FILE or - for stdin) for the running orchestrator or workers; prints its id (--wait: then its final status, exit code of the workflow)',
    examples: ['prov-orch submit deploy.yaml', 'prov-orch submit deploy.yaml --wait', 'prov-orch submit deploy.yaml --check'],
    mutating: true,
    uses: ['wait'],
  },
  args: { file: workflowFileArg, store: storeArg },
  async run({ args, positionals, common, emit, log }) {
    const workflow = await readWorkflowArg(positionals, 'submit')
    if (common.check) {
      log.info(`--check: workflow '${workflow.name}' (${workflow.steps.length} steps) would be queued; nothing was submitted`)
      return emit(compiledRecord(workflow))
    }
    const store = await openStore(common, args.store)
    try {
      const id = await store.submit(workflow, `cli:${process.env.USER ?? 'unknown'}`)
      log.success(`submitted ${id} (${workflow.steps.length} steps)`)
      if (!common.wait) {
        await warnIfUnserved(store, id)
        emit({ schema: 'prov.orch.submission/v1', workflow_id: id, name: workflow.name, status: 'queued', steps: workflow.steps.length })
        return
      }
      const status = await followEvents(store, id, (event) => log.info(`${event.type}${event.step ? ` ${event.step}` : ''}`), {
        onUnserved: (m) => log.warn(m),
      })
      emit({ ...(await store.get(id)), steps: await store.steps(id) })
      return workflowExitCode(status)
    } finally {
      await store.close()
    }
  },
})
