import { defineProvCommand } from '@prov/core'
import { settingArgs } from '../lib/common'
import { runQuery } from '../lib/query'

export default defineProvCommand({
  meta: { name: 'health', description: 'Run the health checks (health.sh) of taskservs on servers' },
  args: {
    names: { type: 'positional', description: 'Taskservs (default: those recorded on each server)', required: false },
    servers: { type: 'string', description: 'Target servers by name: a,b' },
    where: { type: 'string', description: 'Target servers by label: role=db' },
    timeout: { type: 'string', description: 'Seconds a script may run' },
    set: settingArgs.set,
  },
  run: (ctx) => runQuery(ctx, 'health'),
})
