/**
 * Size limits of input that prov buffers in memory. Streams that prov does not buffer (kms
 * encrypt/decrypt of a file, OCI blobs) have their own limits where they are consumed.
 */

/** Default of `limits.input_bytes`: piped records, plan and workflow files read whole (64 MiB). */
export const DEFAULT_INPUT_BYTES = 64 * 1024 * 1024

/** A configuration file larger than this is refused before it is parsed (exit 3). */
export const MAX_CONFIG_FILE_BYTES = 4 * 1024 * 1024

/** A state file (`.prov/*.json`, the workspace registry) larger than this is refused. */
export const MAX_STATE_FILE_BYTES = 64 * 1024 * 1024

let configuredInputBytes: number | undefined

/** Called once the configuration is loaded: `limits.input_bytes` applies from then on. */
export function setConfiguredInputLimit(bytes: number | undefined): void {
  configuredInputBytes = bytes
}

/** Whether the configuration has already supplied the limit. */
export function inputLimitConfigured(): boolean {
  return configuredInputBytes !== undefined
}

/**
 * The limit for buffered input: `$PROV_LIMITS__INPUT_BYTES` (read directly, so it applies even
 * before any configuration is loaded), then `limits.input_bytes`, then the default.
 */
export function inputLimitBytes(env: NodeJS.ProcessEnv = process.env): number {
  const fromEnv = env.PROV_LIMITS__INPUT_BYTES
  if (fromEnv !== undefined && /^\d+$/.test(fromEnv.trim()) && Number(fromEnv) > 0) return Number(fromEnv)
  return configuredInputBytes ?? DEFAULT_INPUT_BYTES
}

/** `67108864` -> `64 MiB` for messages. */
export function formatBytes(bytes: number): string {
  const units = ['bytes', 'KiB', 'MiB', 'GiB', 'TiB']
  let value = bytes
  let unit = 0
  while (value >= 1024 && unit < units.length - 1 && value % 1024 === 0) {
    value /= 1024
    unit++
  }
  return `${value} ${units[unit]}`
}
