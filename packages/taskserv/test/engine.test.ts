// The task engine (src/engine) with a local transport: the generated program runs in a real
// `sh -s` on this machine instead of over SSH, so levels, skips, timeouts and secrets are checked
// fast and without root. The SSH path itself is covered by e2e.test.ts.
import { spawn } from 'node:child_process'
import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { repoRoot } from '../../../tests/helpers/cli'
import { buildRemoteProgram, parseRemoteResult, type RemoteRunner, runTaskLevels, type TaskItem, type TaskUnit, taskservBundle } from '../src/engine'

let root: string
const commands: string[] = []
const local: RemoteRunner<string> = {
  exec(target, command, options = {}) {
    commands.push(command)
    return new Promise((resolve) => {
      const child = spawn('sh', ['-c', command], { stdio: ['pipe', 'pipe', 'pipe'] })
      let stdout = ''
      let stderr = ''
      child.stdout.on('data', (d: Buffer) => {
        stdout += d
        options.onStdout?.(d)
      })
      child.stderr.on('data', (d: Buffer) => {
        stderr += d
        options.onStderr?.(d)
      })
      child.on('close', (code) => resolve({ code, stdout, stderr }))
      // Every "host" gets its own remote root, as separate machines would.
      child.stdin.end((options.stdin ?? '').split(join(root, 'remote')).join(join(root, 'remote', target)))
    })
  },
}

function taskserv(name: string, scripts: Record<string, string>): string {
  const dir = join(root, 'catalog', name)
  mkdirSync(dir, { recursive: true })
  writeFileSync(join(dir, 'manifest.yaml'), `name: ${name}\nkind: taskserv\nversion: 1.0.0\n`)
  for (const [file, text] of Object.entries(scripts)) writeFileSync(join(dir, file), `#!/bin/sh\n${text}\n`, { mode: 0o755 })
  return dir
}

// check.sh passes once install.sh ran in this run (the folder is uploaded fresh every time).
const DONE = '[ -f "$PROV_DIR/.done" ]'
const MARK = 'touch "$PROV_DIR/.done"'
const unit = (name: string, dir: string, settings: Record<string, unknown> = {}): TaskUnit => ({ name, version: '1.0.0', dir, settings })
const item = (host: string, u: TaskUnit, dependsOn: string[] = []): TaskItem<string> => ({
  host: { name: host, target: host },
  unit: u,
  action: 'install',
  dependsOn,
})
const options = (extra = {}) => ({ runner: local, remoteRoot: join(root, 'remote'), timeoutSec: 5, ...extra })

beforeAll(() => {
  root = mkdtempSync(join(tmpdir(), 'prov-taskrun-'))
})
afterAll(() => rmSync(root, { recursive: true, force: true }))

describe('taskrun engine', () => {
  it('runs check, install, check; records state; a second run is ok', async () => {
    const marker = join(root, 'a.done')
    const dir = taskserv('alpha', {
      'check.sh': `[ -f ${marker} ]`,
      'install.sh': `echo "installing $PROV_TASKSERV $PROV_VERSION on $PROV_SERVER"; touch ${marker}`,
    })
    const [first] = await runTaskLevels([[item('h1', unit('alpha', dir))]], options())
    expect(first).toMatchObject({ status: 'changed', version: '1.0.0', phase: 'install', output: 'installing alpha 1.0.0 on h1' })
    expect(JSON.parse(readFileSync(join(root, 'remote', 'h1', 'alpha.json'), 'utf8'))).toMatchObject({ name: 'alpha', version: '1.0.0', server: 'h1' })
    const [second] = await runTaskLevels([[item('h1', unit('alpha', dir))]], options())
    expect(second.status).toBe('ok')
  })

  it('runs levels in order, stops a failed host, skips dependents, continues elsewhere', async () => {
    const log = join(root, 'order.log')
    const base = taskserv('base', {
      'check.sh': DONE,
      'install.sh': `echo "base $PROV_SERVER" >> ${log}; [ "$PROV_SERVER" != h2 ] || { echo "base broke on h2" >&2; exit 9; }; ${MARK}`,
    })
    const top = taskserv('top', { 'check.sh': DONE, 'install.sh': `echo "top $PROV_SERVER" >> ${log}; ${MARK}` })
    const levels = [
      [item('h1', unit('base', base)), item('h2', unit('base', base))],
      [item('h1', unit('top', top), ['base']), item('h2', unit('top', top), ['base'])],
    ]
    const results = await runTaskLevels(levels, options())
    const by = (h: string, n: string) => results.find((r) => r.server === h && r.taskserv === n)
    expect(by('h1', 'base')?.status).toBe('changed')
    expect(by('h2', 'base')).toMatchObject({ status: 'failed', exit_code: 9, output: 'base broke on h2' })
    expect(by('h1', 'top')?.status).toBe('changed')
    expect(by('h2', 'top')).toMatchObject({ status: 'skipped', reason: 'host_failed' })
    const lines = readFileSync(log, 'utf8').trim().split('\n')
    expect(lines.indexOf('top h1')).toBeGreaterThan(Math.max(lines.indexOf('base h1'), lines.indexOf('base h2')))
    expect(lines).not.toContain('top h2')
  })

  it('with global scope a failure skips dependents on every host', async () => {
    const a = taskserv('ga', { 'check.sh': 'exit 1', 'install.sh': '[ "$PROV_SERVER" != db ]' })
    const b = taskserv('gb', { 'check.sh': 'exit 1', 'install.sh': 'true' })
    const results = await runTaskLevels([[item('db', unit('ga', a))], [item('web', unit('gb', b), ['ga'])]], options({ dependencyScope: 'global' }))
    expect(results.map((r) => `${r.server}:${r.status}`)).toEqual(['db:failed', 'web:skipped'])
    expect(results[1].reason).toBe('requirement_failed')
  })

  it('an item that was not run keeps its own dependents from running (by kind, whatever the message)', async () => {
    const a = taskserv('ca', { 'check.sh': 'exit 1', 'install.sh': 'exit 3' })
    const b = taskserv('cb', { 'check.sh': 'exit 1', 'install.sh': 'true' })
    const c = taskserv('cc', { 'check.sh': 'exit 1', 'install.sh': 'true' })
    const results = await runTaskLevels(
      [[item('h1', unit('ca', a))], [item('h1', unit('cb', b), ['ca'])], [item('h1', unit('cc', c), ['cb'])]],
      options({ stopOnFailure: false }),
    )
    expect(results.map((r) => `${r.taskserv}:${r.status}:${r.reason ?? ''}`)).toEqual([
      'ca:failed:',
      'cb:skipped:requirement_failed',
      'cc:skipped:requirement_failed',
    ])
  })

  it('kills a hanging script at the timeout (its whole process group)', async () => {
    const pidFile = join(root, 'hang.pid')
    const dir = taskserv('hang', { 'check.sh': 'exit 1', 'install.sh': `sleep 300 & echo $! > ${pidFile}; wait` })
    const [r] = await runTaskLevels([[item('h1', unit('hang', dir))]], options({ timeoutSec: 1 }))
    expect(r).toMatchObject({ status: 'failed', exit_code: 124 })
    expect(r.error).toMatch(/timed out after 1s/)
    // Killed (a zombie until reaped at most: not running).
    const pid = Number(readFileSync(pidFile, 'utf8'))
    let state = 'gone'
    try {
      state = readFileSync(`/proc/${pid}/stat`, 'utf8').split(') ')[1]?.[0] ?? 'gone'
    } catch {}
    expect(['gone', 'Z', 'X']).toContain(state)
  })

  it('resolves secret references at run time: the value reaches the script on stdin, never argv, and is redacted', async () => {
    const dir = taskserv('sec', { 'check.sh': DONE, 'install.sh': `echo "len \${#PROV_SETTING_DB_PASSWORD}"; echo "pw $PROV_SETTING_DB_PASSWORD"; ${MARK}` })
    commands.length = 0
    const resolver = { get: async (name: string) => (name === 'db/password' ? 'hunter2-secret-value' : Promise.reject(new Error('unknown'))) }
    const [r] = await runTaskLevels([[item('h1', unit('sec', dir, { db_password: { secret: 'db/password' } }))]], options({ resolver }))
    expect(r.status, JSON.stringify(r)).toBe('changed')
    expect(r.output).toBe('len 20\npw [redacted]')
    expect(commands.join(' ')).not.toContain('hunter2')
    expect(JSON.stringify(r)).not.toContain('hunter2')
  })

  it('a missing resolver for a secret reference fails that item with a clear error', async () => {
    const dir = taskserv('sec2', { 'check.sh': 'exit 1', 'install.sh': 'true' })
    const [r] = await runTaskLevels([[item('h1', unit('sec2', dir, { token: { secret: 'api/token' } }))]], options())
    expect(r.status).toBe('failed')
    expect(r.error).toMatch(/secret reference 'api\/token'.*no secret resolver/)
  })

  it('apt-get failing (exit 100) is a failure, not "unsupported"', async () => {
    const dir = taskserv('aptfail', { 'check.sh': 'exit 1', 'install.sh': 'echo "E: Unable to locate package nosuchpkg" >&2; exit 100' })
    const [r] = await runTaskLevels([[item('h1', unit('aptfail', dir))]], options())
    expect(r).toMatchObject({ status: 'failed', exit_code: 100, phase: 'install' })
    expect(r.reason).toBeUndefined()
    expect(r.error).toMatch(/install\.sh failed with exit code 100/)
  })

  it('prov_unsupported is the one way to say "unsupported here": skipped with its reason, dependents not run', async () => {
    const lib = join(repoRoot, 'extensions', 'taskservs', '_lib')
    const nope = taskserv('nope', {
      'check.sh': '. "$PROV_LIB/service.sh"; prov_unsupported "needs a control plane on $PROV_SERVER"',
      'install.sh': '. "$PROV_LIB/service.sh"; prov_unsupported "needs a control plane on $PROV_SERVER"',
    })
    const after = taskserv('after-nope', { 'check.sh': DONE, 'install.sh': MARK })
    const results = await runTaskLevels([[item('h1', unit('nope', nope))], [item('h1', unit('after-nope', after), ['nope'])]], options({ libDir: lib }))
    expect(results[0]).toMatchObject({ status: 'skipped', reason: 'unsupported', error: 'unsupported on this host: needs a control plane on h1' })
    expect(results[0].output).toMatch(/prov: unsupported on this host: needs a control plane on h1/)
    expect(results[1]).toMatchObject({ status: 'skipped', reason: 'requirement_failed' })
    const [health] = await runTaskLevels([[{ ...item('h1', unit('nope', nope)), action: 'status' as const }]], options({ libDir: lib }))
    expect(health).toMatchObject({ status: 'skipped', reason: 'unsupported', installed: false })
  })

  it('exit 113 without the reason file is a plain failure (no tool says "unsupported" by accident)', async () => {
    const dir = taskserv('bare113', { 'check.sh': 'exit 1', 'install.sh': 'echo unsupported; exit 113' })
    const [r] = await runTaskLevels([[item('h1', unit('bare113', dir))]], options())
    expect(r).toMatchObject({ status: 'failed', exit_code: 113 })
  })

  it('settings reach the scripts byte for byte and are never run as shell', async () => {
    const marker = join(root, 'injected')
    const out = join(root, 'received')
    mkdirSync(out, { recursive: true })
    const values: Record<string, unknown> = {
      semicolon: `x; touch ${marker}`,
      substitution: `$(touch ${marker})`,
      backticks: `\`touch ${marker}\``,
      newlines: `a\nb; touch ${marker}\n\n`,
      edges: `  spaces and\ttabs at the edges\t `,
      quotes: `'single' "double" \\back\\slash \\n`,
      dash: '-n',
      inner: 'a  b   c \\ d',
      empty: '',
      terminator: '__PROV_ENV__',
      unicode: 'ünï çødé ✓ \u00a0nbsp',
      carriage: 'a\rb',
      object: { run: `$(touch ${marker})`, list: [1, 'two'] },
    }
    const names = Object.keys(values)
    const dir = taskserv('echoes', {
      'check.sh': DONE,
      'install.sh': names
        .map((n) => `printf '%s' "$PROV_SETTING_${n.toUpperCase()}" > "$PROV_SETTING_OUT/${n}"`)
        .concat(MARK)
        .join('\n'),
    })
    const [r] = await runTaskLevels([[item('h1', unit('echoes', dir, { ...values, out }))]], options())
    expect(r.status, JSON.stringify(r)).toBe('changed')
    for (const n of names) {
      const value = values[n]
      expect(readFileSync(join(out, n), 'utf8'), n).toBe(typeof value === 'string' ? value : JSON.stringify(value))
    }
    expect(existsSync(marker)).toBe(false)
  })

  it('host variables (labels, addresses from server records) are data too', async () => {
    const marker = join(root, 'label-injected')
    const dir = taskserv('labels', { 'check.sh': DONE, 'install.sh': `printf '%s|%s' "$PROV_LABEL_ROLE" "$PROV_SERVER_IP"; ${MARK}` })
    const host = { name: 'h1', target: 'h1', env: { PROV_LABEL_ROLE: `web'; touch ${marker}; '`, PROV_SERVER_IP: `$(touch ${marker})` } }
    const [r] = await runTaskLevels([[{ host, unit: unit('labels', dir), action: 'install' as const }]], options())
    expect(r.output).toBe(`web'; touch ${marker}; '|$(touch ${marker})`)
    expect(existsSync(marker)).toBe(false)
  })

  it('a setting name or value no variable can carry fails the item before anything runs', async () => {
    const dir = taskserv('badnames', { 'check.sh': 'exit 1', 'install.sh': 'true' })
    const cases: [Record<string, unknown>, RegExp][] = [
      [{ 'a;b': 1 }, /invalid setting name 'a;b'/],
      [{ 'x$(id)': 1 }, /invalid setting name 'x\$\(id\)'/],
      [{ 'db-port': 1, db_port: 2 }, /settings 'db-port' and 'db_port' both become PROV_SETTING_DB_PORT/],
      [{ nul: 'a\0b' }, /PROV_SETTING_NUL .*NUL character/],
      [{ big: 'x'.repeat(200 * 1024) }, /PROV_SETTING_BIG .*larger than 128 KiB/],
    ]
    for (const [settings, message] of cases) {
      commands.length = 0
      const [r] = await runTaskLevels([[item('h1', unit('badnames', dir, settings))]], options())
      expect(r.status).toBe('failed')
      expect(r.error).toMatch(message)
      expect(commands).toEqual([])
    }
    commands.length = 0
    const [r] = await runTaskLevels([[item('h1', unit('badnames', dir))]], options({ env: { 'http-proxy': 'x' } }))
    expect(r.error).toMatch(/invalid variable name 'http-proxy' in taskservs.env/)
    expect(commands).toEqual([])
  })

  it('a plain password-like setting and every line of a multi-line secret are redacted', async () => {
    const dir = taskserv('redact', {
      'check.sh': DONE,
      'install.sh': `echo "pw $PROV_SETTING_ADMIN_PASSWORD"; printf '%s\n' "$PROV_SETTING_TLS_KEY"; ${MARK}`,
    })
    const key = 'line-one-aaaa\nline-two-bbbb'
    const resolver = { get: async () => key }
    const [r] = await runTaskLevels(
      [[item('h1', unit('redact', dir, { admin_password: 'plain-pass-9f8e', tls_key: { secret: 'tls/key' } }))]],
      options({ resolver }),
    )
    expect(r.status, JSON.stringify(r)).toBe('changed')
    expect(r.output).toBe('pw [redacted]\n[redacted]\n[redacted]')
  })

  it('a file whose name is not a plain word fails the item before anything is sent', async () => {
    const dir = taskserv('oddfile', { 'check.sh': 'exit 1', 'install.sh': 'true' })
    writeFileSync(join(dir, "x'; touch y; '.txt"), 'data')
    commands.length = 0
    const [r] = await runTaskLevels([[item('h1', unit('oddfile', dir))]], options())
    expect(r.status).toBe('failed')
    expect(r.error).toMatch(/unsupported file name 'x'; touch y; '\.txt' in a taskserv folder/)
    expect(commands).toEqual([])
  })

  it('bundles the folder plus _lib and parses the result line', () => {
    const lib = join(root, 'lib')
    mkdirSync(lib, { recursive: true })
    writeFileSync(join(lib, 'service.sh'), 'svc_start() { :; }\n')
    const bundle = taskservBundle(taskserv('bundle', { 'check.sh': 'exit 0' }), lib)
    expect(bundle.files.map((f) => f.path).sort()).toEqual(['_lib/service.sh', 'check.sh', 'manifest.yaml'])
    const program = buildRemoteProgram({ PROV_TASKSERV: 'bundle', PROV_SETTING_X: "it's", PROV_SETTING_Y: 'two\nlines' }, bundle)
    // Values are data lines of the environment section, never shell words.
    for (const path of ['../escape.sh', 'a/../../b', './x', "x'y"]) {
      expect(() => buildRemoteProgram({}, { files: [{ path, mode: 0o644, base64: '' }] }), path).toThrow(/unsupported bundle path/)
    }
    expect(program).toContain("\nPROV_SETTING_X r it's\n")
    expect(program).toContain(`\nPROV_SETTING_Y b ${Buffer.from('two\nlines').toString('base64')}\n`)
    expect(parseRemoteResult('noise\n@@PROV_RESULT@@ status=changed phase=install rc=0 version=1.2.3 previous=1.2.2 installed=1\n')).toMatchObject({
      status: 'changed',
      version: '1.2.3',
      previous: '1.2.2',
      flags: { installed: '1' },
    })
    expect(parseRemoteResult('no marker')).toBeUndefined()
  })
})
