import { render } from 'preact'
import { useEffect, useState } from 'preact/hooks'
import { ApiFailure, currentSession, login, logout, type Session, whenSessionLost } from './api'
import { MetricsPage } from './metrics'
import './style.css'
import { WorkflowPage } from './workflow'
import { WorkflowsPage } from './workflows'

type Route = { page: 'workflows' } | { page: 'workflow'; id: string } | { page: 'metrics' }

function routeOf(hash: string): Route {
  const workflow = /^#\/workflows\/([\w.:-]+)$/.exec(hash)
  if (workflow) return { page: 'workflow', id: workflow[1] }
  if (hash === '#/metrics') return { page: 'metrics' }
  return { page: 'workflows' }
}

/** A login link carries its one-time token in the fragment (never sent to a server, never in a Referer); taken out at once. */
function takeLoginToken(): string | undefined {
  const match = /^#login=([\w-]+)$/.exec(location.hash)
  if (!match) return undefined
  history.replaceState(null, '', `${location.pathname}#/`)
  return match[1]
}

function LoginForm({ onLogin, problem }: { onLogin: (s: Session) => void; problem?: string }) {
  const [token, setToken] = useState('')
  const [error, setError] = useState<string>()
  const shown = error ?? problem
  const submit = async (e: Event) => {
    e.preventDefault()
    try {
      onLogin(await login(token.trim()))
    } catch (failure) {
      setError((failure as Error).message)
    }
  }
  return (
    <main class="login">
      <h1>prov-orch</h1>
      <p>
        Run <code>prov-orch ui</code> on the server's host for a one-time login link, or paste a login token or a JWT (with <code>--auth jwt</code>).
      </p>
      <form onSubmit={submit}>
        <label for="token">Login token or JWT</label>
        <input id="token" name="token" type="password" autoComplete="off" value={token} onInput={(e) => setToken((e.target as HTMLInputElement).value)} />
        <button type="submit" disabled={!token.trim()}>
          Log in
        </button>
      </form>
      {shown && (
        <p class="error" role="alert">
          {shown}
        </p>
      )}
    </main>
  )
}

function App() {
  const [session, setSession] = useState<Session | null | undefined>(undefined)
  const [problem, setProblem] = useState<string>()
  const [route, setRoute] = useState<Route>(routeOf(location.hash))

  useEffect(() => {
    whenSessionLost(() => setSession(null))
    const onHash = () => setRoute(routeOf(location.hash))
    window.addEventListener('hashchange', onHash)
    const token = takeLoginToken()
    const start = token ? login(token) : currentSession()
    start
      .then((s) => setSession(s ?? null))
      .catch((error: Error) => {
        setProblem(error instanceof ApiFailure ? error.message : `cannot reach the server: ${error.message}`)
        setSession(null)
      })
    return () => window.removeEventListener('hashchange', onHash)
  }, [])

  useEffect(() => {
    document.title = route.page === 'workflow' ? `${route.id} · prov-orch` : `${route.page} · prov-orch`
  }, [route])

  if (session === undefined) return <p class="loading">Loading…</p>
  if (session === null) return <LoginForm onLogin={setSession} problem={problem} />
  const current = route.page === 'workflow' ? 'workflows' : route.page
  return (
    <>
      <header class="top">
        <a class="brand" href="#/">
          prov-orch
        </a>
        <nav aria-label="Pages">
          <a href="#/" aria-current={current === 'workflows' ? 'page' : undefined}>
            Workflows
          </a>
          <a href="#/metrics" aria-current={current === 'metrics' ? 'page' : undefined}>
            Metrics
          </a>
        </nav>
        <span class="who">
          {session.who} <span class="role">({session.role})</span>
        </span>
        <button type="button" class="link" onClick={() => logout().finally(() => setSession(null))}>
          Log out
        </button>
      </header>
      {route.page === 'workflows' && <WorkflowsPage />}
      {route.page === 'workflow' && <WorkflowPage id={route.id} session={session} />}
      {route.page === 'metrics' && <MetricsPage />}
    </>
  )
}

render(<App />, document.getElementById('app') as HTMLElement)
