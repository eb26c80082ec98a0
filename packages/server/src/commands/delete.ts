import { defineProvCommand, type ServerRecord, usageError } from '@prov/core'
import { confirmOrRefuse } from '../confirm'
import { deleteJob, type Job, outcomeCode, parallelOf, preflight, runJobs, serverEnv, targetServers } from '../engine'
import { adHocPlan } from '../plan'

export default defineProvCommand({
  meta: { name: 'delete', description: 'Delete servers (names, --all, or piped prov.server/v1 records); local sandboxes are removed completely' },
  args: {
    names: { type: 'positional', required: false, description: 'Server names (default: piped prov.server/v1 records)', valueHint: 'NAME...' },
    all: { type: 'boolean', description: 'Delete every server of the workspace (with --infra: of that infra)' },
    'keep-storage': { type: 'boolean', description: 'Keep the disk (local: the overlay upper dir)' },
  },
  async run(ctx) {
    const env = await serverEnv(ctx.common)
    let targets: ServerRecord[] = await targetServers(ctx, env, { allFlag: Boolean(ctx.args.all) })
    if (ctx.args.all && ctx.positionals.length) throw usageError('give server names or --all, not both')
    if (ctx.args.all && ctx.common.infra) targets = targets.filter((s) => s.infra === ctx.common.infra)
    const plan = adHocPlan(
      env,
      targets.map((s) => ({ action: 'delete' as const, server: s.name, provider: s.provider, reason: 'requested' })),
      'delete',
    )
    if (ctx.common.check) {
      ctx.emit(plan)
      return
    }
    if (!targets.length) {
      ctx.log.info('no servers to delete')
      ctx.emit([])
      return
    }
    await preflight(
      env,
      targets.map((t) => t.provider),
    )
    const ok = await confirmOrRefuse(`delete ${targets.map((t) => t.name).join(', ')}?`, ctx.common.yes, 'delete servers')
    if (!ok) throw usageError('delete cancelled')
    const keepStorage = Boolean(ctx.args['keep-storage'])
    const jobs: Job[] = targets.map((record) => ({ title: `delete ${record.name}`, run: () => deleteJob(env, record, keepStorage) }))
    const writer = ctx.writer()
    const outcomes = await runJobs(jobs, { parallel: parallelOf(ctx.common), writer, quiet: ctx.common.quiet })
    writer.end()
    return outcomeCode(outcomes)
  },
})
