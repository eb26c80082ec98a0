import { failedError, jsonNestingDepth, MAX_INPUT_DEPTH, tooDeepError, usageError } from '@prov/core'

/**
 * JSON that prov-oci does not control: registry answers, manifests, configs and signature payloads
 * from a registry, a layout or an archive, the answer of a remote command. JSON.parse copes with any
 * nesting, but what comes after it (printing, spreading, validating) recurses over the value, so a
 * document nested deeper than any OCI document needs is refused before it is parsed (exit 2), and
 * text that is not JSON is a clear error naming what was read (exit 1).
 */
export function parseJson<T>(bytes: Buffer | string, what: string, location?: string): T {
  const text = typeof bytes === 'string' ? bytes : bytes.toString('utf8')
  if (jsonNestingDepth(text) > MAX_INPUT_DEPTH)
    throw usageError(tooDeepError(what).message, {
      ...(location ? { location } : {}),
      hint: 'no OCI document needs that much nesting: the source is broken or hostile',
    })
  try {
    return JSON.parse(text) as T
  } catch {
    throw failedError(`${what} is not JSON`, location ? { location } : {})
  }
}
