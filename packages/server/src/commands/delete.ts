import { defineProvCommand, type ServerRecord, usageError } from '@prov/core'
import { confirmOrRefuse } from '../confirm'
import { deleteJob, type Job, outcomeCode, parallelOf, preflight, runJobs, serverEnv, targetServers } from '../engine'
import { adHocPlan } from '../plan'
import { emitPlan, painter, renderTargets } from '../render'

export default defineProvCommand({
  meta: { name: 'delete', description: 'Delete servers (names, all, or piped prov.server/v1 records); local sandboxes are removed completely' },
  args: {
    names: { type: 'positional', required: false, description: 'Server names or all (default: piped prov.server/v1 records)', valueHint: 'NAME...' },
    all: { type: 'boolean', description: 'Delete every server of the workspace (with --infra: of that infra); same as the name all' },
    'keep-storage': { type: 'boolean', description: 'Keep the disk (local: the overlay upper dir)' },
  },
  async run(ctx) {
    const env = await serverEnv(ctx.common)
    const targets: ServerRecord[] = await targetServers(ctx, env, { allFlag: Boolean(ctx.args.all) })
    const plan = adHocPlan(
      env,
      targets.map((s) => ({ action: 'delete' as const, server: s.name, provider: s.provider, reason: 'requested' })),
      'delete',
    )
    if (ctx.common.check) {
      emitPlan(ctx, plan)
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
    const preview = renderTargets('delete', targets, painter(process.stderr))
    const ok = await confirmOrRefuse(
      `delete ${targets.length === 1 ? 'this server' : `these ${targets.length} servers`}?`,
      ctx.common.yes,
      'delete servers',
      preview,
    )
    if (!ok) throw usageError('delete cancelled')
    const keepStorage = Boolean(ctx.args['keep-storage'])
    const jobs: Job[] = targets.map((record) => ({ title: `delete ${record.name}`, run: () => deleteJob(env, record, keepStorage) }))
    const writer = ctx.writer()
    const outcomes = await runJobs(jobs, { parallel: parallelOf(ctx.common), writer, quiet: ctx.common.quiet })
    writer.end()
    return outcomeCode(outcomes)
  },
})
