import { defineProvCommand, writeStdout } from '@prov/core'
import { followEvents, idArg, printEventLine, requireId, storeArg, withWorkflowStore, workflowExitCode } from '../context'
import { eventLines } from '../render'

export default defineProvCommand({
  meta: {
    name: 'watch',
    description: 'Stream a workflow’s prov.orch.event/v1 events as NDJSON (on a terminal: lines with durations) until it finishes; exit code of the workflow',
    examples: ['prov-orch watch wf-20261130-abc123', 'prov-orch watch wf-20261130-abc123 | jq -r .type'],
    mutating: false,
  },
  args: { id: idArg, store: storeArg },
  async run({ args, positionals, common, log }) {
    const id = requireId(positionals, 'watch')
    return withWorkflowStore(common, args.store, id, async (store) => {
      await store.get(id)
      // A person on a terminal (--out table) reads lines with durations; anything else gets NDJSON.
      const line = eventLines()
      const print = common.out === 'table' ? (event: Parameters<typeof printEventLine>[0]) => writeStdout(line(event)) : printEventLine
      return workflowExitCode(await followEvents(store, id, print, { onUnserved: (m) => log.warn(m) }))
    })
  },
})
