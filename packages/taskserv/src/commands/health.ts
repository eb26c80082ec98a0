import { defineProvCommand } from '@prov/core'
import { settingArgs, targetArgs } from '../lib/common'
import { runQuery } from '../lib/query'

export default defineProvCommand({
  meta: {
    name: 'health',
    description: 'Run the health checks (health.sh) of taskservs on servers',
    examples: ['prov-taskserv health postgres --infra demo', 'prov-server list | prov-taskserv health'],
    mutating: false,
    uses: ['infra', 'parallel'],
  },
  args: {
    names: { type: 'positional', description: 'Taskservs (default: those recorded on each server)', required: false },
    ...targetArgs,
    set: settingArgs.set,
  },
  run: (ctx) => runQuery(ctx, 'health'),
})
