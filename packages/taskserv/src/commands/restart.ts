import { defineProvCommand } from '@prov/core'
import { settingArgs } from '../lib/common'
import { runQuery } from '../lib/query'

export default defineProvCommand({
  meta: { name: 'restart', description: 'Restart the daemons of taskservs (restart.sh, else the service helper)' },
  args: {
    names: { type: 'positional', description: 'Taskservs', required: true },
    servers: { type: 'string', description: 'Target servers by name: a,b' },
    where: { type: 'string', description: 'Target servers by label: role=db' },
    timeout: { type: 'string', description: 'Seconds a script may run' },
    set: settingArgs.set,
  },
  run: (ctx) => runQuery(ctx, 'restart'),
})
