import { defineProvCommand, getServer, usageError } from '@prov/core'
import { liveServers, serverEnv } from '../engine'

export default defineProvCommand({
  meta: { name: 'info', description: 'One server with provider details' },
  args: { name: { type: 'positional', required: false, description: 'Server name' } },
  async run(ctx) {
    const env = await serverEnv(ctx.common)
    let name = ctx.positionals[0]
    if (!name) {
      const input = await ctx.stdin()
      const { serversFromRecords } = await import('@prov/core')
      if (input?.records.length === 1) name = serversFromRecords(input.records)[0].name
    }
    if (!name || ctx.positionals.length > 1) throw usageError('info takes one server name', { hint: 'prov-server info web-01' })
    const [record] = await liveServers(env, [getServer(env.workspace, name)])
    const provider = await env.provider(record.provider)
    const details = await provider.info(env.providerContext(record.provider), record)
    ctx.emit({ ...record, provider_info: details })
  },
})
