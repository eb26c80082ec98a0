import { execFileSync } from 'node:child_process'
import { readFileSync, writeFileSync } from 'node:fs'
import { join } from 'node:path'
import { afterAll, describe, expect, it } from 'vitest'
import { OrchStore } from '../src/store/store'
import { devEnv, orchBin, type Postgres, repoRoot, startOrch, startPostgres, tempDir, waitExit, waitFor } from './helpers'
import { lines } from './suite'

const LAYERS = 10
const WIDTH = 20

/** 200 steps in 10 layers; each step waits for two of the layer before, appends its id to a log. */
function workflow(logFile: string) {
  const steps = []
  for (let l = 0; l < LAYERS; l++) {
    for (let i = 0; i < WIDTH; i++) {
      steps.push({
        id: `s${l}-${i}`,
        run: `echo "$PROV_ORCH_STEP_ID" >> ${logFile}; sleep 0.0${(i % 5) + 1}`,
        depends_on: l ? [`s${l - 1}-${i}`, `s${l - 1}-${(i + 1) % WIDTH}`] : [],
        idempotent: true,
      })
    }
  }
  return { schema: 'prov.orch.workflow/v1', name: 'crash-200', parallel_limit: 8, steps }
}

const counts = (file: string) => {
  const map = new Map<string, number>()
  for (const id of lines(file)) map.set(id, (map.get(id) ?? 0) + 1)
  return map
}

async function crashLoop(options: { storeUrl: string; workers: number; kills: number; dir: string; lease?: string }) {
  const logFile = join(options.dir, 'runs.log')
  const wfFile = join(options.dir, 'wf.json')
  writeFileSync(wfFile, JSON.stringify(workflow(logFile)))
  const submitted = execFileSync(process.execPath, [orchBin, 'submit', wfFile, '--store', options.storeUrl, '-q'], {
    cwd: repoRoot,
    env: { ...process.env, ...devEnv },
  })
  const id = JSON.parse(submitted.toString()).workflow_id as string
  const store = await OrchStore.open(options.storeUrl)
  const snapshots: { completed: string[]; counts: Map<string, number> }[] = []
  const workerArgs = ['worker', '--until-idle', '--store', options.storeUrl, '--lease', options.lease ?? '30s', '--debug']
  const workers = Array.from({ length: options.workers }, () => startOrch(workerArgs, devEnv))
  try {
    let completedBefore = 0
    for (let k = 0; k < options.kills; k++) {
      const before = lines(logFile).length
      // Let the (re)started engine make progress (steps started and one more committed, however
      // loaded the machine is), then kill one at a random point.
      await waitFor(() => lines(logFile).length >= before + 5, 60_000, 20)
      await waitFor(async () => (await store.steps(id)).filter((s) => s.status === 'succeeded').length > completedBefore, 60_000, 20)
      await new Promise((r) => setTimeout(r, Math.random() * 400))
      const victim = k % workers.length
      workers[victim].kill('SIGKILL')
      await waitExit(workers[victim])
      const completed = (await store.steps(id)).filter((s) => s.status === 'succeeded').map((s) => s.id)
      snapshots.push({ completed, counts: counts(logFile) })
      completedBefore = completed.length
      workers[victim] = startOrch(workerArgs, devEnv)
    }
    const codes = await Promise.all(workers.map((w) => waitExit(w, 120_000)))
    expect(codes, workers.map((w) => w.stderrText()).join('\n')).toEqual(workers.map(() => 0))
  } finally {
    for (const w of workers) if (w.exitCode === null) w.kill('SIGKILL')
  }
  const wf = await store.get(id)
  const steps = await store.steps(id)
  await store.close()
  return { wf, steps, snapshots, final: counts(logFile) }
}

function checkRuns(r: Awaited<ReturnType<typeof crashLoop>>, kills: number) {
  expect(r.wf.status).toBe('succeeded')
  expect(r.steps.every((s) => s.status === 'succeeded')).toBe(true)
  expect(r.final.size).toBe(LAYERS * WIDTH)
  // Every step ran; one completed before a kill never ran again.
  expect(r.snapshots.some((snap) => snap.completed.length > 0 && snap.completed.length < LAYERS * WIDTH)).toBe(true)
  for (const snap of r.snapshots) {
    for (const id of snap.completed) expect(r.final.get(id)).toBe(snap.counts.get(id))
  }
  // Only steps in flight at a kill may have run twice: at most parallel_limit per kill.
  const extra = [...r.final.values()].reduce((sum, n) => sum + n - 1, 0)
  expect(extra).toBeLessThanOrEqual(kills * 8)
  expect(r.snapshots.length).toBe(kills)
}

describe('crash recovery: kill -9 of the engine at random points', () => {
  const tmp = tempDir()
  let pg: Postgres | undefined
  afterAll(() => {
    pg?.cleanup()
    tmp.cleanup()
  })

  it('SQLite: a 200-step workflow completes after 4 kills; completed steps never run again', async () => {
    const dir = join(tmp.dir, 'sqlite')
    execFileSync('mkdir', ['-p', dir])
    const r = await crashLoop({ storeUrl: `sqlite:${join(dir, 'orch.db')}`, workers: 1, kills: 4, dir })
    checkRuns(r, 4)
  }, 180_000)

  it('PostgreSQL, two workers: killed workers’ steps are re-claimed after their lease; the workflow completes', async () => {
    pg = await startPostgres()
    const dir = join(tmp.dir, 'pg')
    execFileSync('mkdir', ['-p', dir])
    const r = await crashLoop({ storeUrl: pg.url, workers: 2, kills: 4, dir, lease: '2500ms' })
    checkRuns(r, 4)
  }, 180_000)
})

describe('orphaned steps after kill -9', () => {
  const tmp = tempDir()
  afterAll(() => tmp.cleanup())

  it('the next engine kills the process group a dead engine left running, then fails the non-idempotent step', async () => {
    const pidFile = join(tmp.dir, 'pid')
    const wfFile = join(tmp.dir, 'orphan.json')
    writeFileSync(wfFile, JSON.stringify({ name: 'orphan', steps: [{ id: 'long', run: `echo $$ > ${pidFile}; sleep 60` }] }))
    const storeUrl = `sqlite:${join(tmp.dir, 'orphan.db')}`
    const id = JSON.parse(
      execFileSync(process.execPath, [orchBin, 'submit', wfFile, '--store', storeUrl, '-q'], { cwd: repoRoot, env: { ...process.env, ...devEnv } }).toString(),
    ).workflow_id
    const first = startOrch(['worker', '--store', storeUrl, '-q'], devEnv)
    const store = await OrchStore.open(storeUrl)
    try {
      const pid = await waitFor(() => lines(pidFile).length > 0 && Number(lines(pidFile)[0]), 60_000)
      // Wait until the engine has recorded the step's process (next engine round).
      await waitFor(async () => (await store.db.all<{ pid: number | null }>('SELECT pid FROM orch_steps WHERE workflow_id = ?', [id]))[0]?.pid === pid, 10_000)
      first.kill('SIGKILL')
      await waitExit(first)
      expect(alive(pid)).toBe(true)
      const second = startOrch(['worker', '--until-idle', '--store', storeUrl], devEnv)
      expect(await waitExit(second)).toBe(0)
      expect(second.stderrText()).toMatch(new RegExp(`killed the process group ${pid} of step long`))
      await waitFor(() => !alive(pid), 5000)
      const [step] = await store.steps(id)
      expect(step.status).toBe('failed')
      expect(step.error).toMatch(/not idempotent/)
    } finally {
      if (first.exitCode === null) first.kill('SIGKILL')
      await store.close()
    }
  }, 90_000)
})

function alive(pid: number) {
  try {
    return !/^\d+ \(.*\) Z/.test(readFileSync(`/proc/${pid}/stat`, 'utf8'))
  } catch {
    return false
  }
}
