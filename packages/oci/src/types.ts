/** OCI image-spec media types and shapes used by prov-oci. */
export const MEDIA = {
  manifest: 'application/vnd.oci.image.manifest.v1+json',
  index: 'application/vnd.oci.image.index.v1+json',
  dockerManifest: 'application/vnd.docker.distribution.manifest.v2+json',
  dockerList: 'application/vnd.docker.distribution.manifest.list.v2+json',
  layerTarGzip: 'application/vnd.oci.image.layer.v1.tar+gzip',
  layerTar: 'application/vnd.oci.image.layer.v1.tar',
  dockerLayer: 'application/vnd.docker.image.rootfs.diff.tar.gzip',
  empty: 'application/vnd.oci.empty.v1+json',
} as const

export const PROV_ARTIFACT = {
  provider: 'application/vnd.prov.provider.v1+json',
  taskserv: 'application/vnd.prov.taskserv.v1+json',
  cluster: 'application/vnd.prov.cluster.v1+json',
  bundle: 'application/vnd.prov.bundle.v1+json',
  signature: 'application/vnd.prov.signature.v1+json',
} as const
export const PROV_CONFIG = 'application/vnd.prov.manifest.config.v1+json'
export const PROV_BUNDLE_CONFIG = 'application/vnd.prov.bundle.config.v1+json'
export const PROV_SIGNATURE_PAYLOAD = 'application/vnd.prov.signature.payload.v1+json'

export const manifestMediaTypes: readonly string[] = [MEDIA.manifest, MEDIA.index, MEDIA.dockerManifest, MEDIA.dockerList]
export const ACCEPT_MANIFESTS = manifestMediaTypes.join(', ')

export interface Descriptor {
  mediaType: string
  digest: string
  size: number
  artifactType?: string
  annotations?: Record<string, string>
  urls?: string[]
  platform?: Record<string, unknown>
}

export interface ImageManifest {
  schemaVersion: 2
  mediaType?: string
  artifactType?: string
  config: Descriptor
  layers: Descriptor[]
  subject?: Descriptor
  annotations?: Record<string, string>
}

export interface ImageIndex {
  schemaVersion: 2
  mediaType?: string
  artifactType?: string
  manifests: Descriptor[]
  subject?: Descriptor
  annotations?: Record<string, string>
}

/** Bounds: a manifest is small; blobs are bounded to keep a hostile registry from filling the disk. */
export const MAX_MANIFEST_BYTES = 4 * 1024 * 1024
export const MAX_BLOB_BYTES = Number(process.env.PROV_OCI_MAX_BLOB_BYTES) || 2 * 1024 * 1024 * 1024
