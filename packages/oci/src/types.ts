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

/**
 * Bounds on everything read from a registry, a layout or an archive: a hostile source can make
 * prov-oci refuse, never fill memory or disk. Blobs stream to disk; what is read into memory
 * (manifests, configs, signature payloads, JSON answers) is small by nature.
 */
export const MAX_MANIFEST_BYTES = 4 * 1024 * 1024
export const MAX_BLOB_BYTES = Number(process.env.PROV_OCI_MAX_BLOB_BYTES) || 2 * 1024 * 1024 * 1024
/** A config blob or signature payload decoded in memory. */
export const MAX_CONFIG_BYTES = 4 * 1024 * 1024
/** A JSON answer of a registry (tag and repository pages, referrers, tokens). */
export const MAX_RESPONSE_BYTES = 4 * 1024 * 1024
/** An error body is only read for its message. */
export const MAX_ERROR_BODY_BYTES = 64 * 1024
/** Tags or repositories listed over all pages. */
export const MAX_LISTED_NAMES = 100_000
/** `index.json` of a layout or of the cache (one line per tag ever pulled). */
export const MAX_INDEX_FILE_BYTES = 64 * 1024 * 1024
export const MAX_LAYERS = 256
export const MAX_INDEX_MANIFESTS = 1024
/** Nesting of image indexes (an index of indexes of ...). */
export const MAX_INDEX_DEPTH = 4
/** Default of `oci.max_unpacked_size`: what the layers of one artifact may unpack to. */
export const DEFAULT_MAX_UNPACKED_SIZE = 1024 * 1024 * 1024

/** Limits of one archive read (all layers of an artifact count together). */
export const TAR_LIMITS = {
  entries: 100_000,
  /** Bytes of a whole entry path (PATH_MAX) and of one component (NAME_MAX). */
  pathBytes: 4096,
  nameBytes: 255,
  /** A pax or GNU long-name header is read into memory. */
  metaBytes: 1024 * 1024,
} as const
