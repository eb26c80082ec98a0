import { defineProvCommand, type SshTarget, usageError } from '@prov/core'
import { notRunResult, type TaskItem, type TaskResult } from '../engine'
import { parseTimeout, planFor, prepare, resultWriter, settingArgs, targetArgs } from '../lib/common'
import { executeLevels, exitCodeOf, sshPoolFor } from '../lib/run'

export default defineProvCommand({
  meta: {
    name: 'update',
    description: 'Update a taskserv to a version (update.sh, else install.sh); a failed health check rolls back to the previous version',
    examples: ['prov-taskserv update postgres --version 16.4 --infra demo', 'prov-taskserv update postgres --infra demo --check'],
    mutating: true,
    uses: ['infra', 'parallel'],
  },
  orchestrated: 'taskserv.update',
  args: {
    names: { type: 'positional', description: 'Taskserv(s)', required: false },
    rolling: { type: 'boolean', description: 'Update a batch of servers at a time; stop at the first failed batch' },
    batch: { type: 'string', description: 'Servers per batch with --rolling (default 1)', valueHint: 'N' },
    ...targetArgs,
    ...settingArgs,
  },
  async run(ctx) {
    const batchSize = ctx.args.batch === undefined ? 1 : Number(ctx.args.batch)
    if (!Number.isInteger(batchSize) || batchSize < 1)
      throw usageError(`--batch must be a whole number of at least 1, got '${String(ctx.args.batch)}'`, { location: '--batch' })
    if (ctx.args.batch !== undefined && !ctx.args.rolling) throw usageError('--batch needs --rolling', { location: '--batch' })
    const prepared = await prepare(ctx)
    const { plan, levels, placed } = await planFor(ctx, prepared, 'update', { expand: false })
    if (ctx.common.check) {
      ctx.emit(plan)
      return 0
    }
    const out = resultWriter(ctx)
    const timeoutSec = parseTimeout(ctx.args.timeout)
    const common = {
      ctx,
      config: prepared.config,
      workspace: prepared.workspace,
      dependencyScope: placed ? ('global' as const) : ('host' as const),
      write: out.write,
      label: 'update',
      timeoutSec,
    }
    let results: TaskResult[] = []
    if (!ctx.args.rolling) {
      results = await executeLevels({ ...common, levels })
    } else {
      const hosts = [...new Set(levels.flat().map((i) => i.host.name))].sort()
      const pool = sshPoolFor(prepared.config)
      try {
        for (let start = 0; start < hosts.length; start += batchSize) {
          const batch = new Set(hosts.slice(start, start + batchSize))
          const batchLevels: TaskItem<SshTarget>[][] = levels.map((level) => level.filter((i) => batch.has(i.host.name))).filter((l) => l.length)
          ctx.log.info(`rolling update: batch ${start / batchSize + 1} of ${Math.ceil(hosts.length / batchSize)} (${[...batch].join(', ')})`)
          const batchResults = await executeLevels({ ...common, levels: batchLevels, pool })
          results.push(...batchResults)
          if (batchResults.some((r) => r.status === 'failed')) {
            const rest = levels.flat().filter((i) => hosts.indexOf(i.host.name) >= start + batchSize)
            for (const item of rest) {
              const skipped = notRunResult(item, 'batch_failed', 'not run: an earlier batch of the rolling update failed')
              out.write(skipped)
              results.push(skipped)
            }
            ctx.log.warn('rolling update stopped: a batch failed (it was rolled back where the health check failed)')
            break
          }
        }
      } finally {
        await pool.closeAll()
      }
    }
    out.end()
    return exitCodeOf(results)
  },
})
