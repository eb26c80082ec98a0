import { useEffect, useState } from 'preact/hooks'
import { metricsText, WORKFLOW_STATUSES } from './api'
import { StatusBadge } from './status'

const REFRESH_MS = 5000

interface Sample {
  name: string
  labels: Record<string, string>
  value: number
}

/** The Prometheus text format, as much of it as /metrics uses: `name{label="v",...} value` lines. */
export function parseMetrics(text: string): Sample[] {
  const out: Sample[] = []
  for (const line of text.split('\n')) {
    if (!line || line.startsWith('#')) continue
    const m = /^([a-zA-Z_:][\w:]*)(?:\{([^}]*)\})?\s+(\S+)$/.exec(line)
    if (!m) continue
    const labels: Record<string, string> = {}
    for (const pair of (m[2] ?? '').matchAll(/(\w+)="((?:[^"\\]|\\.)*)"/g)) labels[pair[1]] = pair[2]
    out.push({ name: m[1], labels, value: Number(m[3]) })
  }
  return out
}

const find = (samples: Sample[], name: string, labels: Record<string, string> = {}) =>
  samples.find((s) => s.name === name && Object.entries(labels).every(([k, v]) => s.labels[k] === v))?.value

const seconds = (value: number | undefined) =>
  value === undefined || Number.isNaN(value) ? '—' : value < 1 ? `${Math.round(value * 1000)} ms` : `${value.toFixed(2)} s`

function Card({ label, value, id }: { label: string; value: string | number; id: string }) {
  return (
    <div class="card" data-metric={id}>
      <div class="value">{value}</div>
      <div class="label">{label}</div>
    </div>
  )
}

export function MetricsPage() {
  const [samples, setSamples] = useState<Sample[]>()
  const [error, setError] = useState<string>()
  useEffect(() => {
    const controller = new AbortController()
    let timer: ReturnType<typeof setTimeout> | undefined
    const load = async () => {
      try {
        setSamples(parseMetrics(await metricsText(controller.signal)))
        setError(undefined)
      } catch (failure) {
        if (!controller.signal.aborted) setError((failure as Error).message)
      }
      if (!controller.signal.aborted) timer = setTimeout(load, REFRESH_MS)
    }
    load()
    return () => {
      controller.abort()
      clearTimeout(timer)
    }
  }, [])
  const count = samples ? find(samples, 'prov_orch_step_latency_seconds_count') : undefined
  const sum = samples ? find(samples, 'prov_orch_step_latency_seconds_sum') : undefined
  return (
    <main>
      <h1>Metrics</h1>
      {error && (
        <p class="error" role="alert">
          {error}
        </p>
      )}
      {samples && (
        <>
          <div class="cards">
            <Card id="queue" label="Queue depth (steps)" value={find(samples, 'prov_orch_queue_depth') ?? 0} />
            <Card id="running" label="Steps running" value={find(samples, 'prov_orch_steps_running') ?? 0} />
            <Card id="completed" label="Workflows completed" value={find(samples, 'prov_orch_workflows_completed_total') ?? 0} />
            <Card id="failed" label="Workflows failed" value={find(samples, 'prov_orch_workflows_failed_total') ?? 0} />
          </div>
          <h2>Step latency</h2>
          <div class="cards">
            {['0.5', '0.9', '0.99'].map((q) => (
              <Card
                key={q}
                id={`p${Number(q) * 100}`}
                label={`p${Number(q) * 100}`}
                value={seconds(find(samples, 'prov_orch_step_latency_seconds', { quantile: q }))}
              />
            ))}
            <Card id="mean" label="mean" value={seconds(count ? (sum ?? 0) / count : undefined)} />
            <Card id="count" label="steps finished" value={count ?? 0} />
          </div>
          <h2>Workflows by status</h2>
          <table class="compact">
            <tbody>
              {WORKFLOW_STATUSES.map((s) => (
                <tr key={s}>
                  <th scope="row">
                    <StatusBadge status={s} />
                  </th>
                  <td class="num">{find(samples, 'prov_orch_workflows', { status: s }) ?? 0}</td>
                </tr>
              ))}
            </tbody>
          </table>
        </>
      )}
    </main>
  )
}
