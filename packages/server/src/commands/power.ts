import { defineProvCommand } from '@prov/core'
import { actOnServers } from '../confirm'
import { powerJob, serverEnv, targetServers } from '../engine'
import { adHocPlan } from '../plan'
import { emitPlan } from '../render'

function powerCommand(action: 'start' | 'stop' | 'restart') {
  return defineProvCommand({
    meta: {
      name: action,
      description: `${action[0].toUpperCase()}${action.slice(1)} servers (names, all, or piped prov.server/v1 records)`,
      examples: [`prov-server ${action} web-01 --yes`, `prov-server list | prov-server ${action} --yes`],
      mutating: true,
      destructive: true,
      confirms: true,
      uses: ['infra', 'parallel'],
    },
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
      return actOnServers(ctx, env, action, targets, (record) => powerJob(env, record, action))
    },
  })
}

export const start = powerCommand('start')
export const stop = powerCommand('stop')
export const restart = powerCommand('restart')
