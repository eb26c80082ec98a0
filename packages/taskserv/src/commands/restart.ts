import { defineProvCommand } from '@prov/core'
import { settingArgs, targetArgs } from '../lib/common'
import { runQuery } from '../lib/query'

export default defineProvCommand({
  meta: {
    name: 'restart',
    description: 'Restart the daemons of taskservs (restart.sh, else the service helper)',
    examples: ['prov-taskserv restart postgres --infra demo --yes'],
    mutating: true,
    destructive: true,
    confirms: true,
    uses: ['infra', 'parallel'],
  },
  args: {
    names: { type: 'positional', description: 'Taskservs', required: true },
    ...targetArgs,
    set: settingArgs.set,
  },
  run: (ctx) => runQuery(ctx, 'restart'),
})
