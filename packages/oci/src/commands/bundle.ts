import { resolve } from 'node:path'
import { defineProvCommand, requireWorkspace, writeFileAtomic } from '@prov/core'
import { pushBuilt } from '../artifact'
import { buildBundle, layoutArchive } from '../bundle'
import { ociContext, transportArgs } from '../context'
import { formatReference } from '../ref'

export default defineProvCommand({
  meta: {
    name: 'bundle',
    description: 'Pack a workspace (config, infra, extensions, encrypted secrets) as one artifact or a single .tar',
    examples: ['prov-oci bundle --to spore.tar', 'prov-oci bundle --to layout:./bundles'],
    mutating: true,
  },
  args: {
    to: { type: 'string', description: 'REF, layout:PATH[:tag] or FILE.tar (default: layout <workspace>/.prov/oci, tag bundle)' },
    created: { type: 'string', description: 'org.opencontainers.image.created annotation' },
    ...transportArgs,
  },
  async run({ args, common, emit, log }) {
    const workspace = requireWorkspace(common.workspace)
    const built = buildBundle(workspace, { created: args.created })
    for (const skip of built.bundle.skipped) log.warn(`not bundled: ${skip.path} (${skip.reason})`)
    let destination: string
    if (args.to?.endsWith('.tar') && !args.to.startsWith('layout:')) {
      destination = resolve(args.to)
      if (!common.check) writeFileAtomic(destination, layoutArchive(built, 'bundle'))
    } else {
      const oci = await ociContext(common, args)
      const ref = args.to ? oci.parse(args.to, { allowBare: true }) : oci.parse(`layout:${workspace.paths.oci}:bundle`)
      const tag = ref.tag ?? 'bundle'
      destination = formatReference({ ...ref, tag, digest: undefined })
      if (!common.check) await pushBuilt(oci.target(ref), built, tag, oci.settings.parallel)
    }
    if (!common.check)
      log.success(`bundled workspace ${workspace.name}: ${built.bundle.files.length} files, ${built.bundle.secrets.length} encrypted secrets -> ${destination}`)
    emit({
      schema: 'prov.oci.bundle/v1',
      workspace: workspace.name,
      destination,
      digest: built.descriptor.digest,
      size: built.blobs.reduce((n, b) => n + b.descriptor.size, built.descriptor.size),
      files: built.bundle.files.length,
      extensions: built.bundle.extensions,
      secrets: built.bundle.secrets,
      skipped: built.bundle.skipped,
      ...(common.check ? { planned: true } : {}),
    })
  },
})
