import { defineProvCommand, type ServerRecord } from '@prov/core'
import { actOnServers } from '../confirm'
import { deleteJob, serverEnv, targetServers } from '../engine'
import { adHocPlan } from '../plan'
import { emitPlan } from '../render'

export default defineProvCommand({
  meta: {
    name: 'delete',
    description: 'Delete servers (names, all, or piped prov.server/v1 records); local sandboxes are removed completely',
    examples: ['prov-server delete web-01 --yes', 'prov-server list | prov-server delete --yes'],
    mutating: true,
    destructive: true,
    confirms: true,
    uses: ['infra', 'parallel'],
  },
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
    const keepStorage = Boolean(ctx.args['keep-storage'])
    return actOnServers(ctx, env, 'delete', targets, (record) => deleteJob(env, record, keepStorage))
  },
})
