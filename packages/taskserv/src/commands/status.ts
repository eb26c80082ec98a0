import { defineProvCommand } from '@prov/core'
import { settingArgs, targetArgs } from '../lib/common'
import { runQuery } from '../lib/query'

export default defineProvCommand({
  meta: {
    name: 'status',
    description: 'Is each taskserv in its desired state on each server (check.sh), its version and health',
    examples: ['prov-taskserv status postgres --infra demo', 'prov-server list | prov-taskserv status'],
    mutating: false,
    uses: ['infra', 'parallel'],
  },
  args: {
    names: { type: 'positional', description: 'Taskservs (default: those recorded on each server)', required: false },
    ...targetArgs,
    set: settingArgs.set,
  },
  run: (ctx) => runQuery(ctx, 'status'),
})
