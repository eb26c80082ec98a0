import { gzipSync } from 'node:zlib'

/** Bytes a data URL leaves as they are; every other byte is written %XX (upper-case hex). */
const unreserved = /[A-Za-z0-9\-_.!~*'()]/

function percentEncode(bytes: Uint8Array): string {
  let out = ''
  for (const byte of bytes) {
    const char = String.fromCharCode(byte)
    out += byte < 0x80 && unreserved.test(char) ? char : `%${byte.toString(16).toUpperCase().padStart(2, '0')}`
  }
  return out
}

export interface DataUrl {
  source: string
  /**
   * The `compression` to record next to the source: 'gzip' when the contents were compressed here,
   * '' when they were not (so a merged child config does not inherit a parent's compression), and
   * undefined when the author declared a compression (their bytes are already compressed).
   */
  compression?: string
}

/**
 * The smallest of three encodings of `contents`, the way Butane writes inline and local files:
 * percent-escaped text (`data:,...`), base64 (`data:;base64,...`), or gzip then base64 - the last one
 * only when the author declared no compression and it saves more than the 4 bytes of "gzip".
 */
export function dataUrl(contents: Uint8Array, declaredCompression?: string, allowCompression = true): DataUrl {
  const declared = declaredCompression !== undefined && declaredCompression !== ''
  let opaque = `,${percentEncode(contents)}`
  const base64 = `;base64,${Buffer.from(contents).toString('base64')}`
  if (base64.length < opaque.length) opaque = base64
  let compression: string | undefined = declared ? undefined : ''
  if (!declared && allowCompression) {
    const gzipped = `;base64,${gzipSync(contents, { level: 9 }).toString('base64')}`
    if (gzipped.length + 'gzip'.length < opaque.length) {
      opaque = gzipped
      compression = 'gzip'
    }
  }
  return { source: `data:${opaque}`, compression }
}

/** `data:,` + percent-escaped text, the only encoding of the first Butane spec (Ignition 3.0). */
export function plainDataUrl(contents: Uint8Array): string {
  return `data:,${percentEncode(contents)}`
}
