import { defineProvCommand } from '@prov/core'
import { copyGraph } from '../artifact'
import { ociContext, referenceName, transportArgs } from '../context'
import { planPull } from '../pull'
import { formatReference } from '../ref'

export default defineProvCommand({
  meta: {
    name: 'copy',
    description: 'Copy an artifact between any two targets (registry, layout:PATH, cache)',
    examples: ['prov-oci copy 127.0.0.1:5000/prov/taskservs/redis:7.0.0 layout:./mirror'],
    mutating: true,
  },
  args: {
    src: { type: 'positional', description: 'Source reference', required: true },
    dst: { type: 'positional', description: 'Destination reference (tag defaults to the source tag)', required: true },
    'no-referrers': { type: 'boolean', description: 'Do not copy signatures along' },
    ...transportArgs,
  },
  async run({ args, common, emit, log }) {
    const oci = await ociContext(common, args)
    const src = oci.parse(args.src)
    const dst = oci.parse(args.dst, { allowBare: true })
    const tag = dst.tag ?? src.tag
    const counts = { exists: 0, mounted: 0, copied: 0 }
    if (common.check) {
      // What is known without a connection: the digest of a layout or cached source.
      const { digest } = await planPull(oci, src)
      emit({
        schema: 'prov.oci.copy/v1',
        source: formatReference(src),
        destination: formatReference({ ...dst, tag, digest: tag ? undefined : (digest ?? undefined) }),
        digest,
        blobs: counts,
        planned: true,
      })
      return
    }
    const descriptor = await copyGraph(oci.target(src), oci.target(dst), referenceName(src), {
      tag,
      parallel: oci.settings.parallel,
      referrers: !args['no-referrers'],
      onBlob: (_d, action) => {
        counts[action]++
      },
    })
    log.success(`copied ${formatReference(src)} to ${formatReference({ ...dst, tag, digest: undefined })}`)
    emit({
      schema: 'prov.oci.copy/v1',
      source: formatReference(src),
      destination: formatReference({ ...dst, tag, digest: tag ? undefined : descriptor.digest }),
      digest: descriptor.digest,
      blobs: counts,
    })
  },
})
