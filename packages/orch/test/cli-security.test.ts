import { appendFileSync, chmodSync, existsSync, readFileSync, statSync, writeFileSync } from 'node:fs'
import { join } from 'node:path'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { runCli, tempWorkspace } from '../../../tests/helpers/cli'
import { devEnv } from './helpers'

type Ws = Awaited<ReturnType<typeof tempWorkspace>>
let ws: Ws
const secret = `pw-${Math.random().toString(36).slice(2)}-never-stored`
const orch = (args: string[], options: { input?: string; env?: Record<string, string> } = {}) =>
  runCli('prov-orch', args, { env: { ...ws.env, ...devEnv, PROV_SECRET_DB_PASSWORD: secret, ...options.env }, cwd: ws.path, input: options.input })
const file = (name: string, text: string) => {
  const path = join(ws.path, name)
  writeFileSync(path, text)
  return path
}

beforeAll(async () => {
  ws = await tempWorkspace('orchsec', 'minimal')
  appendFileSync(join(ws.path, 'prov.config.yaml'), 'secrets:\n  provider: env\n')
}, 120_000)
afterAll(() => ws?.cleanup())

describe('prov-orch run in a workspace: secrets, files, errors', () => {
  it('a secret reference reaches the step; its value is never in the store files, the status or the logs; state files are 0600 in 0700', async () => {
    const wf = file(
      'deploy.yaml',
      [
        'name: with-secret',
        'defaults:',
        '  env: {DB_PW: {secret: db/password}}',
        'steps:',
        '  - id: a',
        '    run: echo "connecting with $DB_PW"; echo "password is $PW" >&2',
        '    env: {PW: {secret: db/password}}',
        '',
      ].join('\n'),
    )
    const r = await orch(['run', wf])
    expect(r.code, r.stderr).toBe(0)
    expect(r.json().steps[0].output).toBe('connecting with [redacted]')
    expect(r.stdout + r.stderr).not.toContain(secret)
    const logs = await orch(['logs', r.json().id])
    expect(logs.stdout).toContain('[redacted]')
    expect(logs.stdout).not.toContain(secret)
    const state = join(ws.path, '.prov')
    const mode = (p: string) => (statSync(p).mode & 0o777).toString(8)
    expect(mode(state)).toBe('700')
    // (The -wal and -shm files are gone after the last connection closed; they share the database's mode.)
    const files = ['orch.db', 'orch.db-wal', 'orch.db-shm'].map((f) => join(state, f)).filter((f) => existsSync(f))
    for (const f of files) {
      expect(mode(f), f).toBe('600')
      expect(readFileSync(f).includes(secret), f).toBe(false)
    }
    // The reference is what is stored.
    expect(files.map((f) => readFileSync(f).toString('latin1')).join('')).toContain('db/password')
  })

  it('a multi-line secret is redacted line by line: a failing step that prints it leaves no line in the step error, the CLI error, the logs or the store', async () => {
    const tag = Math.random().toString(36).slice(2, 8)
    const multi = `line1-SECRETAAA${tag}\nline2-SECRETBBB${tag}`
    const wf = file(
      'multiline.yaml',
      ['name: multiline', 'steps:', '  - id: a', '    run: printf "%s\\n" "$M" >&2; exit 9', '    env: {M: {secret: t/ml}}', ''].join('\n'),
    )
    const r = await orch(['run', wf], { env: { PROV_SECRET_T_ML: multi } })
    expect(r.code).toBe(1)
    expect(r.stderr).toMatch(/exit 9: \[redacted\]/)
    const all = r.stdout + r.stderr + (await orch(['logs', r.json().id])).stdout
    for (const line of multi.split('\n')) expect(all).not.toContain(line)
    const state = join(ws.path, '.prov')
    for (const f of ['orch.db', 'orch.db-wal'].map((f) => join(state, f)).filter((f) => existsSync(f)))
      for (const line of multi.split('\n')) expect(readFileSync(f).includes(line), f).toBe(false)
  })

  it('argv: a template inside a larger argument or after a script flag is refused at validation (exit 2, naming the step, hint env:)', async () => {
    const cases: [string, string][] = [
      ['[env, sh, -c, "echo {{steps.a.output.x}}"]', 'run[3]'],
      ['[/usr/bin/env, bash, -c, "echo {{steps.a.output.x}}"]', 'run[3]'],
      ['[env, A=1, sh, -c, "echo {{steps.a.output.x}}"]', 'run[4]'],
      ['[nice, sh, -c, "echo {{steps.a.output.x}}"]', 'run[3]'],
      ['[timeout, "5", sh, -c, "echo {{steps.a.output.x}}"]', 'run[4]'],
      ['[setsid, sh, -c, "echo {{steps.a.output.x}}"]', 'run[3]'],
      ['[stdbuf, -o0, sh, -c, "echo {{steps.a.output.x}}"]', 'run[4]'],
      ['[python3, -c, "print({{steps.a.output.x}})"]', 'run[2]'],
      ['[perl, -e, "{{steps.a.output.x}}"]', 'run[2]'],
      ['[xargs, sh, -c, "echo {{steps.a.output.x}}"]', 'run[3]'],
      ['[sh, -c, "{{steps.a.output.x}}"]', 'run[2]'],
      ['[echo, "--name={{steps.a.output.x}}"]', 'run[1]'],
    ]
    for (const [run, at] of cases) {
      const wf = file('inject.yaml', `name: inject\nsteps:\n  - id: a\n    run: "true"\n  - id: b\n    depends_on: [a]\n    run: ${run}\n`)
      const r = await orch(['validate', wf])
      expect(r.code, `${run}: ${r.stderr}`).toBe(2)
      expect(r.stderr.trim().split('\n'), run).toHaveLength(1)
      expect(r.stderr, run).toContain(`steps[1].${at}`)
      expect(r.stderr, run).toMatch(/hint: .*env: \{X: /)
    }
    // Rolling targets too.
    const rolling = file(
      'rolling.yaml',
      'name: r\nstrategy:\n  targets: [a, b]\n  step:\n    run: [env, sh, -c, "echo {{target}}"]\n  rolling: {batch_size: 1}\n',
    )
    const rr = await orch(['validate', rolling])
    expect(rr.code, rr.stderr).toBe(2)
    expect(rr.stderr).toContain('strategy.step.run[3]')
    // Still allowed: whole-argument values, and templates in the script of a shell run directly (values in env).
    const ok = file(
      'ok.yaml',
      'name: ok\nsteps:\n  - id: a\n    run: {builtin: noop}\n    input: {x: "a; touch /tmp/p"}\n  - id: b\n    depends_on: [a]\n    run: [sh, -c, "echo {{steps.a.output.x}}"]\n  - id: c\n    depends_on: [a]\n    run: [echo, "{{steps.a.output.x}}"]\n  - id: d\n    depends_on: [a]\n    run: [bash, -c, --, "echo {{steps.a.output.x}}"]\n',
    )
    const r = await orch(['run', ok])
    expect(r.code, r.stderr).toBe(0)
    const steps = r.json().steps as { id: string; output: unknown }[]
    expect(steps.map((s) => s.output)).toEqual([{ x: 'a; touch /tmp/p' }, 'a; touch /tmp/p', 'a; touch /tmp/p', 'a; touch /tmp/p'])
  })

  it('values reaching bash arithmetic or an option position: refused at validation (one line, step and construct) or the step fails at run time', async () => {
    const marker = join(ws.path, 'p10-x')
    for (const run of [
      '"echo $(( {{steps.a.output.x}} + 1 ))"',
      '[bash, -c, "[[ {{steps.a.output.x}} -eq 1 ]]"]',
      '"printf %s {{steps.a.output.x}} | sh"',
      '[nice, "{{steps.a.output.x}}"]',
    ]) {
      const wf = file('arith.yaml', `name: arith\nsteps:\n  - id: a\n    run: "true"\n  - id: b\n    depends_on: [a]\n    run: ${run}\n`)
      const r = await orch(['validate', wf])
      expect(r.code, `${run}: ${r.stderr}`).toBe(2)
      expect(r.stderr.trim().split('\n'), run).toHaveLength(1)
      expect(r.stderr, run).toMatch(/steps\[1\]\.run.*: (step 'b': )?(a template|the program)/)
    }
    const tar = file(
      'tar.yaml',
      `name: tar\nsteps:\n  - id: a\n    run: {builtin: noop}\n    input: {x: "--checkpoint-action=exec=touch ${marker}"}\n  - id: b\n    depends_on: [a]\n    run: [tar, -cf, /dev/null, --checkpoint=1, "{{steps.a.output.x}}", /dev/null]\n`,
    )
    const r = await orch(['run', tar])
    expect(r.code, r.stderr).toBe(1)
    expect(r.stderr).toMatch(/starts with '-' and would be read as an option/)
    expect(existsSync(marker)).toBe(false)
  })

  it('a secret printed JSON-escaped or shell-quoted is redacted in the output, logs, status and store too', async () => {
    const quoted = `Quo"te\\Back-Slash-Secret-${Math.random().toString(36).slice(2, 8)}`
    const apostrophe = `It's-a-Quoted-Secret-${Math.random().toString(36).slice(2, 8)}`
    const wf = file(
      'escaped.yaml',
      [
        'name: escaped',
        'steps:',
        '  - id: a',
        `    run: [bash, -c, 'jq -cn --arg q "$Q" --arg a "$A" "{q:\\$q,a:\\$a}"; printf "%q %q\\n" "$A" "$Q" >&2; set -x; : "$A"']`,
        '    env: {Q: {secret: q/quoted}, A: {secret: q/apostrophe}}',
        '',
      ].join('\n'),
    )
    const r = await orch(['run', wf], { env: { PROV_SECRET_Q_QUOTED: quoted, PROV_SECRET_Q_APOSTROPHE: apostrophe } })
    expect(r.code, r.stderr).toBe(0)
    expect(r.json().steps[0].output).toEqual({ q: '[redacted]', a: '[redacted]' })
    const status = await orch(['status', r.json().id])
    const logs = await orch(['logs', r.json().id])
    const state = join(ws.path, '.prov')
    const stored = ['orch.db', 'orch.db-wal']
      .map((f) => join(state, f))
      .filter((f) => existsSync(f))
      .map((f) => readFileSync(f).toString('latin1'))
      .join('')
    expect(logs.stdout).toContain('[redacted]')
    for (const text of [r.stdout + r.stderr, status.stdout, logs.stdout, stored])
      for (const tail of [quoted.slice(-14), apostrophe.slice(-14)]) expect(text).not.toContain(tail)
  })

  it('a secret that cannot be resolved: the error keeps the word secret and the reference (never [redacted])', async () => {
    for (const name of ['PASSWORD', 'DB_TOKEN', 'API_KEY', 'SECRET']) {
      const wf = file('missing.yaml', `name: missing\nsteps:\n  - id: a\n    run: "true"\n    env: {${name}: {secret: missing/pw}}\n`)
      const r = await orch(['run', wf])
      expect(r.code, r.stderr).toBe(1)
      expect(r.stderr).toMatch(/step 'a' failed: secret 'missing\/pw' is (neither|not set)/)
      expect(r.stderr).toContain(`(env.${name})`)
      expect(r.stderr).not.toContain('[redacted]')
    }
  })

  it('an invalid secret reference: exit 2, one line whose location survives redaction (text and --log-format json)', async () => {
    const wf = file('secret.yaml', 'name: bad\nsteps:\n  - id: a\n    run: "true"\n    env: {PW: {secret: ../x}}\n')
    let r = await orch(['run', wf])
    expect(r.code).toBe(2)
    expect(r.stderr.trim().split('\n')).toHaveLength(1)
    expect(r.stderr).toMatch(
      /^prov-orch: error: invalid workflow: steps\[0\]\.env\.PW\.secret: invalid secret name '\.\.\/x' \(at \S*\/secret\.yaml: steps\[0\]\.env\.PW\.secret\); hint: /,
    )
    r = await orch(['run', wf, '--log-format', 'json'])
    expect(r.code).toBe(2)
    const lines = r.stderr
      .trim()
      .split('\n')
      .map((l) => JSON.parse(l))
    expect(lines).toHaveLength(1)
    expect(lines[0]).toMatchObject({ level: 'error', code: 2, kind: 'usage', location: `${wf}: steps[0].env.PW.secret` })
  })

  it('a failing run prints the contract’s one error line; in --log-format json with code and kind', async () => {
    const wf = file('fails.yaml', 'name: fails\nsteps:\n  - {id: ok, run: "true"}\n  - {id: broken, run: "exit 4", depends_on: [ok]}\n')
    let r = await orch(['run', wf])
    expect(r.code).toBe(1)
    const errors = r.stderr.split('\n').filter((l) => l.includes('error:'))
    expect(errors).toHaveLength(1)
    expect(errors[0]).toMatch(
      /^prov-orch: error: workflow wf-\S+ failed: step 'broken' failed: exit 4 \(at step broken\); hint: prov-orch logs wf-\S+ --step broken$/,
    )
    r = await orch(['run', wf, '--log-format', 'json'])
    expect(r.code).toBe(1)
    const records = r.stderr
      .trim()
      .split('\n')
      .map((l) => JSON.parse(l))
    const failures = records.filter((l) => l.level === 'error')
    expect(failures).toHaveLength(1)
    expect(failures[0]).toMatchObject({ code: 1, kind: 'failed', location: 'step broken', message: expect.stringMatching(/^workflow wf-\S+ failed/) })
    expect(r.json()).toMatchObject({ status: 'failed' })
  })

  it('a PostgreSQL password in a config file others can read: a warning naming the file, never the password', async () => {
    const config = join(ws.path, 'config', 'pg.yaml')
    writeFileSync(config, 'orchestrator:\n  store: postgres://orch:hunter2-pg@127.0.0.1:1/orch\n')
    chmodSync(config, 0o644)
    let r = await orch(['list', '-e', 'pg'])
    expect(r.code).toBe(1)
    expect(r.stderr).toMatch(/pg\.yaml holds the PostgreSQL password of orchestrator\.store and is readable by others \(mode 644\); chmod 600 it/)
    expect(r.stderr).not.toContain('hunter2')
    chmodSync(config, 0o600)
    r = await orch(['list', '-e', 'pg'])
    expect(r.stderr).not.toMatch(/readable by others/)
  })
})
