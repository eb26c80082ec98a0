import { defineProvCommand } from '@prov/core'
import { ociContext, referenceName, transportArgs } from '../context'
import { parseJson } from '../json'
import { kindOf, parseManifest } from '../manifest'
import { formatReference } from '../ref'
import { PROV_BUNDLE_CONFIG, PROV_CONFIG } from '../types'

export default defineProvCommand({
  meta: {
    name: 'inspect',
    description: 'Manifest, config, layers, size and annotations of an artifact',
    examples: ['prov-oci inspect 127.0.0.1:5000/prov/taskservs/redis:7.0.0'],
    mutating: false,
  },
  args: {
    ref: { type: 'positional', description: 'Reference (registry or layout:PATH:tag)', required: true },
    ...transportArgs,
  },
  async run({ args, common, emit }) {
    const oci = await ociContext(common, args)
    const ref = oci.parse(args.ref)
    const target = oci.target(ref)
    const { descriptor, bytes } = await target.fetchManifest(referenceName(ref))
    const parsed = parseManifest(bytes, descriptor, formatReference(ref))
    if (parsed.type === 'index') {
      emit({
        schema: 'prov.oci.inspect/v1',
        reference: formatReference(ref),
        digest: descriptor.digest,
        mediaType: descriptor.mediaType,
        manifests: parsed.value.manifests,
        annotations: parsed.value.annotations ?? {},
      })
      return
    }
    const manifest = parsed.value
    let config: unknown
    if (
      (manifest.config.mediaType === PROV_CONFIG || manifest.config.mediaType === PROV_BUNDLE_CONFIG || manifest.config.mediaType.endsWith('+json')) &&
      manifest.config.size < 1024 * 1024
    ) {
      config = parseJson(await target.fetchBlob(manifest.config), `config of ${formatReference(ref)}`, manifest.config.digest)
    }
    emit({
      schema: 'prov.oci.inspect/v1',
      reference: formatReference(ref),
      digest: descriptor.digest,
      mediaType: descriptor.mediaType,
      artifactType: manifest.artifactType ?? manifest.config.mediaType,
      kind: kindOf(manifest) ?? null,
      size: descriptor.size + manifest.config.size + manifest.layers.reduce((n, l) => n + l.size, 0),
      annotations: manifest.annotations ?? {},
      config: { ...manifest.config, ...(config !== undefined ? { content: config } : {}) },
      layers: manifest.layers,
      ...(manifest.subject ? { subject: manifest.subject } : {}),
      manifest,
    })
  },
})
