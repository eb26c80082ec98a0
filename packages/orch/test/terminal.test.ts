// What a person sees on a terminal: status and run draw one line per step with its state and
// duration, watch prints event lines; the same commands in a pipe keep their records.
import { writeFileSync } from 'node:fs'
import { join } from 'node:path'
import { afterAll, describe, expect, it } from 'vitest'
import { runCli, runOnTerminal } from '../../../tests/helpers/cli'
import { devEnv, tempDir } from './helpers'

const tmp = tempDir()
const store = `sqlite:${join(tmp.dir, 'terminal.db')}`
const options = { env: devEnv, cwd: tmp.dir, columns: 100 }
writeFileSync(
  join(tmp.dir, 'wf.yaml'),
  'name: terminal-demo\nsteps:\n  - id: fetch\n    run: echo fetched\n  - id: build\n    depends_on: [fetch]\n    run: echo built\n  - id: check\n    depends_on: [fetch]\n    run: exit 3\n',
)

afterAll(() => tmp.cleanup())

describe('prov-orch on a terminal', () => {
  let id = ''

  it('run: event lines with durations while it runs, then one line per step', async () => {
    const result = await runOnTerminal('prov-orch', ['run', 'wf.yaml', '--store', store], options)
    expect(result.code, result.stdout).toBe(1)
    expect(result.stdout).toMatch(/^\d\d:\d\d:\d\d {2}✓ fetch {2}succeeded {2}\d+(ms|\.\ds)$/m)
    expect(result.stdout).toMatch(/^\d\d:\d\d:\d\d {2}✗ check {2}failed {2}\d+(ms|\.\ds) {2}exit 3$/m)
    expect(result.stdout).toMatch(/^✗ terminal-demo {2}wf-\S+ {2}failed {2}2\/3 steps/m)
    expect(result.stdout).toMatch(/^ {2}✓ build +succeeded +\d+(ms|\.\ds) +built$/m)
    expect(result.stdout).not.toContain('"schema"')
    id = /wf-\S+/.exec(result.stdout)?.[0] ?? ''
    expect(id).not.toBe('')
  })

  it('status: a header and one line per step; fitted to a narrow terminal; plain words on a dumb one', async () => {
    const status = await runOnTerminal('prov-orch', ['status', id, '--store', store], options)
    expect(status.code, status.stdout).toBe(0)
    expect(status.stdout).toContain("  error: step 'check' failed: exit 3")
    expect(status.stdout).toMatch(/^ {2}✗ check +failed +\d+(ms|\.\ds) +exit 3$/m)
    const narrow = await runOnTerminal('prov-orch', ['status', id, '--store', store], { ...options, columns: 24 })
    for (const line of narrow.stdout.trimEnd().split('\n')) expect([...line].length, line).toBeLessThanOrEqual(24)
    const dumb = await runOnTerminal('prov-orch', ['status', id, '--store', store], { ...options, env: { ...devEnv, TERM: 'dumb' } })
    expect(dumb.stdout).toMatch(/^ {2}check +failed/m)
    expect(dumb.stdout).not.toMatch(/[✓✗]/)
  })

  it('watch: event lines on a terminal, NDJSON in a pipe; both end with the workflow’s exit code', async () => {
    const watched = await runOnTerminal('prov-orch', ['watch', id, '--store', store], options)
    expect(watched.code).toBe(1)
    expect(watched.stdout).toMatch(/^\d\d:\d\d:\d\d {2}• workflow {2}submitted$/m)
    expect(watched.stdout).toMatch(/workflow {2}failed {2}step 'check' failed: exit 3$/m)
    const piped = await runCli('prov-orch', ['watch', id, '--store', store], { env: devEnv, cwd: tmp.dir })
    expect(piped.code).toBe(1)
    expect(piped.lines().map((e) => e.type)).toContain('step.failed')
    const status = await runCli('prov-orch', ['status', id, '--store', store], { env: devEnv, cwd: tmp.dir })
    expect(status.json()).toMatchObject({ schema: 'prov.orch.workflow.status/v1', status: 'failed' })
  })

  it('escapes control characters from the workflow file and from what steps print: none reaches the terminal', async () => {
    writeFileSync(
      join(tmp.dir, 'evil.yaml'),
      'name: "\\e]0;PWNED\\a\\e[2J\\e[31mRED\\nSECOND"\nsteps:\n  - id: a\n    run: [sh, -c, "printf \'\\\\033[2J\\\\033[31mboom\\\\n\' >&2; exit 3"]\n',
    )
    const run = await runOnTerminal('prov-orch', ['run', 'evil.yaml', '--store', store], options)
    expect(run.code, run.stdout).toBe(1)
    const evilId = /wf-[a-z0-9-]+/.exec(run.stdout)?.[0] ?? ''
    expect(evilId).not.toBe('')
    for (const args of [[], ['status', evilId], ['watch', evilId]]) {
      const out = args.length ? (await runOnTerminal('prov-orch', [...args, '--store', store], options)).stdout : run.stdout
      expect(out, args.join(' ')).not.toMatch(/\u001b\]|\u0007|\u001b\[2J|\u001b\[31m/)
      expect(out).not.toMatch(/^SECOND/m)
    }
    expect(run.stdout).toContain('PWNED')
  })
})
