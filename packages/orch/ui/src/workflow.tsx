import { useCallback, useEffect, useMemo, useRef, useState } from 'preact/hooks'
import { api, followEvents, type LogLine, RANK, type Session, type Step, type Workflow } from './api'
import { layoutSteps, NODE_HEIGHT, NODE_WIDTH } from './dag'
import { FINISHED, formatDuration, formatTime, StatusBadge, statusIcon, statusLabel } from './status'

const LOG_TAIL = 200

type Detail = Workflow & { steps: Step[] }
type Action = { kind: 'cancel' | 'retry' | 'rollback'; step?: string }

const ACTIONS: Record<Action['kind'], { title: (a: Action, w: Detail) => string; text: string; button: string }> = {
  cancel: {
    title: (_, w) => `Cancel workflow ${w.name}?`,
    text: 'Queued steps never start; running steps are killed.',
    button: 'Cancel workflow',
  },
  retry: {
    title: (a, w) => (a.step ? `Retry step ${a.step}?` : `Retry workflow ${w.name}?`),
    text: 'Failed and cancelled steps run again; succeeded steps keep their results.',
    button: 'Retry',
  },
  rollback: {
    title: (_, w) => `Roll back workflow ${w.name}?`,
    text: 'The rollback command of every succeeded step runs, in reverse order.',
    button: 'Roll back',
  },
}

/** A modal dialog (focus stays inside, Escape closes) that asks before anything changes. */
function Confirm({ action, workflow, onDone }: { action: Action; workflow: Detail; onDone: (confirmed: boolean) => void }) {
  const ref = useRef<HTMLDialogElement>(null)
  useEffect(() => {
    ref.current?.showModal()
  }, [])
  const spec = ACTIONS[action.kind]
  return (
    <dialog ref={ref} class="confirm" aria-labelledby="confirm-title" onCancel={() => onDone(false)}>
      <h2 id="confirm-title">{spec.title(action, workflow)}</h2>
      <p>{spec.text}</p>
      <div class="buttons">
        {/* The harmless choice comes first: showModal() focuses it, so Enter does not destroy anything. */}
        <button type="button" onClick={() => onDone(false)}>
          Keep as is
        </button>
        <button type="button" class="danger" onClick={() => onDone(true)}>
          {spec.button}
        </button>
      </div>
    </dialog>
  )
}

function Dag({ steps, selected, onSelect }: { steps: Step[]; selected?: string; onSelect: (id: string) => void }) {
  const layout = useMemo(() => layoutSteps(steps), [steps])
  const byId = new Map(layout.nodes.map((n) => [n.step.id, n]))
  return (
    <section class="dag-wrap" aria-label="Steps and their dependencies">
      <svg class="dag" width={layout.width} height={layout.height} viewBox={`0 0 ${layout.width} ${layout.height}`}>
        <title>Steps of the workflow, each with its state</title>
        <defs>
          <marker id="arrow" viewBox="0 0 10 10" refX="9" refY="5" markerWidth="7" markerHeight="7" orient="auto-start-reverse">
            <path d="M 0 0 L 10 5 L 0 10 z" class="arrowhead" />
          </marker>
        </defs>
        {layout.groups.map((g) => (
          <g key={g.id} class="group">
            <rect x={g.x} y={g.y} width={g.width} height={g.height} rx={8} />
            <text x={g.x + 8} y={g.y + 15}>
              {g.label}
            </text>
          </g>
        ))}
        {layout.edges.map((e) => (
          <polyline key={`${e.from}->${e.to}`} class="edge" points={e.points.map((p) => `${p.x},${p.y}`).join(' ')} marker-end="url(#arrow)" />
        ))}
        {[...byId.values()].map(({ step, x, y }) => (
          // biome-ignore lint/a11y/useSemanticElements: an SVG group cannot be a <button>; role, tabindex and keys make it one
          <g
            key={step.id}
            class={`node status-${step.status}${selected === step.id ? ' selected' : ''}`}
            data-step={step.id}
            data-status={step.status}
            transform={`translate(${x},${y})`}
            role="button"
            // lower case: on SVG elements Preact sets attributes by their written name
            tabindex={0}
            aria-pressed={selected === step.id}
            aria-label={`step ${step.id}: ${statusLabel(step.status)}`}
            onClick={() => onSelect(step.id)}
            onKeyDown={(e) => {
              if (e.key === 'Enter' || e.key === ' ') {
                e.preventDefault()
                onSelect(step.id)
              }
            }}
          >
            <rect width={NODE_WIDTH} height={NODE_HEIGHT} rx={6} />
            <text x={10} y={20} class="name">
              {step.id.length > 24 ? `${step.id.slice(0, 23)}…` : step.id}
            </text>
            <text x={10} y={38} class="state">
              {statusIcon(step.status)} {statusLabel(step.status)}
              {step.attempts > 1 ? ` · attempt ${step.attempts}` : ''}
            </text>
          </g>
        ))}
      </svg>
    </section>
  )
}

function StepPanel({ workflow, step, canAct, onAction }: { workflow: Detail; step: Step; canAct: boolean; onAction: (a: Action) => void }) {
  const [lines, setLines] = useState<LogLine[]>([])
  const [error, setError] = useState<string>()
  const logRef = useRef<HTMLPreElement>(null)
  const live = step.status === 'running' || step.status === 'queued'
  // Refetched whenever the step changes state or attempt, and every 2 s while it runs (following the tail).
  useEffect(() => {
    const controller = new AbortController()
    let timer: ReturnType<typeof setTimeout> | undefined
    const load = async () => {
      try {
        const all = await api<LogLine[]>(`/v1/workflows/${encodeURIComponent(workflow.id)}/logs?step=${encodeURIComponent(step.id)}`, {
          signal: controller.signal,
        })
        setLines(all.slice(-LOG_TAIL))
        setError(undefined)
      } catch (failure) {
        if (!controller.signal.aborted) setError((failure as Error).message)
      }
      if (live && !controller.signal.aborted) timer = setTimeout(load, 2000)
    }
    load()
    return () => {
      controller.abort()
      clearTimeout(timer)
    }
  }, [workflow.id, step.id, step.status, step.attempts, live])
  useEffect(() => {
    if (logRef.current) logRef.current.scrollTop = logRef.current.scrollHeight
  }, [lines])
  return (
    <section class="step-panel" aria-labelledby="step-title">
      <h2 id="step-title">
        Step <span class="mono">{step.id}</span> <StatusBadge status={step.status} />
      </h2>
      <dl class="facts">
        <dt>Attempts</dt>
        <dd>{step.attempts}</dd>
        <dt>Exit code</dt>
        <dd class="exit-code">{step.exit_code ?? '—'}</dd>
        <dt>Started</dt>
        <dd>{formatTime(step.started_at)}</dd>
        <dt>Duration</dt>
        <dd>{formatDuration(step.started_at, step.finished_at)}</dd>
        <dt>Depends on</dt>
        <dd>{step.depends_on.length ? step.depends_on.join(', ') : '—'}</dd>
      </dl>
      {step.error && (
        <p class="error step-error">
          <span aria-hidden="true">✖</span> {step.error}
        </p>
      )}
      {canAct && (step.status === 'failed' || step.status === 'cancelled') && FINISHED.has(workflow.status) && (
        <button type="button" onClick={() => onAction({ kind: 'retry', step: step.id })}>
          Retry step
        </button>
      )}
      <h3>
        Log (last {LOG_TAIL} lines{live ? ', following' : ''})
      </h3>
      {error && <p class="error">{error}</p>}
      {/* biome-ignore lint/a11y/noNoninteractiveTabindex: a scrolling log must take focus to be scrolled with the keyboard */}
      <pre class="log" ref={logRef} tabIndex={0}>
        {lines.length
          ? lines.map((l, i) => (
              <span key={i} class={`line ${l.stream}`}>
                <span class="stream">
                  {l.stream === 'stderr' ? 'err' : l.stream === 'engine' ? 'eng' : 'out'} #{l.attempt}
                </span>{' '}
                {l.text}
                {'\n'}
              </span>
            ))
          : 'No output yet.'}
      </pre>
    </section>
  )
}

export function WorkflowPage({ id, session }: { id: string; session: Session }) {
  const [workflow, setWorkflow] = useState<Detail>()
  const [error, setError] = useState<string>()
  const [selected, setSelected] = useState<string>()
  const [pending, setPending] = useState<Action>()
  const [notice, setNotice] = useState<string>()
  const [generation, setGeneration] = useState(0)
  const canAct = RANK[session.role] >= RANK.operator

  const load = useCallback(
    async (signal?: AbortSignal) => {
      try {
        setWorkflow(await api<Detail>(`/v1/workflows/${encodeURIComponent(id)}`, { signal }))
        setError(undefined)
      } catch (failure) {
        if (!signal?.aborted) setError((failure as Error).message)
      }
    },
    [id],
  )

  // Live: every event of the stream triggers a reload of the workflow (at most one every 250 ms).
  useEffect(() => {
    const controller = new AbortController()
    let timer: ReturnType<typeof setTimeout> | undefined
    const schedule = () => {
      timer ??= setTimeout(() => {
        timer = undefined
        load(controller.signal)
      }, 250)
    }
    load(controller.signal)
    followEvents(id, schedule, controller.signal)
      .then(() => load(controller.signal))
      .catch((failure: Error) => setError(failure.message))
    return () => {
      controller.abort()
      clearTimeout(timer)
    }
  }, [id, load, generation])

  const act = async (action: Action, confirmed: boolean) => {
    setPending(undefined)
    if (!confirmed) return
    const path = `/v1/workflows/${encodeURIComponent(id)}`
    try {
      if (action.kind === 'cancel') await api(path, { method: 'DELETE' })
      else await api(`${path}/${action.kind}`, { method: 'POST', body: action.step ? { step: action.step } : {} })
      setNotice(`${action.kind === 'cancel' ? 'Cancel' : action.kind === 'retry' ? 'Retry' : 'Rollback'} requested.`)
      // A retried or rolled-back workflow has new events: follow them again.
      setGeneration((n) => n + 1)
    } catch (failure) {
      setNotice(`Refused: ${(failure as Error).message}`)
    }
  }

  if (!workflow) {
    return (
      <main>
        <p>
          <a href="#/">← Workflows</a>
        </p>
        {error ? (
          <p class="error" role="alert">
            {error}
          </p>
        ) : (
          <p class="loading">Loading…</p>
        )}
      </main>
    )
  }
  const finished = FINISHED.has(workflow.status)
  const step = workflow.steps.find((s) => s.id === selected)
  const rollbackSteps = workflow.steps.filter((s) => s.kind === 'rollback')
  return (
    <main class="workflow">
      <p>
        <a href="#/">← Workflows</a>
      </p>
      <div class="toolbar">
        <h1>
          {workflow.name} <StatusBadge status={workflow.status} />
        </h1>
        {canAct && (
          <div class="actions">
            {!finished && (
              <button type="button" class="danger" onClick={() => setPending({ kind: 'cancel' })}>
                Cancel
              </button>
            )}
            {(workflow.status === 'failed' || workflow.status === 'cancelled') && (
              <button type="button" onClick={() => setPending({ kind: 'retry' })}>
                Retry
              </button>
            )}
            {finished && workflow.rollback_enabled && workflow.status !== 'rolled_back' && (
              <button type="button" onClick={() => setPending({ kind: 'rollback' })}>
                Roll back
              </button>
            )}
          </div>
        )}
      </div>
      <p class="muted">
        <span class="mono">{workflow.id}</span> · submitted by {workflow.submitted_by ?? '—'} · started {formatTime(workflow.started_at)} · duration{' '}
        {formatDuration(workflow.started_at, finished ? workflow.finished_at : null)}
      </p>
      {workflow.error && (
        <p class="error">
          <span aria-hidden="true">✖</span> {workflow.error}
        </p>
      )}
      {notice && (
        <p class="notice" role="status">
          {notice}
        </p>
      )}
      {error && (
        <p class="error" role="alert">
          {error}
        </p>
      )}
      <div class="workflow-body">
        <Dag steps={workflow.steps} selected={selected} onSelect={setSelected} />
        {step ? (
          <StepPanel workflow={workflow} step={step} canAct={canAct} onAction={setPending} />
        ) : (
          <p class="muted hint">Select a step (click, or Tab and Enter) to see its attempts and log.</p>
        )}
      </div>
      {rollbackSteps.length > 0 && (
        <section>
          <h2>Rollback steps</h2>
          <ul>
            {rollbackSteps.map((s) => (
              <li key={s.id}>
                <button type="button" class="link" onClick={() => setSelected(s.id)}>
                  {s.id}
                </button>{' '}
                <StatusBadge status={s.status} />
              </li>
            ))}
          </ul>
        </section>
      )}
      {pending && <Confirm action={pending} workflow={workflow} onDone={(ok) => act(pending, ok)} />}
    </main>
  )
}
