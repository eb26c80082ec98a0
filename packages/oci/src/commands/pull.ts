import { resolve } from 'node:path'
import { defineProvCommand } from '@prov/core'
import { ociContext, transportArgs } from '../context'
import { pullArtifact } from '../pull'
import { readKey } from '../sign'

export default defineProvCommand({
  meta: { name: 'pull', description: 'Pull an artifact into the cache and install it (workspace registry layer, or --to DIR)' },
  args: {
    ref: { type: 'positional', description: 'host[:port]/ns/name:tag, ...@sha256:..., or layout:PATH:tag', required: true },
    to: { type: 'string', description: 'Extract into this folder instead' },
    verify: { type: 'boolean', description: 'Refuse it unless signed by a trusted key' },
    key: { type: 'string', description: 'Public key (PEM) to verify with (default: oci.trusted_keys)' },
    ...transportArgs,
  },
  async run({ args, common, emit, log }) {
    const oci = await ociContext(common, args)
    const ref = oci.parse(args.ref)
    const {
      manifest: _m,
      source: _s,
      ...result
    } = await pullArtifact(oci, ref, {
      to: args.to ? resolve(args.to) : undefined,
      verify: args.verify || Boolean(args.key),
      keys: args.key ? [readKey(args.key, 'public')] : undefined,
      install: !common.check,
      log,
    })
    if (result.installed) log.success(`${result.name ?? result.reference} installed in ${result.installed}`)
    emit(result)
  },
})
