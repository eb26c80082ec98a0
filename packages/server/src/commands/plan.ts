import { defineProvCommand } from '@prov/core'
import { serverEnv } from '../engine'
import { computePlan, loadDesired } from '../plan'
import { emitPlan } from '../render'

export default defineProvCommand({
  meta: {
    name: 'plan',
    description: 'Compare infra/<name>/servers.yaml with the actual servers; emit a prov.server.plan/v1 record',
    examples: ['prov-server plan --infra demo', 'prov-server plan --infra demo > plan.json'],
    mutating: false,
    uses: ['infra'],
  },
  args: {
    file: { type: 'string', alias: 'f', description: 'A servers.yaml file instead of --infra', valueHint: 'FILE' },
  },
  async run(ctx) {
    const env = await serverEnv(ctx.common)
    const desired = await loadDesired(env, ctx.args.file as string | undefined)
    const plan = await computePlan(env, desired)
    const s = plan.summary
    // The human view ends with the same summary; pipes get it on stderr.
    if (ctx.common.out !== 'table') ctx.log.info(`plan: ${s.create} to create, ${s.update} to update, ${s.delete} to delete, ${s.keep} unchanged`)
    emitPlan(ctx, plan)
  },
})
