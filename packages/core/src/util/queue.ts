/**
 * In-process serialisation per key: calls with the same key run one after another, in call order;
 * a failure of one does not stop the next. Different keys run side by side. File locks (which are
 * per process) use this so parallel async callers inside one process also wait for each other.
 */
const tails = new Map<string, Promise<unknown>>()

export async function serialised<T>(key: string, fn: () => Promise<T> | T): Promise<T> {
  const previous = tails.get(key) ?? Promise.resolve()
  const run = previous.then(fn, fn)
  const settled = run.then(
    () => undefined,
    () => undefined,
  )
  tails.set(key, settled)
  try {
    return await run
  } finally {
    if (tails.get(key) === settled) tails.delete(key)
  }
}
