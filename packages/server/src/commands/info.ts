import { defineProvCommand, usageError } from '@prov/core'
import { liveServers, serverEnv, targetServers } from '../engine'

export default defineProvCommand({
  meta: {
    name: 'info',
    description: 'Servers with provider details: one server prints one record; several or all print a list',
    examples: ['prov-server info web-01'],
    mutating: false,
  },
  args: { names: { type: 'positional', required: false, description: 'Server names or all (default: piped prov.server/v1 records)', valueHint: 'NAME...' } },
  async run(ctx) {
    const env = await serverEnv(ctx.common)
    const targets = await targetServers(ctx, env).catch((error) => {
      throw ctx.positionals.length ? error : usageError('info needs server names', { hint: 'prov-server info web-01' })
    })
    const out = []
    for (const record of await liveServers(env, targets)) {
      const provider = await env.provider(record.provider)
      out.push({ ...record, provider_info: await provider.info(env.providerContext(record.provider), record) })
    }
    // One server named (or piped) prints its record; all or several print a list.
    ctx.emit(out.length === 1 && !ctx.positionals.includes('all') ? out[0] : out)
  },
})
