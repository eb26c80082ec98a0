import { defineProvCommand, requireWorkspace } from '@prov/core'
import { ociContext, transportArgs } from '../context'
import { seedServer } from '../seed'

export default defineProvCommand({
  meta: {
    name: 'seed',
    description: 'Unpack a workspace bundle on a server over SSH and run its bootstrap (so the host can run prov)',
    examples: ['prov-oci seed spore.tar --server web-01', 'prov-oci seed spore.tar --server web-01 --check'],
    mutating: true,
  },
  args: {
    bundle: { type: 'positional', description: 'REF, layout:PATH[:tag] or FILE.tar', required: true },
    server: { type: 'string', alias: 's', description: 'Server name (from this workspace)', required: true },
    dest: { type: 'string', description: 'Folder on the server (default /opt/prov/<workspace>)' },
    'prov-bin': {
      type: 'string',
      description: 'prov executable on the server (default: this installation when the server sees it, else a runtime shipped with the bundle)',
    },
    ...transportArgs,
  },
  async run({ args, common, emit, log }) {
    const workspace = requireWorkspace(common.workspace)
    const oci = await ociContext(common, args)
    const result = await seedServer(oci, workspace, {
      bundle: args.bundle,
      server: args.server,
      dest: args.dest,
      provBin: args['prov-bin'],
      check: common.check,
    })
    if (!common.check) log.success(`seeded ${result.server}: workspace ${result.workspace} in ${result.destination}, prov runs there`)
    emit(result)
  },
})
