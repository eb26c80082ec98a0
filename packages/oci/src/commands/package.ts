import { resolve } from 'node:path'
import { defineProvCommand, writeFileAtomic } from '@prov/core'
import { packageExtension, pushBuilt } from '../artifact'
import { LayoutTarget } from '../layout'
import { parseReference } from '../ref'

export default defineProvCommand({
  meta: {
    name: 'package',
    description: 'Build an extension folder into a reproducible OCI artifact (into a layout, or --file for the layer)',
    examples: ['prov-oci package extensions/taskservs/redis'],
    mutating: true,
  },
  args: {
    dir: { type: 'positional', description: 'Extension folder (with manifest.yaml)', required: true },
    to: { type: 'string', description: 'Store it in an OCI layout: layout:PATH[:tag] (default: digests only)' },
    file: { type: 'string', description: 'Also write the layer as <file>.tar.gz' },
    created: { type: 'string', description: 'org.opencontainers.image.created (default from SOURCE_DATE_EPOCH, else 1970-01-01)' },
  },
  async run({ args, emit, common }) {
    const artifact = packageExtension(resolve(args.dir), { created: args.created })
    let stored: string | undefined
    const ref = args.to ? parseReference(args.to.startsWith('layout:') ? args.to : `layout:${args.to}`) : undefined
    if (ref?.type === 'layout' && !common.check) {
      await pushBuilt(new LayoutTarget(ref.path), artifact, ref.tag ?? artifact.extension.version)
      stored = `layout:${ref.path}:${ref.tag ?? artifact.extension.version}`
    }
    if (args.file && !common.check) writeFileAtomic(resolve(args.file), artifact.blobs[1].bytes)
    emit({
      schema: 'prov.oci.artifact/v1',
      name: artifact.extension.name,
      kind: artifact.extension.kind,
      version: artifact.extension.version,
      artifactType: artifact.manifest.artifactType,
      digest: artifact.descriptor.digest,
      size: artifact.descriptor.size + artifact.blobs.reduce((n, b) => n + b.descriptor.size, 0),
      config: artifact.manifest.config.digest,
      layers: artifact.manifest.layers.map((l) => ({ digest: l.digest, size: l.size })),
      annotations: artifact.manifest.annotations,
      ...(stored ? { stored } : {}),
      ...(args.file ? { file: resolve(args.file) } : {}),
      ...(common.check ? { planned: true } : {}),
    })
  },
})
