/** Parses `500ms`, `30s`, `5m`, `1h` or a number of seconds into milliseconds; the error message says what is wrong, not where. */
export function parseDuration(value: string | number): number {
  if (typeof value === 'number') {
    if (!Number.isFinite(value) || value < 0) throw new Error('expected a non-negative number of seconds')
    return Math.round(value * 1000)
  }
  const match = /^\s*(\d+(?:\.\d+)?)\s*(ms|s|m|h)?\s*$/.exec(value)
  if (!match) throw new Error(`'${value}' is not a duration (use 500ms, 30s, 5m, 1h)`)
  const n = Number(match[1])
  const unit = match[2] ?? 's'
  return Math.round(n * { ms: 1, s: 1000, m: 60_000, h: 3_600_000 }[unit as 'ms' | 's' | 'm' | 'h'])
}

const SIZE_UNITS: Record<string, number> = {
  b: 1,
  k: 1024,
  kib: 1024,
  kb: 1000,
  m: 1024 ** 2,
  mib: 1024 ** 2,
  mb: 1000 ** 2,
  g: 1024 ** 3,
  gib: 1024 ** 3,
  gb: 1000 ** 3,
}

/** Parses `16MiB`, `512KiB`, `1GB`, `65536` (bytes) into bytes; the error message says what is wrong, not where. */
export function parseSize(value: string | number): number {
  if (typeof value === 'number') {
    if (!Number.isInteger(value) || value < 1) throw new Error('expected a whole number of bytes of at least 1')
    return value
  }
  const match = /^\s*(\d+(?:\.\d+)?)\s*([a-z]+)?\s*$/i.exec(value)
  const unit = (match?.[2] ?? 'b').toLowerCase()
  if (!match || !(unit in SIZE_UNITS)) throw new Error(`'${value}' is not a size (use 65536, 512KiB, 16MiB, 1GiB)`)
  const bytes = Math.floor(Number(match[1]) * SIZE_UNITS[unit])
  if (bytes < 1) throw new Error(`'${value}' is less than one byte`)
  return bytes
}
