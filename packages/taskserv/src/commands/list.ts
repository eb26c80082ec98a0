import { defineProvCommand, usageError } from '@prov/core'
import { prepare } from '../lib/common'

export default defineProvCommand({
  meta: {
    name: 'list',
    description: 'Taskservs of the catalog (--available, default) or recorded as installed on servers (--installed)',
    examples: ['prov-taskserv list', 'prov-taskserv list --installed'],
    mutating: false,
    uses: ['infra'],
  },
  args: {
    available: { type: 'boolean', description: 'The catalog across extension layers (default)' },
    installed: { type: 'boolean', description: 'What the workspace records as installed, per server' },
    server: { type: 'string', description: "With --installed: only this server ('all': every one)" },
  },
  async run(ctx) {
    if (ctx.args.available && ctx.args.installed) throw usageError('choose one of --available and --installed')
    const prepared = await prepare(ctx)
    if (ctx.args.installed) {
      const rows = Object.entries(prepared.state.servers)
        .filter(([server]) => !ctx.args.server || ctx.args.server === 'all' || server === ctx.args.server)
        .sort(([a], [b]) => a.localeCompare(b))
        .flatMap(([server, entries]) =>
          Object.entries(entries)
            .sort(([a], [b]) => a.localeCompare(b))
            .map(([name, entry]) => ({
              schema: 'prov.taskserv.installed/v1',
              name,
              version: entry.version,
              server,
              status: 'installed',
              ...(entry.previous_version ? { previous_version: entry.previous_version } : {}),
              ...(entry.cluster ? { cluster: entry.cluster } : {}),
              updated_at: entry.updated_at,
            })),
        )
      ctx.emit(rows)
      return 0
    }
    ctx.emit(
      [...prepared.catalog.values()].map((e) => ({
        schema: 'prov.taskserv/v1',
        name: e.name,
        version: e.version,
        description: e.manifest.description,
        requires: e.manifest.requires,
        ...(Object.keys(e.manifest.optional ?? {}).length ? { optional: e.manifest.optional } : {}),
        ...(e.manifest.conflicts?.length ? { conflicts: e.manifest.conflicts } : {}),
        layer: e.layer,
        path: e.dir,
      })),
    )
    return 0
  },
})
