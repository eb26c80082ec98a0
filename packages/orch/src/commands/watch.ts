import { defineProvCommand } from '@prov/core'
import { followEvents, idArg, printEventLine, requireId, storeArg, withWorkflowStore, workflowExitCode } from '../context'

export default defineProvCommand({
  meta: {
    name: 'watch',
    description: 'Stream a workflow’s prov.orch.event/v1 events as NDJSON until it finishes; exit code of the workflow',
    examples: ['prov-orch watch wf-20261130-abc123', 'prov-orch watch wf-20261130-abc123 | jq -r .type'],
    mutating: false,
  },
  args: { id: idArg, store: storeArg },
  async run({ args, positionals, common, log }) {
    const id = requireId(positionals, 'watch')
    return withWorkflowStore(common, args.store, id, async (store) => {
      await store.get(id)
      return workflowExitCode(await followEvents(store, id, printEventLine, { onUnserved: (m) => log.warn(m) }))
    })
  },
})
