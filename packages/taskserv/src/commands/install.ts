import { defineProvCommand } from '@prov/core'
import { parseTimeout, planFor, prepare, settingArgs, targetArgs } from '../lib/common'
import { executeAndReport } from '../lib/run'

export default defineProvCommand({
  meta: {
    name: 'install',
    description: 'Install taskservs (and their requirements) on servers, in dependency order, in parallel',
    examples: ['prov-server list | prov-taskserv install redis', 'prov-taskserv install --infra demo --check'],
    mutating: true,
    uses: ['infra', 'parallel'],
  },
  orchestrated: 'taskserv.install',
  args: {
    names: { type: 'positional', description: 'Taskservs (name or name@range); with --infra: default all of taskservs.yaml', required: false },
    ...targetArgs,
    ...settingArgs,
  },
  async run(ctx) {
    const prepared = await prepare(ctx)
    const { plan, levels, placed } = await planFor(ctx, prepared, 'install', { expand: true })
    if (ctx.common.check) {
      ctx.log.info(`check mode: nothing installed, no connection opened; order: ${plan.levels.map((l) => l.join(' + ')).join(' -> ')}`)
      ctx.emit(plan)
      return 0
    }
    return executeAndReport({
      ctx,
      config: prepared.config,
      workspace: prepared.workspace,
      levels,
      dependencyScope: placed ? 'global' : 'host',
      label: 'install',
      timeoutSec: parseTimeout(ctx.args.timeout),
    })
  },
})
