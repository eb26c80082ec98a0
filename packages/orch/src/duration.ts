/** Parses `500ms`, `30s`, `5m`, `1h` or a number of seconds into milliseconds. */
export function parseDuration(value: string | number, where = 'duration'): number {
  if (typeof value === 'number') {
    if (!Number.isFinite(value) || value < 0) throw new Error(`${where}: expected a non-negative number of seconds`)
    return Math.round(value * 1000)
  }
  const match = /^\s*(\d+(?:\.\d+)?)\s*(ms|s|m|h)?\s*$/.exec(value)
  if (!match) throw new Error(`${where}: '${value}' is not a duration (use 500ms, 30s, 5m, 1h)`)
  const n = Number(match[1])
  const unit = match[2] ?? 's'
  return Math.round(n * { ms: 1, s: 1000, m: 60_000, h: 3_600_000 }[unit as 'ms' | 's' | 'm' | 'h'])
}
