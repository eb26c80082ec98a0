import { defineProvCommand, usageError } from '@prov/core'
import { engineSettings, openStore, positiveInt, storeArg } from '../context'
import { parseDuration } from '../units'

export default defineProvCommand({
  meta: {
    name: 'worker',
    description: 'Run workflow steps from a store (PostgreSQL: several workers share the work; SQLite: one engine per file)',
    examples: ['prov-orch worker --until-idle', 'prov-orch worker --store postgres://prov@db:5432/prov --concurrency 8'],
    mutating: true,
  },
  args: {
    store: storeArg,
    concurrency: { type: 'string', description: 'Steps at once in this worker (default 32)', valueHint: 'N' },
    lease: { type: 'string', description: 'Lease of a claimed step without heartbeat (default 30s)', valueHint: 'DURATION' },
    'until-idle': { type: 'boolean', description: 'Exit when no workflow is unfinished' },
  },
  async run({ args, positionals, common, log }) {
    if (positionals.length) throw usageError(`unexpected argument '${positionals[0]}'`)
    if (common.check) throw usageError('worker does not support --check (it runs steps)', { hint: 'prov-orch run FILE --check previews a workflow' })
    const concurrency = positiveInt(args.concurrency, '--concurrency', common.parallel ?? 32)
    let leaseMs = 30_000
    try {
      if (args.lease) leaseMs = parseDuration(args.lease)
    } catch (error) {
      throw usageError((error as Error).message, { location: '--lease' })
    }
    const store = await openStore(common, args.store)
    const { Engine } = await import('../engine')
    const engine = new Engine(store, {
      ...(await engineSettings(common)),
      concurrency,
      leaseMs,
      until: args['until-idle'] ? 'idle' : undefined,
      onWarn: (m) => log.warn(m),
    })
    process.once('SIGINT', () => engine.stop())
    process.once('SIGTERM', () => engine.stop())
    log.info(`worker ${engine.owner} on ${store.location}`)
    try {
      await engine.run()
    } finally {
      await store.close()
    }
  },
})
