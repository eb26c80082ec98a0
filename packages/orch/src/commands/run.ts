import { defineProvCommand, failedError, isUnattended, writeStdout } from '@prov/core'
import { compiledRecord, engineSettings, followEvents, openStore, positiveInt, readWorkflowArg, storeArg, workflowFileArg } from '../context'
import { eventLines, renderWorkflow } from '../render'

export default defineProvCommand({
  meta: {
    name: 'run',
    description:
      'Run a workflow in this process (no server): events on stderr (or stdout with --out ndjson), the final status as JSON; exit code of the workflow',
    examples: ['prov-orch run deploy.yaml', 'prov-orch run deploy.yaml --check', 'prov-orch run deploy.yaml --out ndjson | jq .type'],
    mutating: true,
    uses: ['parallel'],
  },
  args: {
    file: workflowFileArg,
    store: storeArg,
    concurrency: { type: 'string', description: 'Steps at once in this engine (global limit, default 32)', valueHint: 'N' },
  },
  async run({ args, positionals, common, log, emit }) {
    const workflow = await readWorkflowArg(positionals, 'run')
    const concurrency = positiveInt(args.concurrency, '--concurrency', common.parallel ?? 32)
    if (common.check) {
      log.info(`--check: workflow '${workflow.name}' (${workflow.steps.length} steps) would run; nothing was started`)
      return emit(compiledRecord(workflow))
    }
    const store = await openStore(common, args.store)
    const { Engine } = await import('../engine')
    try {
      // Take the engine lock before submitting: a refused run leaves nothing behind.
      const options: import('../engine').EngineOptions = { ...(await engineSettings(common)), concurrency, onWarn: (m) => log.warn(m) }
      const engine = new Engine(store, options)
      await store.acquireEngineLock(engine.owner)
      const id = await store.submit(workflow, `cli:${process.env.USER ?? 'unknown'}`)
      options.until = { workflow: id }
      const running = engine.run()
      const stop = () => engine.stop()
      process.once('SIGINT', stop)
      process.once('SIGTERM', stop)
      const ndjson = common.out === 'ndjson'
      const human = common.out === 'table'
      const line = eventLines()
      const following = followEvents(store, id, (event) => {
        if (ndjson) writeStdout(`${JSON.stringify(event)}\n`)
        // On a terminal the events are the progress a person follows: lines with durations (mode ci: nobody follows, logs stay JSON).
        else if (human && !isUnattended()) process.stderr.write(line(event))
        else log.info(`${event.type}${event.step ? ` ${event.step}` : ''}${event.data?.error ? `: ${String(event.data.error)}` : ''}`)
      })
      await running
      const status = await following
      const final = await store.get(id)
      const steps = await store.steps(id)
      const record = { ...final, steps }
      if (human) writeStdout(renderWorkflow(final, steps))
      else if (!ndjson) emit(record)
      if (status !== 'succeeded') {
        const failed = record.steps.find((s) => s.status === 'failed')
        throw failedError(`workflow ${id} ${status}${record.error ? `: ${record.error}` : ''}`, {
          location: failed ? `step ${failed.id}` : undefined,
          hint: `prov-orch logs ${id}${failed ? ` --step ${failed.id}` : ''}`,
          details: { workflow_id: id, status },
        })
      }
    } finally {
      await store.close()
    }
  },
})
