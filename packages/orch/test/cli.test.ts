import { existsSync, mkdirSync, readdirSync, writeFileSync } from 'node:fs'
import { join } from 'node:path'
import { afterAll, describe, expect, it } from 'vitest'
import { runCli, tempEnv } from '../../../tests/helpers/cli'
import { compileWorkflow } from '../src/workflow'
import { devEnv, startOrch, tempDir, waitExit, waitFor } from './helpers'

const tmp = tempDir()
const db = `sqlite:${join(tmp.dir, 'cli.db')}`
const orch = (args: string[], input?: string) => runCli('prov-orch', args, { env: devEnv, input, cwd: tmp.dir })
const file = (name: string, text: string) => {
  const path = join(tmp.dir, name)
  writeFileSync(path, text)
  return path
}

afterAll(() => tmp.cleanup())

describe('workflow definition', () => {
  it('expresses a batch across providers (servers -> services, parallel_limit 5, rollback)', () => {
    const wf = compileWorkflow({
      schema: 'prov.orch.workflow/v1',
      name: 'multi_cloud_deployment',
      version: '1.0.0',
      parallel_limit: 5,
      rollback_enabled: true,
      steps: [
        { id: 'servers', run: ['prov-server', 'apply', '--infra', 'upcloud-web', '--yes'], expect_json: true, rollback: 'prov-server delete --yes' },
        { id: 'services', run: 'prov-taskserv install redis --infra aws-web', input: { from: 'steps.servers.output' }, depends_on: ['servers'] },
      ],
    })
    expect(wf.parallelLimit).toBe(5)
    expect(wf.rollbackEnabled).toBe(true)
    expect(wf.steps.map((s) => [s.id, s.deps])).toEqual([
      ['servers', []],
      ['services', ['servers']],
    ])
  })

  it('references imply dependencies; strategies expand into steps', () => {
    const wf = compileWorkflow({
      name: 'x',
      steps: [
        { id: 'a', run: 'true' },
        { id: 'b', run: 'echo {{steps.a.output.name}}' },
      ],
      strategy: {
        targets: ['w1', 'w2', 'w3'],
        depends_on: ['b'],
        step: { run: 'echo {{target}}' },
        // biome-ignore lint/suspicious/noThenProperty: the workflow field is named then
        canary: { first: 1, observe: { health: 'true', duration: '1s' }, then: 'promote' },
      },
    })
    expect(wf.steps.find((s) => s.id === 'b')?.deps).toEqual(['a'])
    expect(wf.steps.map((s) => s.id)).toEqual(['a', 'b', 'update:w1', 'update:observe', 'update:w2', 'update:w3'])
    expect(wf.steps.find((s) => s.id === 'update:w2')?.deps).toEqual(['update:observe'])
    expect(wf.rollbackEnabled).toBe(true)
  })

  const bad: [string, unknown, RegExp][] = [
    ['a wrong type, with its path', { name: 'x', steps: [{ id: 'a', run: 'true', retries: { max: 'three' } }] }, /steps\[0\]\.retries\.max: Expected number/],
    ['an unknown field', { name: 'x', steps: [{ id: 'a', run: 'true', command: 'x' }] }, /steps\[0\]: unknown field 'command' \(did you mean 'run'\?\)/],
    [
      'a misspelt field, with the nearest name',
      { name: 'x', steps: [{ id: 'a', run: 'true', dependson: [] }] },
      /unknown field 'dependson' \(did you mean 'depends_on'\?\)/,
    ],
    [
      'an unknown field in a strategy step, among that object’s fields',
      { name: 'x', strategy: { targets: ['a'], step: { run: 'true', needs: [] }, rolling: { batch_size: 1 } } },
      /strategy\.step: unknown field 'needs' \(did you mean 'depends_on'\?\)/,
    ],
    [
      'an unknown field nothing resembles, listing the allowed ones',
      { name: 'x', steps: [{ id: 'a', run: 'true', zzzz: 1 }] },
      /unknown field 'zzzz' \(allowed: id, run, /,
    ],
    [
      'a cycle, with its path',
      {
        name: 'x',
        steps: [
          { id: 'a', run: 'true', depends_on: ['c'] },
          { id: 'b', run: 'true', depends_on: ['a'] },
          { id: 'c', run: 'true', depends_on: ['b'] },
        ],
      },
      /depends_on cycle: a -> c -> b -> a/,
    ],
    [
      'a missing step',
      {
        name: 'x',
        steps: [
          { id: 'servers', run: 'true' },
          { id: 'b', run: 'true', depends_on: ['server'] },
        ],
      },
      /steps\[1\] \(b\)\.depends_on: 'server' is not a step/,
    ],
    [
      'a reference to a missing step output',
      {
        name: 'x',
        steps: [
          { id: 'a', run: 'true' },
          { id: 'b', run: 'cat', input: { from: 'steps.nope.output.x' } },
        ],
      },
      /refers to step 'nope', which does not exist/,
    ],
    ['a bad duration', { name: 'x', steps: [{ id: 'a', run: 'true', timeout: 'soon' }] }, /steps\[0\]\.timeout: 'soon' is not a duration/],
    ['a wrong schema id', { schema: 'prov.orch.workflow/v9', name: 'x', steps: [{ id: 'a', run: 'true' }] }, /schema must be 'prov.orch.workflow\/v1'/],
    ['no steps', { name: 'x' }, /at least one step/],
  ]
  for (const [what, raw, message] of bad) {
    it(`rejects ${what}`, () => {
      expect(() => compileWorkflow(raw)).toThrow(message)
    })
  }
})

describe('prov-orch CLI', () => {
  it('validate / run: invalid workflows exit 2 with one line naming the place; nothing is stored', async () => {
    const cyc = file('cycle.yaml', 'name: c\nsteps:\n  - {id: a, run: "true", depends_on: [b]}\n  - {id: b, run: "true", depends_on: [a]}\n')
    let r = await orch(['run', cyc, '--store', db])
    expect(r.code).toBe(2)
    expect(r.stderr.trim().split('\n')).toHaveLength(1)
    expect(r.stderr).toMatch(/depends_on cycle: a -> b -> a/)
    r = await orch(['run', '-', '--store', db], 'name: [unclosed\n')
    expect(r.code).toBe(2)
    expect(r.stderr).toMatch(/stdin/)
    r = await orch(['run', '-', '--store', db], '{"name": "x", "steps": [{"id": "a", "run": 5}]}')
    expect(r.code).toBe(2)
    expect(r.stderr).toMatch(/steps\[0\]\.run/)
    r = await orch(['submit', join(tmp.dir, 'missing.yaml'), '--store', db])
    expect(r.code).toBe(2)
    expect(r.stderr).toMatch(/cannot read workflow/)
    r = await orch(['list', '--store', db])
    expect(r.code).toBe(0)
    expect(r.json()).toEqual([])
  })

  it('run: in process, events with --out ndjson, exit code of the workflow', async () => {
    const ok = file(
      'ok.yaml',
      'name: ok\nsteps:\n  - {id: a, run: "echo \'{\\"n\\": 1}\'", expect_json: true}\n  - {id: b, run: cat, input: {from: steps.a.output.n}}\n',
    )
    let r = await orch(['run', ok, '--store', db, '--out', 'ndjson'])
    expect(r.code).toBe(0)
    const events = r.lines()
    expect(events.every((e) => e.schema === 'prov.orch.event/v1')).toBe(true)
    expect(events.map((e) => e.type)).toContain('workflow.succeeded')
    r = await orch(['run', '-', '--store', db], JSON.stringify({ name: 'bad', steps: [{ id: 'a', run: ['prov-no-such-tool-xyz'] }] }))
    expect(r.code).toBe(1)
    expect(r.json().steps[0].error).toMatch(/command not found: prov-no-such-tool-xyz/)
    expect(r.stderr).toMatch(/failed/)
  })

  it('submit / status / list / watch / logs / cancel / retry / rollback against a running worker', async () => {
    const store = `sqlite:${join(tmp.dir, 'worker.db')}`
    const wf = file(
      'w.yaml',
      'name: w\nrollback_enabled: false\nsteps:\n  - {id: a, run: "echo to-stderr >&2; echo \'{\\"v\\":1}\'", rollback: "echo undo-a"}\n  - {id: b, run: "exit 4", depends_on: [a]}\n',
    )
    const sub = await orch(['submit', wf, '--store', store])
    expect(sub.code).toBe(0)
    const id = sub.json().workflow_id as string
    expect(sub.json()).toMatchObject({ schema: 'prov.orch.submission/v1', status: 'queued' })
    const worker = startOrch(['worker', '--store', store, '-q'], devEnv)
    try {
      const watch = await orch(['watch', id, '--store', store])
      expect(watch.code).toBe(1)
      expect(watch.lines().at(-1).type).toBe('workflow.failed')
      const status = await orch(['status', id, '--store', store])
      expect(status.json()).toMatchObject({ id, status: 'failed' })
      expect(status.json().steps[1].error).toMatch(/exit 4/)
      const logs = await orch(['logs', id, '--step', 'a', '--store', store])
      expect(logs.json()[0]).toMatchObject({ step: 'a', stream: 'stderr', text: 'to-stderr\n' })
      const list = await orch(['list', '--status', 'failed', '--store', store])
      expect(list.json().map((w: { id: string }) => w.id)).toEqual([id])
      const rb = await orch(['rollback', id, '--store', store, '--yes'])
      expect(rb.json().status).toBe('rolling_back')
      await waitFor(async () => (await orch(['status', id, '--store', store])).json().status === 'rolled_back', 30_000, 200)
      const retry = await orch(['retry', id, '--store', store])
      expect(retry.json().status).toBe('running')
      const long = file('long.yaml', 'name: long\nsteps:\n  - {id: s, run: "sleep 60"}\n')
      const lid = (await orch(['submit', long, '--store', store])).json().workflow_id
      await waitFor(async () => (await orch(['status', lid, '--store', store])).json().status === 'running', 30_000, 200)
      const cancel = await orch(['cancel', lid, '--store', store, '--yes'])
      expect(cancel.code).toBe(0)
      await waitFor(async () => (await orch(['status', lid, '--store', store])).json().status === 'cancelled', 30_000, 200)
      const waited = await orch(['submit', file('ok2.yaml', 'name: ok2\nsteps:\n  - {id: a, run: "echo 7"}\n'), '--wait', '--store', store])
      expect(waited.code).toBe(0)
      expect(waited.json()).toMatchObject({ status: 'succeeded', steps: [{ id: 'a', output: 7 }] })
      expect(waited.stderr).not.toMatch(/no prov-orch engine or worker serves/)
      // Mode ci (here from the job's environment): --wait is implied, the logs are JSON.
      const ciWaited = await runCli('prov-orch', ['submit', file('ok3.yaml', 'name: ok3\nsteps:\n  - {id: a, run: "echo 8"}\n'), '--store', store], {
        env: { ...devEnv, PROV_MODE: 'ci' },
        cwd: tmp.dir,
      })
      expect(ciWaited.code, ciWaited.stderr).toBe(0)
      expect(ciWaited.json()).toMatchObject({ status: 'succeeded', steps: [{ id: 'a', output: 8 }] })
      for (const line of ciWaited.stderr.trim().split('\n')) expect(JSON.parse(line), line).toHaveProperty('level')
      // Two engines on one SQLite file: refused.
      const second = await orch(['run', long, '--store', store])
      expect(second.code).toBe(3)
      expect(second.stderr).toMatch(/another prov-orch engine \(pid \d+ on .*\) already runs on/)
    } finally {
      worker.kill('SIGTERM')
      await waitExit(worker)
    }
  }, 120_000)

  it('bad ids, flags and stores', async () => {
    let r = await orch(['status', 'wf-nope', '--store', db])
    expect(r.code).toBe(5)
    expect(r.stderr).toMatch(/no workflow 'wf-nope'/)
    r = await orch(['status', '--store', db])
    expect(r.code).toBe(2)
    r = await orch(['list', '--status', 'weird', '--store', db])
    expect(r.code).toBe(2)
    r = await orch(['list', '--store', 'postgres://prov@127.0.0.1:1/none'])
    expect(r.code).toBe(1)
    expect(r.stderr).toMatch(/store unreachable: postgres:\/\/prov@127\.0\.0\.1:1\/none/)
    r = await orch(['list', '--store', 'mysql://x'])
    expect(r.code).toBe(2)
    r = await orch(['serve', '--host', '0.0.0.0', '--port', '0', '--store', db])
    expect(r.code).toBe(3)
    expect(r.stderr).toMatch(/refusing to serve on 0\.0\.0\.0 without JWT authentication/)
    r = await orch(['serve', '--host', '0.0.0.0', '--auth', 'jwt', '--store', db])
    expect(r.code).toBe(3)
    expect(r.stderr).toMatch(/--auth jwt needs a key/)
  })

  it('--check previews run, submit, cancel, retry and rollback: exit 0, nothing started, the store unchanged', async () => {
    const store = `sqlite:${join(tmp.dir, 'check.db')}`
    const marker = join(tmp.dir, 'check-ran')
    const wf = file('check.yaml', `name: chk\nsteps:\n  - {id: a, run: "touch ${marker}"}\n`)
    for (const command of ['run', 'submit']) {
      const r = await orch([command, wf, '--store', store, '--check'])
      expect(r.code).toBe(0)
      expect(r.json()).toMatchObject({ schema: 'prov.orch.workflow.compiled/v1', name: 'chk', steps: [{ id: 'a' }] })
      expect(r.stderr).toMatch(/--check: .*nothing was (started|submitted)/)
    }
    expect(existsSync(marker)).toBe(false)
    expect(existsSync(join(tmp.dir, 'check.db'))).toBe(false)
    // A failed workflow to act on: every preview shows the result, the store keeps the original.
    const failed = await orch(['run', '-', '--store', store], JSON.stringify({ name: 'f', steps: [{ id: 'a', run: 'exit 3', rollback: `touch ${marker}` }] }))
    expect(failed.code).toBe(1)
    const id = failed.json().id as string
    const before = (await orch(['status', id, '--store', store])).json()
    const retry = await orch(['retry', id, '--store', store, '--check'])
    expect(retry.code).toBe(0)
    expect(retry.json()).toMatchObject({ id, status: 'running', steps: [{ id: 'a', status: 'queued' }] })
    const rollback = await orch(['rollback', id, '--store', store, '--check'])
    expect(rollback.code).toBe(0)
    expect(rollback.json()).toMatchObject({ id, status: 'rolling_back' })
    const cancel = await orch(['cancel', id, '--store', store, '--check'])
    expect(cancel.code).toBe(0)
    expect(cancel.json()).toMatchObject({ id, status: 'failed' })
    expect((await orch(['status', id, '--store', store])).json()).toEqual(before)
    // A preview refuses what the operation would refuse.
    const succeeded = await orch(['run', wf, '--store', store])
    const again = await orch(['retry', succeeded.json().id, '--store', store, '--check'])
    expect(again.code).toBe(2)
    expect(again.stderr).toMatch(/is succeeded; only a failed or cancelled one can be retried/)
  })

  it('cancel and rollback refuse without --yes off a terminal (exit 2, nothing changed)', async () => {
    const store = `sqlite:${join(tmp.dir, 'confirm.db')}`
    const r = await orch(['run', '-', '--store', store], JSON.stringify({ name: 'f', steps: [{ id: 'a', run: 'exit 3', rollback: 'true' }] }))
    const id = r.json().id as string
    for (const command of ['cancel', 'rollback']) {
      const refused = await orch([command, id, '--store', store])
      expect(refused.code).toBe(2)
      expect(refused.stderr.trim().split('\n')).toHaveLength(1)
      expect(refused.stderr).toMatch(/refusing to (cancel|roll back) workflow wf-\S+ without --yes.*hint: add --yes, or run with --check/)
    }
    expect((await orch(['status', id, '--store', store])).json().status).toBe('failed')
  })

  it('read-only commands outside a workspace create no .prov/ (list prints [], the others exit 5)', async () => {
    const t = tempEnv('prov-orch-outside-')
    const outside = join(t.root, 'elsewhere')
    mkdirSync(outside)
    try {
      const env = { ...devEnv, ...t.env, PROV_ORCH_STORE: undefined }
      const run = (args: string[]) => runCli('prov-orch', args, { env, cwd: outside })
      const list = await run(['list'])
      expect(list.code).toBe(0)
      expect(list.json()).toEqual([])
      for (const command of ['status', 'logs', 'watch', 'cancel', 'retry', 'rollback']) {
        const r = await run([command, 'wf-none', '--yes'])
        expect(r.code, `${command}: ${r.stderr}`).toBe(5)
        expect(r.stderr).toMatch(/no workflow 'wf-none' \(there is no orchestrator store here yet\)/)
      }
      expect(readdirSync(outside)).toEqual([])
    } finally {
      t.cleanup()
    }
  })

  it('submit, submit --wait, watch, retry and rollback say when no engine or worker serves the store', async () => {
    const store = `sqlite:${join(tmp.dir, 'idle.db')}`
    const unserved =
      /no prov-orch engine or worker serves \S*idle\.db: workflow wf-\S+ waits until one does; start 'prov-orch serve' or 'prov-orch worker --until-idle'/
    const wf = file('idle.yaml', 'name: idle\nsteps:\n  - {id: a, run: "true"}\n')
    const sub = await orch(['submit', wf, '--store', store])
    expect(sub.code).toBe(0)
    expect(sub.stderr).toMatch(unserved)
    for (const args of [
      ['submit', wf, '--store', store, '--wait'],
      ['watch', sub.json().workflow_id, '--store', store],
    ]) {
      const waiting = startOrch(args, devEnv)
      try {
        await waitFor(() => unserved.test(waiting.stderrText()), 60_000, 100)
      } finally {
        waiting.kill('SIGTERM')
        await waitExit(waiting)
      }
    }
    const failing = JSON.stringify({ name: 'f', steps: [{ id: 'a', run: 'exit 3', rollback: 'true' }] })
    for (const command of ['retry', 'rollback']) {
      const failed = await orch(['run', '-', '--store', store], failing)
      expect(failed.code).toBe(1)
      const r = await orch([command, failed.json().id, '--store', store, '--yes'])
      expect(r.code).toBe(0)
      expect(r.stderr).toMatch(unserved)
    }
  }, 120_000)
})
