import { defineProvCommand } from '@prov/core'
import { confirmAction, parseTimeout, planFor, prepare, settingArgs, targetArgs } from '../lib/common'
import { executeAndReport } from '../lib/run'

export default defineProvCommand({
  meta: {
    name: 'remove',
    description: 'Remove taskservs from servers (dependents first)',
    examples: ['prov-taskserv remove postgres --infra demo --yes', 'prov-taskserv remove postgres --infra demo --check'],
    mutating: true,
    destructive: true,
    confirms: true,
    uses: ['infra', 'parallel'],
  },
  args: {
    names: { type: 'positional', description: 'Taskservs', required: false },
    'keep-data': { type: 'boolean', description: 'Keep data directories (PROV_KEEP_DATA=1)' },
    ...targetArgs,
    set: settingArgs.set,
  },
  async run(ctx) {
    const prepared = await prepare(ctx)
    const { plan, levels, placed } = await planFor(ctx, prepared, 'remove', {
      expand: false,
      itemEnv: { PROV_KEEP_DATA: ctx.args['keep-data'] ? '1' : '0' },
    })
    if (ctx.common.check) {
      ctx.emit(plan)
      return 0
    }
    await confirmAction(ctx, 'remove', levels.flat())
    return executeAndReport({
      ctx,
      config: prepared.config,
      workspace: prepared.workspace,
      levels,
      dependencyScope: placed ? 'global' : 'host',
      label: 'remove',
      timeoutSec: parseTimeout(ctx.args.timeout),
    })
  },
})
