import { defineProvCommand } from '@prov/core'
import { planFor, prepare, settingArgs, targetArgs } from '../lib/common'

export default defineProvCommand({
  meta: { name: 'plan', description: 'What install would do: requirements, order in levels, per-server actions (never connects)' },
  args: {
    names: { type: 'positional', description: 'Taskservs (name or name@range)', required: false },
    action: { type: 'string', description: 'install (default) | remove | update' },
    ...targetArgs,
    ...settingArgs,
  },
  async run(ctx) {
    const action = (ctx.args.action as string | undefined) ?? 'install'
    if (!['install', 'remove', 'update'].includes(action)) {
      const { usageError } = await import('@prov/core')
      throw usageError(`unknown plan action '${action}'`, { hint: 'install, remove or update' })
    }
    const prepared = await prepare(ctx)
    const { plan } = await planFor(ctx, prepared, action as 'install', { expand: action === 'install' })
    ctx.emit({ ...plan, check: true })
    return 0
  },
})
