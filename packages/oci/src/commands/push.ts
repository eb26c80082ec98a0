import { existsSync } from 'node:fs'
import { join, resolve } from 'node:path'
import { defineProvCommand, usageError } from '@prov/core'
import { packageExtension, pushBuilt } from '../artifact'
import { ociContext, transportArgs } from '../context'
import { formatReference } from '../ref'

export default defineProvCommand({
  meta: {
    name: 'push',
    description: 'Package an extension folder and push it to a registry or layout',
    examples: ['prov-oci push 127.0.0.1:5000/prov/taskservs/redis:7.0.0 extensions/taskservs/redis'],
    mutating: true,
  },
  args: {
    ref: { type: 'positional', description: 'host[:port]/ns/name:tag or layout:PATH:tag', required: true },
    dir: { type: 'positional', description: 'Extension folder (default: current folder)', required: false },
    created: { type: 'string', description: 'org.opencontainers.image.created annotation' },
    ...transportArgs,
  },
  async run({ args, common, emit, log }) {
    const oci = await ociContext(common, args)
    const ref = oci.parse(args.ref)
    if (ref.digest) throw usageError('push needs a tag, not a digest', { location: args.ref })
    const dir = resolve(args.dir ?? '.')
    if (!existsSync(join(dir, 'manifest.yaml'))) throw usageError(`no manifest.yaml in ${dir}`, { hint: 'push REF DIR, where DIR is an extension folder' })
    const artifact = packageExtension(dir, { created: args.created })
    const tag = ref.tag ?? artifact.extension.version
    if (!common.check) {
      await pushBuilt(oci.target(ref), artifact, tag, oci.settings.parallel)
      log.success(`pushed ${artifact.extension.kind} ${artifact.extension.name} ${artifact.extension.version} to ${formatReference({ ...ref, tag })}`)
    }
    emit({
      schema: 'prov.oci.push/v1',
      reference: formatReference({ ...ref, tag }),
      digest: artifact.descriptor.digest,
      name: artifact.extension.name,
      kind: artifact.extension.kind,
      version: artifact.extension.version,
      size: artifact.descriptor.size + artifact.blobs.reduce((n, b) => n + b.descriptor.size, 0),
      pushed: !common.check,
      ...(common.check ? { planned: true } : {}),
    })
  },
})
