import { defineProvCommand } from '@prov/core'
import semver from 'semver'
import { prepare } from '../lib/common'

export default defineProvCommand({
  meta: {
    name: 'check-updates',
    description: 'Installed versions (workspace state) against the catalog; no connection opened',
    examples: ['prov-taskserv check-updates'],
    mutating: false,
    uses: ['infra'],
  },
  args: {
    names: { type: 'positional', description: 'Taskservs (default: all installed)', required: false },
    server: { type: 'string', description: "Only this server ('all': every one)" },
  },
  async run(ctx) {
    const prepared = await prepare(ctx)
    const rows = []
    for (const [server, entries] of Object.entries(prepared.state.servers).sort(([a], [b]) => a.localeCompare(b))) {
      if (ctx.args.server && ctx.args.server !== 'all' && server !== ctx.args.server) continue
      for (const [name, entry] of Object.entries(entries).sort(([a], [b]) => a.localeCompare(b))) {
        if (ctx.positionals.length && !ctx.positionals.includes(name)) continue
        const available = prepared.catalog.get(name)?.version
        const newer = !!available && !!semver.valid(entry.version) && semver.gt(available, entry.version)
        rows.push({
          schema: 'prov.taskserv.update/v1',
          name,
          server,
          installed: entry.version,
          available: available ?? null,
          update_available: newer,
          ...(newer ? { kind: semver.diff(entry.version, available as string) } : {}),
        })
      }
    }
    ctx.emit(rows)
    return 0
  },
})
