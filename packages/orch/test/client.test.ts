import { copyFileSync, mkdirSync } from 'node:fs'
import { join } from 'node:path'
import { chooseExecutionMode, type OrchClientConfig, operationMatches, orchestratorAvailable, submitWorkflow, watchWorkflow } from '@prov/core'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { devEnv, freePort, startOrch, tempDir, waitExit, waitFor } from './helpers'

// The execution rules of a typical workspace: creations and batches orchestrated, reads direct.
const tmp = tempDir()
const e18 = (
  endpoint: string,
  overrides: Partial<OrchClientConfig['orchestrator']> = {},
  mode: OrchClientConfig['execution']['default_mode'] = 'auto',
): OrchClientConfig => ({
  orchestrator: { enabled: true, endpoint, fallback_to_direct: true, timeout_seconds: 60, store: `sqlite:${join(tmp.dir, 'c.db')}`, ...overrides },
  execution: {
    default_mode: mode,
    force_orchestrated: ['server.create', 'cluster.create', 'batch.*', 'workflow.*'],
    force_direct: ['*.list', '*.show', 'help', 'version'],
  },
})

describe('orch-client (core): execution modes and handing work to a running orchestrator', () => {
  let server: ReturnType<typeof startOrch>
  let endpoint = ''
  beforeAll(async () => {
    const port = await freePort()
    endpoint = `http://127.0.0.1:${port}`
    server = startOrch(['serve', '--port', String(port), '--store', `sqlite:${join(tmp.dir, 'c.db')}`], devEnv)
    await waitFor(async () => (await fetch(`${endpoint}/health`).catch(() => undefined))?.ok, 60_000, 100)
  }, 90_000)
  afterAll(async () => {
    server?.kill('SIGTERM')
    if (server) await waitExit(server, 20_000).catch(() => server.kill('SIGKILL'))
    tmp.cleanup()
  })

  it('globs', () => {
    expect(operationMatches('server.list', '*.list')).toBe(true)
    expect(operationMatches('batch.submit', 'batch.*')).toBe(true)
    expect(operationMatches('server.create', 'server.delete')).toBe(false)
  })

  it('server.create -> orchestrated, server.list -> direct, batch.submit -> orchestrated, orchestrator down + fallback -> direct', async () => {
    const up = e18(endpoint)
    expect((await chooseExecutionMode('server.create', up)).mode).toBe('orchestrated')
    expect((await chooseExecutionMode('server.list', up)).mode).toBe('direct')
    expect((await chooseExecutionMode('batch.submit', up)).mode).toBe('orchestrated')
    expect((await chooseExecutionMode('taskserv.install', up)).mode).toBe('orchestrated')
    expect((await chooseExecutionMode('taskserv.install', e18(endpoint, {}, 'direct'))).mode).toBe('direct')
    const down = e18('http://127.0.0.1:1', { store: `sqlite:${join(tmp.dir, 'elsewhere', 'x.db')}` })
    const fallback = await chooseExecutionMode('server.create', down)
    expect(fallback).toMatchObject({ mode: 'direct', reason: expect.stringMatching(/fallback_to_direct/) })
    await expect(chooseExecutionMode('server.create', { ...down, orchestrator: { ...down.orchestrator, fallback_to_direct: false } })).rejects.toThrow(
      /no orchestrator answers/,
    )
    expect((await chooseExecutionMode('server.list', down, { viaOrch: true })).mode).toBe('direct')
    expect(await orchestratorAvailable(down)).toBe(false)
    expect(await orchestratorAvailable(up)).toBe(true)
  })

  it('submitWorkflow + watchWorkflow: work survives the caller, events stream until done', async () => {
    const config = e18(endpoint)
    const { workflow_id } = await submitWorkflow(config, { name: 'from-client', steps: [{ id: 'a', run: 'echo hi' }] })
    const types: string[] = []
    for await (const event of watchWorkflow(config, workflow_id)) types.push(event.type)
    expect(types[0]).toBe('workflow.submitted')
    expect(types.at(-1)).toBe('workflow.succeeded')
    await expect(submitWorkflow(config, { name: 'bad', steps: [{ id: 'a' }] })).rejects.toThrow(/refused the workflow \(400\)/)
  })

  it('without the socket: TCP with the owner token from the token file; without a token the orchestrator is not usable (401)', async () => {
    const viaToken = join(tmp.dir, 'token-only')
    mkdirSync(viaToken)
    copyFileSync(join(tmp.dir, 'orch.token'), join(viaToken, 'orch.token'))
    const tcp = e18(endpoint, { store: `sqlite:${join(viaToken, 'c.db')}` })
    expect(await orchestratorAvailable(tcp)).toBe(true)
    const { workflow_id } = await submitWorkflow(tcp, { name: 'over-tcp', steps: [{ id: 'a', run: 'true' }] })
    expect(workflow_id).toMatch(/^wf-/)
    const stranger = e18(endpoint, { store: `sqlite:${join(tmp.dir, 'nothing-here', 'c.db')}` })
    expect(await orchestratorAvailable(stranger)).toBe(false)
    await expect(submitWorkflow(stranger, { name: 'x', steps: [{ id: 'a', run: 'true' }] })).rejects.toThrow(/refused the workflow \(401\)/)
    expect((await chooseExecutionMode('taskserv.install', stranger)).mode).toBe('direct')
  })
})
