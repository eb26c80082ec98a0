// A state is always an icon and a word: colour only repeats what they say.

const ICONS: Record<string, string> = {
  queued: '◷',
  running: '▶',
  succeeded: '✔',
  failed: '✖',
  cancelled: '⊘',
  rolling_back: '↺',
  rolled_back: '↩',
  skipped: '↷',
}

export const statusIcon = (status: string) => ICONS[status] ?? '•'
export const statusLabel = (status: string) => status.replace(/_/g, ' ')

export function StatusBadge({ status }: { status: string }) {
  return (
    <span class={`badge status-${status}`} data-status={status}>
      <span aria-hidden="true">{statusIcon(status)}</span> {statusLabel(status)}
    </span>
  )
}

export const FINISHED = new Set(['succeeded', 'failed', 'cancelled', 'rolled_back'])

export function formatTime(iso: string | null): string {
  if (!iso) return '—'
  const d = new Date(iso)
  return Number.isNaN(d.getTime()) ? iso : d.toLocaleString()
}

export function formatDuration(from: string | null, to: string | null, now = Date.now()): string {
  if (!from) return '—'
  const ms = (to ? new Date(to).getTime() : now) - new Date(from).getTime()
  if (!Number.isFinite(ms) || ms < 0) return '—'
  if (ms < 1000) return `${ms} ms`
  const s = Math.round(ms / 1000)
  if (s < 60) return `${s} s`
  const m = Math.floor(s / 60)
  if (m < 60) return `${m} min ${s % 60} s`
  return `${Math.floor(m / 60)} h ${m % 60} min`
}
