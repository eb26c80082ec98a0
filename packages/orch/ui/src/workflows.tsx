import { useEffect, useState } from 'preact/hooks'
import { api, WORKFLOW_STATUSES, type Workflow } from './api'
import { FINISHED, formatDuration, formatTime, StatusBadge, statusLabel } from './status'

const REFRESH_MS = 2000

/** Steps that reached an end (succeeded, failed, skipped, ...) out of all main steps. */
const doneSteps = (w: Workflow) => Object.entries(w.counts).reduce((n, [status, count]) => (status === 'queued' || status === 'running' ? n : n + count), 0)

export function WorkflowsPage() {
  const [status, setStatus] = useState('')
  const [items, setItems] = useState<Workflow[]>()
  const [total, setTotal] = useState(0)
  const [error, setError] = useState<string>()

  useEffect(() => {
    const controller = new AbortController()
    let timer: ReturnType<typeof setTimeout> | undefined
    const load = async () => {
      try {
        const data = await api<{ items: Workflow[]; total: number }>(`/v1/workflows?limit=100${status ? `&status=${status}` : ''}`, {
          signal: controller.signal,
        })
        setItems(data.items)
        setTotal(data.total)
        setError(undefined)
      } catch (failure) {
        if (controller.signal.aborted) return
        setError((failure as Error).message)
      }
      if (!controller.signal.aborted) timer = setTimeout(load, REFRESH_MS)
    }
    load()
    return () => {
      controller.abort()
      clearTimeout(timer)
    }
  }, [status])

  return (
    <main>
      <div class="toolbar">
        <h1>Workflows</h1>
        <label>
          Status{' '}
          <select value={status} onChange={(e) => setStatus((e.target as HTMLSelectElement).value)}>
            <option value="">all</option>
            {WORKFLOW_STATUSES.map((s) => (
              <option value={s} key={s}>
                {statusLabel(s)}
              </option>
            ))}
          </select>
        </label>
        <span class="muted" aria-live="polite">
          {items ? `${items.length} of ${total}` : ''}
        </span>
      </div>
      {error && (
        <p class="error" role="alert">
          {error}
        </p>
      )}
      <div class="table-wrap">
        <table class="workflows">
          <thead>
            <tr>
              <th scope="col">Name</th>
              <th scope="col">Status</th>
              <th scope="col">Steps</th>
              <th scope="col">Started</th>
              <th scope="col">Duration</th>
              <th scope="col">Id</th>
            </tr>
          </thead>
          <tbody>
            {items?.map((w) => (
              <tr key={w.id} data-workflow={w.id}>
                <td>
                  <a href={`#/workflows/${w.id}`}>{w.name}</a>
                </td>
                <td>
                  <StatusBadge status={w.status} />
                </td>
                <td class="num">
                  {doneSteps(w)}/{w.steps_total}
                </td>
                <td>{formatTime(w.started_at)}</td>
                <td class="num">{formatDuration(w.started_at, FINISHED.has(w.status) ? w.finished_at : null)}</td>
                <td class="mono">{w.id}</td>
              </tr>
            ))}
            {items && !items.length && (
              <tr>
                <td colSpan={6} class="muted">
                  No workflows{status ? ` with status ${statusLabel(status)}` : ''}.
                </td>
              </tr>
            )}
          </tbody>
        </table>
      </div>
    </main>
  )
}
