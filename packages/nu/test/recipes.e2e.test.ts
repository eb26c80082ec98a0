import { copyFileSync, existsSync } from 'node:fs'
import { join } from 'node:path'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { binDir, repoRoot, runCli, runProcess, tempWorkspace } from '../../../tests/helpers/cli'
import { prerequisitesMet, sandboxPrerequisites } from '../../../tests/helpers/prerequisites'
import { justPath, NU_VERSIONS } from '../../../tests/helpers/tools'
import { cleanupPrefix, tearDownSandboxes, useSubnet } from '../../server/test/helpers/local'
import { runNu } from './helpers'

// Real sandboxes on a subnet and bridge of their own (run under flock /tmp/prov-e2e.lock).
const SUBNET = '10.213.6.0/24'
const BRIDGE = 'provt6'

const canSandbox = prerequisitesMet('templates/recipes against local sandboxes', sandboxPrerequisites)

type Ws = Awaited<ReturnType<typeof tempWorkspace>>
let ws: Ws

describe.skipIf(!canSandbox)('templates/recipes: real make and real just against local sandboxes (root)', () => {
  const env = () => ({ ...ws.env, PATH: `${binDir}:${process.env.PATH}` })
  const make = (args: string[]) => runProcess('make', ['-s', ...args], { env: env(), cwd: ws.path, timeoutMs: 300_000 })
  const just = (args: string[]) => runProcess(justPath(), args, { env: env(), cwd: ws.path, timeoutMs: 300_000 })
  const servers = async () => (await runCli('prov-server', ['list'], { env: ws.env, cwd: ws.path })).json<{ name: string; status: string }[]>()

  beforeAll(async () => {
    cleanupPrefix(BRIDGE)
    ws = await tempWorkspace('recipes', 'full')
    useSubnet(ws.path, SUBNET, BRIDGE)
    for (const file of ['Makefile', 'justfile']) copyFileSync(join(repoRoot, 'templates/recipes', file), join(ws.path, file))
  })

  afterAll(() => tearDownSandboxes(ws, BRIDGE, { verify: false }))

  it('make plan, apply and install create the servers and install a taskserv on each', async () => {
    const plan = await make(['plan', 'INFRA=demo'])
    expect(plan.code, plan.stderr).toBe(0)
    expect(existsSync(join(ws.path, 'plan-demo.json'))).toBe(true)
    const apply = await make(['apply'])
    expect(apply.code, apply.stderr).toBe(0)
    expect((await servers()).map((s) => `${s.name}:${s.status}`).sort()).toEqual(['db-01:running', 'web-01:running', 'web-02:running'])
    // A server deleted by hand makes the saved plan stale: apply refuses it, plan plans again.
    const deleted = await runCli('prov-server', ['delete', 'web-02', '--yes'], { env: ws.env, cwd: ws.path })
    expect(deleted.code, deleted.stderr).toBe(0)
    const stale = await make(['apply'])
    expect(stale.code).toBe(2)
    expect(stale.stderr).toMatch(/stale/)
    const replan = await make(['plan', 'INFRA=demo'])
    expect(replan.code, replan.stderr).toBe(0)
    expect(replan.stdout).not.toMatch(/Nothing to be done|up to date/)
    expect(existsSync(join(ws.path, 'plan-demo.json.tmp'))).toBe(false)
    const reapply = await make(['apply'])
    expect(reapply.code, reapply.stderr).toBe(0)
    expect((await servers()).map((s) => `${s.name}:${s.status}`).sort()).toEqual(['db-01:running', 'web-01:running', 'web-02:running'])
    const install = await make(['install', 'TASKSERVS=hello'])
    expect(install.code, install.stderr).toBe(0)
    const status = await make(['status'])
    expect(status.code, status.stderr).toBe(0)
    const records = JSON.parse(status.stdout) as { server: string; taskserv: string; status: string }[]
    expect(
      records
        .filter((r) => r.taskserv === 'hello')
        .map((r) => r.server)
        .sort(),
    ).toEqual(['db-01', 'web-01', 'web-02'])
  })

  it('a failing command inside a pipe fails the make target with its exit code', async () => {
    const r = await make(['install', 'TASKSERVS=nosuch'])
    expect(r.code).not.toBe(0)
    expect(r.stderr).toMatch(/nosuch/)
  })

  it.each(NU_VERSIONS)('nu %s: prov server list | where status == running | length', async (version) => {
    const r = await runNu(version, 'prov server list | where status == running | length', { env: ws.env, cwd: ws.path })
    expect(r.code, r.stderr).toBe(0)
    expect(r.stdout.trim()).toBe('3')
    const piped = await runNu(version, 'prov server list | where name == "web-01" | prov taskserv status | get 0.server', { env: ws.env, cwd: ws.path })
    expect(piped.code, piped.stderr).toBe(0)
    expect(piped.stdout.trim()).toBe('web-01')
  })

  it.each(NU_VERSIONS)('nu %s: prov server exec all --command streams one record per server', async (version) => {
    const r = await runNu(version, 'prov server exec all --command hostname --out ndjson | describe', { env: ws.env, cwd: ws.path })
    expect(r.code, r.stderr).toBe(0)
    expect(r.stdout).toMatch(/stream/)
    const records = await runNu(version, 'prov server exec all --command [echo -n ok] --out ndjson | select server exit_code stdout | to json --raw', {
      env: ws.env,
      cwd: ws.path,
    })
    expect(records.code, records.stderr).toBe(0)
    const rows = JSON.parse(records.stdout) as { server: string; exit_code: number; stdout: string }[]
    expect(rows.map((row) => `${row.server}:${row.exit_code}:${row.stdout}`).sort()).toEqual(['db-01:0:ok', 'web-01:0:ok', 'web-02:0:ok'])
  })

  it('just plan, apply (nothing to do), install, status and destroy', async () => {
    const list = await just(['--list'])
    expect(list.code, list.stderr).toBe(0)
    expect(list.stdout).toMatch(/install \+taskservs="redis"/)
    for (const recipe of [['plan', 'demo'], ['apply', 'demo'], ['install', 'hello'], ['status']]) {
      const r = await just(recipe)
      expect(r.code, `just ${recipe.join(' ')}: ${r.stderr}`).toBe(0)
    }
    expect(JSON.parse((await just(['status'])).stdout).length).toBeGreaterThanOrEqual(3)
    const destroy = await just(['destroy'])
    expect(destroy.code, destroy.stderr).toBe(0)
    expect(await servers()).toEqual([])
    expect(existsSync(join(ws.path, 'plan-demo.json'))).toBe(false)
  })
})
