/**
 * Bounded concurrency: `fn` runs on at most `limit` items at a time, items are taken in order, and
 * the results come back in the order of the items. A rejection rejects the whole call once the
 * running items have settled (no new item starts after it).
 */
export async function mapLimit<I, O>(items: readonly I[], limit: number, fn: (item: I, index: number) => Promise<O>): Promise<O[]> {
  const results: O[] = new Array(items.length)
  let next = 0
  let failed = false
  const worker = async () => {
    while (!failed && next < items.length) {
      const index = next++
      try {
        results[index] = await fn(items[index], index)
      } catch (error) {
        failed = true
        throw error
      }
    }
  }
  const workers = Array.from({ length: Math.max(1, Math.min(Math.floor(limit) || 1, items.length)) }, worker)
  const settled = await Promise.allSettled(workers)
  const rejected = settled.find((s): s is PromiseRejectedResult => s.status === 'rejected')
  if (rejected) throw rejected.reason
  return results
}

/** `mapLimit` for work done for its effects. */
export async function forEachLimit<I>(items: readonly I[], limit: number, fn: (item: I, index: number) => Promise<void>): Promise<void> {
  await mapLimit(items, limit, fn)
}
