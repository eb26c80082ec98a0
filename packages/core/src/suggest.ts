/** Levenshtein distance, small and allocation-light: used for "did you mean" hints. */
export function editDistance(a: string, b: string): number {
  if (a === b) return 0
  if (!a.length) return b.length
  if (!b.length) return a.length
  let previous = Array.from({ length: b.length + 1 }, (_, i) => i)
  for (let i = 1; i <= a.length; i++) {
    const current = [i]
    for (let j = 1; j <= b.length; j++) {
      const cost = a[i - 1] === b[j - 1] ? 0 : 1
      current[j] = Math.min(previous[j] + 1, current[j - 1] + 1, previous[j - 1] + cost)
    }
    previous = current
  }
  return previous[b.length]
}

/** The candidates closest to `name` (at most `limit`), only when reasonably close. */
export function nearest(name: string, candidates: Iterable<string>, limit = 3): string[] {
  const threshold = Math.max(2, Math.floor(name.length / 3))
  return [...new Set(candidates)]
    .map((candidate) => ({ candidate, distance: editDistance(name.toLowerCase(), candidate.toLowerCase()) }))
    .filter(({ candidate, distance }) => distance <= threshold || candidate.startsWith(name) || name.startsWith(candidate))
    .sort((x, y) => x.distance - y.distance || x.candidate.localeCompare(y.candidate))
    .slice(0, limit)
    .map(({ candidate }) => candidate)
}

/** "did you mean x?" or undefined. */
export function didYouMean(name: string, candidates: Iterable<string>): string | undefined {
  const close = nearest(name, candidates)
  return close.length ? `did you mean ${close.map((c) => `'${c}'`).join(' or ')}?` : undefined
}
