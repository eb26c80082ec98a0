import { defineProvCommand, usageError } from '@prov/core'
import { confirmOrRefuse } from '../confirm'
import { type Job, outcomeCode, parallelOf, powerJob, preflight, runJobs, serverEnv, targetServers } from '../engine'
import { adHocPlan } from '../plan'
import { emitPlan, painter, renderTargets } from '../render'

function powerCommand(action: 'start' | 'stop' | 'restart') {
  return defineProvCommand({
    meta: { name: action, description: `${action[0].toUpperCase()}${action.slice(1)} servers (names, all, or piped prov.server/v1 records)` },
    args: { names: { type: 'positional', required: false, description: 'Server names or all (default: piped prov.server/v1 records)', valueHint: 'NAME...' } },
    async run(ctx) {
      const env = await serverEnv(ctx.common)
      const targets = await targetServers(ctx, env)
      if (ctx.common.check) {
        emitPlan(
          ctx,
          adHocPlan(
            env,
            targets.map((s) => ({ action: 'update' as const, server: s.name, provider: s.provider, reason: action })),
            action,
          ),
        )
        return
      }
      if (!targets.length) {
        ctx.log.info(`no servers to ${action}`)
        ctx.emit([])
        return
      }
      await preflight(
        env,
        targets.map((t) => t.provider),
      )
      const preview = renderTargets(action, targets, painter(process.stderr))
      const ok = await confirmOrRefuse(
        `${action} ${targets.length === 1 ? 'this server' : `these ${targets.length} servers`}?`,
        ctx.common.yes,
        `${action} servers`,
        preview,
      )
      if (!ok) throw usageError(`${action} cancelled`)
      const jobs: Job[] = targets.map((record) => ({ title: `${action} ${record.name}`, run: () => powerJob(env, record, action) }))
      const writer = ctx.writer()
      const outcomes = await runJobs(jobs, { parallel: parallelOf(ctx.common), writer, quiet: ctx.common.quiet })
      writer.end()
      return outcomeCode(outcomes)
    },
  })
}

export const start = powerCommand('start')
export const stop = powerCommand('stop')
export const restart = powerCommand('restart')
