import { defineProvCommand } from '@prov/core'
import { followEvents, openStore, printEventLine, requireId, storeArg, workflowExitCode } from '../context'

export default defineProvCommand({
  meta: { name: 'watch', description: 'Stream a workflow’s prov.orch.event/v1 events as NDJSON until it finishes; exit code of the workflow' },
  args: { store: storeArg },
  async run({ args, positionals, common }) {
    const id = requireId(positionals, 'watch')
    const store = await openStore(common, args.store)
    try {
      await store.get(id)
      const status = await followEvents(store, id, printEventLine)
      return workflowExitCode(status)
    } finally {
      await store.close()
    }
  },
})
