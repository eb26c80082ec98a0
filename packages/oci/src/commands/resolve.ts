import { defineProvCommand, usageError } from '@prov/core'
import { ociContext, transportArgs } from '../context'
import { checkUpdates as findUpdates, resolveFromRegistries } from '../resolve'

export const resolve = defineProvCommand({
  meta: {
    name: 'resolve',
    description: 'Pull and install dependencies.extensions (recursively, semver ranges, lock file)',
    examples: ['prov-oci resolve', 'prov-oci resolve --check'],
    mutating: true,
  },
  args: {
    update: { type: 'boolean', description: 'Ignore prov.lock.json and pick the newest matching tags' },
    'dry-run': { type: 'boolean', description: 'Resolve against the registries and show what would be installed, writing nothing' },
    ...transportArgs,
  },
  async run({ args, common, emit, log }) {
    if (common.check) {
      throw usageError('resolve is not supported with --check: resolving needs the registries', {
        hint: 'use --dry-run to see what would be installed (it reads the registries, writes nothing)',
      })
    }
    const oci = await ociContext(common, args)
    const results = await resolveFromRegistries(oci, { update: args.update, dryRun: args['dry-run'], log })
    const installed = results.filter((r) => r.action === 'installed').length
    log.success(`${results.length} extension(s) resolved, ${installed} installed`)
    emit(results)
  },
})

export const checkUpdates = defineProvCommand({
  meta: {
    name: 'check-updates',
    description: 'Newer (and compatible) tags of the registry extensions of the workspace',
    examples: ['prov-oci check-updates'],
    mutating: false,
  },
  args: { ...transportArgs },
  async run({ args, common, emit }) {
    const oci = await ociContext(common, args)
    emit(await findUpdates(oci))
  },
})
