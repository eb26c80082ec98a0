import { existsSync, mkdirSync, writeFileSync } from 'node:fs'
import { join } from 'node:path'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { runCli, tempWorkspace } from '../../../tests/helpers/cli'
import { NU_VERSIONS } from '../../../tests/helpers/tools'
import { completionsInNu, markedProcessesAfter, runNu } from './helpers'

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
  writeFileSync(
    join(ws.root, 'fail.yaml'),
    'schema: prov.orch.workflow/v1\nname: fail\nsteps:\n  - id: a\n    run: [sh, -c, "echo hi"]\n  - id: b\n    run: [sh, -c, "exit 3"]\n    depends_on: [a]\n',
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
    expect(r.stdout).toContain('--log-format')
    const groups = await nu('help prov kms secret')
    expect(groups.stdout).toMatch(/Subcommands:[\s\S]*prov kms secret get/)
  })

  it('returns values, not text: config show is a record with typed fields', async () => {
    const r = await nu('prov config show | describe')
    expect(r.code, r.stderr).toBe(0)
    expect(r.stdout.trim()).toMatch(/^record<(mode: string, )?workspace: record<name: string>/)
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

  it('ends a failed stream with an error item: reading it (collect, printing) fails the pipeline', async () => {
    const run = `prov orch run ${join(ws.root, 'fail.yaml')} --out ndjson --quiet --store sqlite:${join(ws.root, `fail-${version}.db`)}`
    const collected = await nu(`${run} | collect | length`)
    expect(collected.code).not.toBe(0)
    expect(collected.stderr).toContain('prov::exit::1')
    expect(collected.stderr).toMatch(/step 'b' failed/)
    const printed = await nu(run)
    expect(printed.code).not.toBe(0)
    expect(printed.stderr).toContain('prov::exit::1')
    // The documented gap: a command that only counts passes over the error item.
    const counted = await nu(`${run} | length`)
    expect(counted.code, counted.stderr).toBe(0)
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
    // A flag the command's help does not show is not offered, and choices are enforced.
    const wait = await nu('prov config show --wait')
    expect(wait.code).not.toBe(0)
    expect(wait.stderr).toMatch(/doesn't have flag `--wait`|wait/)
    for (const [script, flag] of [
      ['prov server list --out bogus', 'out'],
      ['prov server list --log-format bogus', 'log-format'],
      ['prov server list --status bogus', 'status'],
    ]) {
      const bad = await nu(script)
      expect(bad.code, script).not.toBe(0)
      expect(bad.stderr).toContain('prov::exit::2')
      expect(bad.stderr).toContain(`invalid value for '--${flag}': 'bogus' (one of`)
    }
  })

  it('passes the command of exec and ssh with --command (Nushell keeps -- for itself)', async () => {
    const missing = await nu('prov server exec all')
    expect(missing.code).not.toBe(0)
    expect(missing.stderr).toContain('prov::exit::2')
    expect(missing.stderr).toMatch(/prov server exec needs the command to run: --command WORDS/)
    // --check shows the command line ssh would run: the list words come after --, a leading - included.
    mkdirSync(join(ws.path, '.prov'), { recursive: true })
    writeFileSync(
      join(ws.path, '.prov/servers.json'),
      JSON.stringify({
        version: 1,
        servers: { 'web-01': { schema: 'prov.server/v1', name: 'web-01', provider: 'ssh', status: 'running', hostname: 'web-01', ip_address: '10.0.0.5' } },
        provider_data: {},
      }),
    )
    const ssh = await nu('prov server ssh web-01 --check --command [ls -la /tmp] | get command | last 3 | to json --raw')
    expect(ssh.code, ssh.stderr).toBe(0)
    expect(JSON.parse(ssh.stdout)).toEqual(['ls', '-la', '/tmp'])
    const line = await nu("prov server exec web-01 --check --command 'uname -a' | get 0.command")
    expect(line.code, line.stderr).toBe(0)
    expect(line.stdout.trim()).toBe('uname -a')
  })

  it('takes a bracket list for a repeatable flag, as well as one value', async () => {
    const list = await nu('prov config show --set [debug.enabled=true output.format=yaml] | select debug.enabled output.format | to json --raw')
    expect(list.code, list.stderr).toBe(0)
    expect(JSON.parse(list.stdout)).toEqual({ 'debug.enabled': true, 'output.format': 'yaml' })
    const variable = await nu('let sets = ["debug.enabled=true"]; prov config show debug --set $sets | get enabled | to json')
    expect(variable.code, variable.stderr).toBe(0)
    expect(variable.stdout.trim()).toBe('true')
    const one = await nu('prov config show debug --set debug.enabled=true | get enabled | to json')
    expect(one.code, one.stderr).toBe(0)
    expect(one.stdout.trim()).toBe('true')
    // A quoted string stays one value: the bracket is then part of the key, which the command refuses.
    const quoted = await nu('prov config show debug --set "[debug.enabled=true]"')
    expect(quoted.code).not.toBe(0)
    expect(quoted.stderr).toContain("unknown config key '[debug'")
  })

  it('types whole-number flags as int and relays --log-format', async () => {
    const help = await nu('help prov server exec')
    expect(help.stdout).toMatch(/-p, --parallel <int>: How many targets at once/)
    expect(help.stdout).toMatch(/--log-format <string>: Format of the log lines/)
    const notInt = await nu('prov server exec all --parallel x --command hostname')
    expect(notInt.code).not.toBe(0)
    expect(notInt.stderr).toMatch(/parse_mismatch/)
    const listed = await nu('prov server list --log-format json | describe')
    expect(listed.code, listed.stderr).toBe(0)
    expect(listed.stdout).toMatch(/^(list|table)/)
  })

  it('shows at most the first 200 characters of a huge value in an error', async () => {
    const r = await nu('prov config show ("x" | fill -c x -w 100000)')
    expect(r.code).not.toBe(0)
    expect(r.stderr).toContain('prov::exit::5')
    // Nushell wraps the message: join its lines before reading the quoted value.
    const message = r.stderr.replace(/\n\s*\|\s*/g, '')
    expect(message).toContain(`'${'x'.repeat(200)}…'`)
    expect(message).not.toContain('x'.repeat(201))
  })

  it('refuses arguments no process can take (NUL byte, oversized) as a usage error at the argument', async () => {
    const nul = await nu('prov kms secret get ("a" + (char -u "0") + "b")')
    expect(nul.code).not.toBe(0)
    expect(nul.stderr).toContain('prov::exit::2')
    expect(nul.stderr).toContain('this argument holds a NUL byte, which a command line cannot carry')
    expect(nul.stderr).not.toMatch(/null bytes|ERR_INVALID_ARG/)
    const nulFlag = await nu('"s" | prov kms encrypt --recipient ("age1" + (char -u "0"))')
    expect(nulFlag.code).not.toBe(0)
    expect(nulFlag.stderr).toContain('the value of --recipient holds a NUL byte')
    const huge = await nu('prov kms secret get ("y" | fill -c y -w 200000)')
    expect(huge.code).not.toBe(0)
    expect(huge.stderr).toContain('prov::exit::2')
    expect(huge.stderr).toMatch(/this argument is longer than a command line allows/)
    expect(huge.stderr).not.toMatch(/E2BIG/)
    const many = await nu('"s" | prov kms encrypt --recipient (1..15 | each {"y" | fill -c y -w 120000})')
    expect(many.code).not.toBe(0)
    expect(many.stderr).toContain('prov::exit::2')
    expect(many.stderr).toMatch(/the arguments are longer than a command line allows/)
    expect(many.stderr).not.toMatch(/E2BIG/)
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

// Nushell asks plugins for argument values from 0.109 on.
const completingVersions = NU_VERSIONS.filter((v) => Number(v.split('.')[1]) >= 109)

describe.each(completingVersions)('nu %s completion through nu_plugin_prov', (version) => {
  it('offers the names of the workspace the shell is in after cd, not where the plugin started', async () => {
    mkdirSync(join(ws.path, 'infra', 'demo'), { recursive: true })
    const env = { ...ws.env, PROV_WORKSPACE: undefined }
    const options = { env, cwd: ws.root, before: `cd ${ws.path}; prov config show debug | ignore` }
    const infra = await completionsInNu(version, 'prov server list --infra ', options)
    expect(infra).toMatch(/--infra demo\b/)
    expect(infra).not.toMatch(/prov\.config\.yaml|extensions\//)
    const workspace = await completionsInNu(version, 'prov server list --workspace ', options)
    expect(workspace).toMatch(/--workspace (.*\s)?nuws\b/)
  })
})
