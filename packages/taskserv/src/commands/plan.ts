import { defineProvCommand } from '@prov/core'
import { planFor, prepare, settingArgs, targetArgs } from '../lib/common'

export default defineProvCommand({
  meta: {
    name: 'plan',
    description: 'What install would do: requirements, order in levels, per-server actions (never connects)',
    examples: ['prov-taskserv plan redis --infra demo'],
    mutating: false,
    uses: ['infra'],
  },
  args: {
    names: { type: 'positional', description: 'Taskservs (name or name@range)', required: false },
    action: { type: 'enum', options: ['install', 'remove', 'update'], description: 'The action to plan (default install)' },
    ...targetArgs,
    ...settingArgs,
  },
  async run(ctx) {
    const action = (ctx.args.action ?? 'install') as 'install' | 'remove' | 'update'
    const prepared = await prepare(ctx)
    const { plan } = await planFor(ctx, prepared, action, { expand: action === 'install' })
    ctx.emit({ ...plan, check: true })
    return 0
  },
})
