import { spawn } from 'node:child_process'
import { appendFileSync, existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs'
import { join } from 'node:path'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { binDir, runCli, tempWorkspace } from '../../../tests/helpers/cli'
import { devEnv, freePort, startOrch, tempDir, waitExit, waitFor } from './helpers'

// `prov-server apply` handed to a real `prov-orch serve` (over its unix socket). A plan with no actions
// needs no sandbox: the step runs the real binary with `--direct`, whose output is relayed.
type Ws = Awaited<ReturnType<typeof tempWorkspace>>
const tmp = tempDir('prov-via-orch-')
let ws: Ws
let server: ReturnType<typeof startOrch>
let endpoint = ''
let planFile = ''
let deadPort = 0
const store = () => `sqlite:${join(tmp.dir, 'orch.db')}`

const server$ = (args: string[], options: { input?: string } = {}) =>
  runCli('prov-server', args, { env: { ...ws.env, ...devEnv }, cwd: ws.path, input: options.input, timeoutMs: 120_000 })

const workflowIdOf = (stderr: string) => /workflow (wf-[\w-]+)/.exec(stderr)?.[1]

async function workflow(id: string) {
  const token = readFileSync(join(tmp.dir, 'orch.token'), 'utf8').trim()
  const res = await fetch(`${endpoint}/v1/workflows/${id}`, { headers: { authorization: `Bearer ${token}` } })
  return ((await res.json()) as { data: { status: string; steps: { id: string; status: string; exit_code: number | null }[] } }).data
}

beforeAll(async () => {
  ws = await tempWorkspace('viaorch', 'minimal')
  mkdirSync(join(ws.path, 'infra', 'demo'), { recursive: true })
  writeFileSync(join(ws.path, 'infra', 'demo', 'servers.yaml'), 'servers: []\n')
  const port = await freePort()
  const dead = await freePort()
  deadPort = dead
  endpoint = `http://127.0.0.1:${port}`
  appendFileSync(join(ws.path, 'prov.config.yaml'), `orchestrator:\n  endpoint: ${endpoint}\n  store: ${store()}\nssh:\n  connect_timeout: 1\n`)
  // Environment overlays (-e): nothing serves that store and nothing listens at `dead`; `strict` refuses to fall back.
  mkdirSync(join(ws.path, 'config'), { recursive: true })
  const none = `sqlite:${join(tmp.dir, 'none', 'orch.db')}`
  writeFileSync(join(ws.path, 'config', 'down.yaml'), `orchestrator:\n  endpoint: http://127.0.0.1:${dead}\n  store: ${none}\n`)
  writeFileSync(join(ws.path, 'config', 'strict.yaml'), `orchestrator:\n  endpoint: http://127.0.0.1:${dead}\n  store: ${none}\n  fallback_to_direct: false\n`)
  writeFileSync(join(ws.path, 'config', 'manual.yaml'), 'execution:\n  default_mode: direct\n')
  server = startOrch(['serve', '--port', String(port), '--store', store()], { ...devEnv, XDG_CONFIG_HOME: ws.env.XDG_CONFIG_HOME as string })
  await waitFor(async () => existsSync(join(tmp.dir, 'orch.token')) && (await fetch(`${endpoint}/health`).catch(() => undefined))?.ok, 60_000, 100)
  const plan = await server$(['plan', '--infra', 'demo'])
  expect(plan.code, plan.stderr).toBe(0)
  planFile = join(tmp.dir, 'plan.json')
  writeFileSync(planFile, plan.stdout)
}, 120_000)

afterAll(async () => {
  server?.kill('SIGCONT')
  server?.kill('SIGTERM')
  if (server) await waitExit(server, 20_000).catch(() => server.kill('SIGKILL'))
  ws?.cleanup()
  tmp.cleanup()
})

describe('prov-server apply --via-orch', () => {
  it('relays the result of the step unchanged; the workflow is in prov-orch list', async () => {
    const direct = await server$(['apply', planFile, '--direct'])
    expect(direct.code, direct.stderr).toBe(0)
    expect(direct.stderr).not.toMatch(/workflow wf-/)
    const viaOrch = await server$(['apply', planFile, '--via-orch'])
    expect(viaOrch.code, viaOrch.stderr).toBe(0)
    expect(viaOrch.stdout).toBe(direct.stdout)
    // Nothing to do prints nothing to do: an empty list, not the plan again.
    expect(viaOrch.json()).toEqual([])
    const id = workflowIdOf(viaOrch.stderr)
    expect(id, viaOrch.stderr).toBeDefined()
    expect(viaOrch.stderr).toMatch(/step\.succeeded server\.apply/)
    expect(viaOrch.stderr).toMatch(/nothing to do: servers match the plan/) // the step's own stderr
    const list = await runCli('prov-orch', ['list', '--store', store()], { env: { ...ws.env, ...devEnv } })
    expect(list.code, list.stderr).toBe(0)
    expect(list.json()).toEqual(expect.arrayContaining([expect.objectContaining({ id, name: 'server.apply', status: 'succeeded' })]))
  }, 120_000)

  it('passes piped stdin to the step; NDJSON output too', async () => {
    const plan = readFileSync(planFile, 'utf8')
    const direct = await server$(['apply', '--direct', '-o', 'ndjson'], { input: plan })
    const viaOrch = await server$(['apply', '--via-orch', '-o', 'ndjson'], { input: plan })
    expect(viaOrch.code, viaOrch.stderr).toBe(0)
    expect(direct.code, direct.stderr).toBe(0)
    expect(viaOrch.stdout).toBe(direct.stdout)
    // An empty plan streams no records.
    expect(viaOrch.lines()).toHaveLength(0)
  }, 120_000)

  it('relays the exit code and the error line of a failing step (stale plan -> 2, bad stdin -> 2)', async () => {
    const stale = JSON.parse(readFileSync(planFile, 'utf8'))
    stale.state_fingerprint = `sha256:${'0'.repeat(64)}`
    const viaOrch = await server$(['apply', '--via-orch'], { input: JSON.stringify(stale) })
    expect(viaOrch.code, viaOrch.stderr).toBe(2)
    expect(viaOrch.stdout).toBe('')
    expect(viaOrch.stderr).toMatch(/prov-server: error: the plan is stale or was altered/)
    const id = workflowIdOf(viaOrch.stderr) as string
    expect((await workflow(id)).steps[0]).toMatchObject({ status: 'failed', exit_code: 2 })
    const bad = await server$(['apply', '--via-orch'], { input: '{"schema": "nope"' })
    expect(bad.code).toBe(2)
    expect(bad.stderr).toMatch(/not valid JSON/)
  }, 120_000)

  it('a failing apply (ssh provider, nothing listens) relays its result records and exit code', async () => {
    mkdirSync(join(ws.path, 'infra', 'dead'), { recursive: true })
    writeFileSync(
      join(ws.path, 'infra', 'dead', 'servers.yaml'),
      `servers:\n  - name: dead-01\n    provider: ssh\n    address: 127.0.0.1\n    ssh: { port: ${deadPort} }\n`,
    )
    const plan = await server$(['plan', '--infra', 'dead', '-q'])
    expect(plan.code, plan.stderr).toBe(0)
    const viaOrch = await server$(['apply', '--yes', '--via-orch'], { input: plan.stdout })
    expect(viaOrch.code, viaOrch.stderr).toBe(1)
    expect(viaOrch.json()).toEqual([expect.objectContaining({ schema: 'prov.server/v1', name: 'dead-01', status: 'error', action: 'create' })])
    expect(viaOrch.stderr).toMatch(/create dead-01: timed out after 1 s waiting for SSH/)
  }, 120_000)

  it('auto mode (default) uses the running orchestrator; --direct, --check and default_mode direct stay here', async () => {
    const auto = await server$(['apply', planFile])
    expect(auto.code, auto.stderr).toBe(0)
    expect(workflowIdOf(auto.stderr)).toBeDefined()
    for (const args of [['--direct'], ['--check'], ['-e', 'manual']]) {
      const r = await server$(['apply', planFile, ...args])
      expect(r.code, r.stderr).toBe(0)
      expect(r.stderr, args.join(' ')).not.toMatch(/workflow wf-/)
    }
    const both = await server$(['apply', planFile, '--via-orch', '--direct'])
    expect(both.code).toBe(2)
    expect(both.stderr).toMatch(/--via-orch and --direct contradict/)
  }, 120_000)

  it('no orchestrator: falls back to direct with one stderr line, or refuses (exit 1) without fallback_to_direct', async () => {
    const direct = await server$(['apply', planFile, '--direct'])
    const fallback = await server$(['apply', planFile, '--via-orch', '-e', 'down'])
    expect(fallback.code, fallback.stderr).toBe(0)
    expect(fallback.stdout).toBe(direct.stdout)
    expect(fallback.stderr.split('\n').filter((l) => /no orchestrator/.test(l))).toHaveLength(1)
    expect(fallback.stderr).toMatch(/no orchestrator answers at http:\/\/127\.0\.0\.1:\d+: running server\.apply here \(orchestrator\.fallback_to_direct\)/)
    const refused = await server$(['apply', planFile, '--via-orch', '-e', 'strict'])
    expect(refused.code).toBe(1)
    expect(refused.stdout).toBe('')
    expect(refused.stderr.trim().split('\n')).toHaveLength(1)
    expect(refused.stderr).toMatch(/server\.apply must run orchestrated \(--via-orch\) but no orchestrator answers at/)
  }, 120_000)

  it('Ctrl-C detaches: the workflow keeps running and finishes', async () => {
    const child = spawn(process.execPath, [join(binDir, 'prov-server'), 'apply', planFile, '--via-orch'], {
      cwd: ws.path,
      env: { ...process.env, ...ws.env, ...devEnv, NO_COLOR: '1' } as NodeJS.ProcessEnv,
      stdio: ['ignore', 'pipe', 'pipe'],
    })
    let stderr = ''
    let stopped = false
    const submitted = new Promise<void>((resolve) => {
      child.stderr.on('data', (d: Buffer) => {
        stderr += d.toString()
        // Hold the orchestrator still so the workflow cannot finish before the interrupt.
        if (!stopped && workflowIdOf(stderr)) {
          stopped = server.kill('SIGSTOP')
          resolve()
        }
      })
    })
    try {
      await submitted
      child.kill('SIGINT')
      expect(await waitExit(child, 60_000)).toBe(130)
    } finally {
      server.kill('SIGCONT')
    }
    const id = workflowIdOf(stderr) as string
    expect(stderr).toMatch(new RegExp(`detached: workflow ${id} keeps running on the orchestrator; follow it with prov-orch watch ${id}`))
    await waitFor(async () => (await workflow(id)).status === 'succeeded', 60_000, 100)
  }, 120_000)
})
