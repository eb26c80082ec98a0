import { existsSync, writeFileSync } from 'node:fs'
import { join } from 'node:path'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { runCli, tempWorkspace } from '../../../tests/helpers/cli'
import { NU_VERSIONS } from '../../../tests/helpers/tools'
import { markedProcessesAfter, runNu } from './helpers'

type Ws = Awaited<ReturnType<typeof tempWorkspace>>
let ws: Ws

beforeAll(async () => {
  ws = await tempWorkspace('nuws', 'minimal')
  const keygen = await runCli('prov-kms', ['keygen', '-q'], { env: ws.env, cwd: ws.path })
  expect(keygen.code, keygen.stderr).toBe(0)
  // A workflow whose second step runs until it is stopped.
  writeFileSync(
    join(ws.root, 'slow.yaml'),
    'schema: prov.orch.workflow/v1\nname: slow\nsteps:\n  - id: a\n    run: [sh, -c, "echo ready"]\n  - id: b\n    run: [sleep, "600"]\n    depends_on: [a]\n',
  )
})
afterAll(() => ws?.cleanup())

const serverRecord =
  '{schema: "prov.server/v1", name: "web-01", provider: "ssh", status: "running", hostname: "web-01", ip_address: "10.0.0.5", ' +
  'ssh: {user: "root", port: 22}, labels: {role: "web"}, infra: "demo", cores: 1, memory_mb: 512, disk_gb: 5, zone: null, plan: null, ' +
  'image: null, created_at: ("2026-01-01T00:00:00Z" | into datetime)}'

describe.each(NU_VERSIONS)('nu %s with nu_plugin_prov', (version) => {
  const nu = (script: string, env: Record<string, string | undefined> = {}) => runNu(version, script, { env: { ...ws.env, ...env }, cwd: ws.path })

  it('loads the signatures generated from the command definitions', async () => {
    const r = await nu('help prov server list')
    expect(r.code, r.stderr).toBe(0)
    expect(r.stdout).toContain('List servers')
    expect(r.stdout).toMatch(/--provider <string>: Only servers of this provider/)
    expect(r.stdout).toMatch(/-w, --workspace <string>: Workspace name or path/)
    expect(r.stdout).not.toContain('--log-format')
    const groups = await nu('help prov kms secret')
    expect(groups.stdout).toMatch(/Subcommands:[\s\S]*prov kms secret get/)
  })

  it('returns values, not text: config show is a record with typed fields', async () => {
    const r = await nu('prov config show | describe')
    expect(r.code, r.stderr).toBe(0)
    expect(r.stdout.trim()).toMatch(/^record<workspace: record<name: string>/)
    expect(r.stdout).toContain('debug: record<enabled: bool')
    expect(r.stdout).toContain('port: int')
    const get = await nu('prov config show | get debug.enabled | describe')
    expect(get.stdout.trim()).toBe('bool')
  })

  it('returns lists of lists: deps resolve levels', async () => {
    const r = await nu('prov deps resolve kubernetes cilium | get levels | describe')
    expect(r.code, r.stderr).toBe(0)
    expect(r.stdout.trim()).toBe('list<list<string>>')
    const order = await nu('prov deps resolve kubernetes cilium | get order | to json --raw')
    const names = JSON.parse(order.stdout) as string[]
    expect(names.indexOf('containerd')).toBeLessThan(names.indexOf('kubernetes'))
    expect(names.indexOf('kubernetes')).toBeLessThan(names.indexOf('cilium'))
  })

  it('turns piped records into the stdin of the command (taskserv plan)', async () => {
    const r = await nu(`[${serverRecord}] | prov taskserv plan redis | get servers.0 | to json --raw`)
    expect(r.code, r.stderr).toBe(0)
    expect(JSON.parse(r.stdout)).toMatchObject({ server: 'web-01', ip_address: '10.0.0.5', taskservs: [{ name: 'redis', action: 'install' }] })
  })

  it('turns timestamps into dates', async () => {
    const r = await nu(`prov kms secret set nu/${version} "v" | get updated | describe`)
    expect(r.code, r.stderr).toBe(0)
    expect(r.stdout.trim()).toBe('datetime')
  })

  it('round-trips a string through kms encrypt and decrypt', async () => {
    const r = await nu('"x" | prov kms encrypt | prov kms decrypt')
    expect(r.code, r.stderr).toBe(0)
    expect(r.stdout.trim()).toBe('x')
    const ciphertext = await nu('"s3cret" | prov kms encrypt | describe')
    expect(ciphertext.stdout.trim()).toBe('string')
    const secretless = await nu('"s3cret" | prov kms encrypt')
    expect(secretless.stdout).not.toContain('s3cret')
  })

  it('streams NDJSON as a list stream; first 1 stops the work and leaves no process behind', async () => {
    const mark = `nu-${version}-${process.pid}-${Date.now()}`
    const r = await nu(
      `prov orch run ${join(ws.root, 'slow.yaml')} --out ndjson --quiet --store sqlite:${join(ws.root, `orch-${version}.db`)} | where type == "step.started" and step == "b" | first 1 | get 0.step`,
      { PROV_TEST_MARK: mark },
    )
    expect(r.code, r.stderr).toBe(0)
    expect(r.stdout.trim()).toBe('b')
    // The step (sleep 600) was running when the stream was dropped: it must be gone too.
    expect(await markedProcessesAfter('PROV_TEST_MARK', mark)).toEqual([])
  })

  it('reports a failure as a labelled error with the exit code, and nu exits non-zero', async () => {
    const r = await nu('prov server info nosuch')
    expect(r.code).not.toBe(0)
    expect(r.stderr).toContain('prov::exit::5')
    expect(r.stderr).toContain("unknown server 'nosuch'")
    expect(r.stderr).toContain('prov-server info: not_found')
    expect(r.stderr).toContain('prov server info nosuch')
    const usage = await nu('prov deps resolve')
    expect(usage.stderr).toContain('prov::exit::2')
    expect(usage.stderr).toMatch(/name at least one extension/)
    expect(usage.stderr).toMatch(/help: prov deps resolve kubernetes cilium/)
  })

  it('refuses bad input with a clear error and runs nothing', async () => {
    const flagLike = await nu('prov deps resolve "-x"')
    expect(flagLike.code).not.toBe(0)
    expect(flagLike.stderr).toContain("'-x' looks like a flag")
    const closure = await nu('{|| 1} | prov taskserv plan redis')
    expect(closure.code).not.toBe(0)
    expect(closure.stderr).toMatch(/a closure cannot be input of a prov command/)
    const unknown = await nu('prov server list --nosuch')
    expect(unknown.code).not.toBe(0)
    expect(unknown.stderr).toMatch(/nosuch/)
  })

  it('keeps the --yes rule of destructive commands', async () => {
    const extra = join(ws.root, `extra-${version}`)
    const init = await nu(`prov workspace init extra-${version.replaceAll('.', '-')} --path ${extra} --no-activate | get name`)
    expect(init.code, init.stderr).toBe(0)
    const r = await nu(`prov workspace remove extra-${version.replaceAll('.', '-')} --delete-files`)
    expect(r.code).not.toBe(0)
    expect(r.stderr).toContain('prov::exit::2')
    expect(r.stderr).toMatch(/refusing to .*workspace remove.* without --yes/)
    expect(existsSync(join(extra, 'prov.config.yaml'))).toBe(true)
  })
})
