// Shared measuring helpers of the benchmarks (bench/p*.mjs).
import { spawnSync } from 'node:child_process'

export const median = (values) => {
  const sorted = [...values].sort((a, b) => a - b)
  const mid = Math.floor(sorted.length / 2)
  return sorted.length % 2 ? sorted[mid] : (sorted[mid - 1] + sorted[mid]) / 2
}

/** Wall time of one run of fn (ms). */
export async function timeIt(fn) {
  const start = process.hrtime.bigint()
  await fn()
  return Number(process.hrtime.bigint() - start) / 1e6
}

/** Median wall time (ms) of `runs` runs of a command; throws if it fails. */
export function timeCommand(command, args, { runs = 10, env, input, cwd, warmup = 1 } = {}) {
  const samples = []
  for (let i = 0; i < warmup + runs; i++) {
    const start = process.hrtime.bigint()
    const result = spawnSync(command, args, { env: { ...process.env, ...env }, input, cwd, stdio: ['pipe', 'pipe', 'pipe'], maxBuffer: 1 << 30 })
    const ms = Number(process.hrtime.bigint() - start) / 1e6
    if (result.status !== 0) throw new Error(`${command} ${args.join(' ')} exited ${result.status}: ${String(result.stderr).slice(0, 300)}`)
    if (i >= warmup) samples.push(ms)
  }
  return median(samples)
}

/** Interleaves two commands run by run so machine noise hits both alike; returns both medians. */
export function sideBySide(a, b, { runs = 10 } = {}) {
  const sa = []
  const sb = []
  for (let i = 0; i < runs; i++) {
    sa.push(timeCommand(a.command, a.args, { ...a, runs: 1, warmup: i === 0 ? 1 : 0 }))
    sb.push(timeCommand(b.command, b.args, { ...b, runs: 1, warmup: i === 0 ? 1 : 0 }))
  }
  return { a: median(sa), b: median(sb) }
}
