import { writeFileSync } from 'node:fs'
import { join } from 'node:path'
import { afterAll, describe, expect, it } from 'vitest'
import { runCli } from '../../../tests/helpers/cli'
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
    ['an unknown field', { name: 'x', steps: [{ id: 'a', run: 'true', command: 'x' }] }, /steps\[0\]: unknown field 'command'/],
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
      const rb = await orch(['rollback', id, '--store', store])
      expect(rb.json().status).toBe('rolling_back')
      await waitFor(async () => (await orch(['status', id, '--store', store])).json().status === 'rolled_back', 30_000, 200)
      const retry = await orch(['retry', id, '--store', store])
      expect(retry.json().status).toBe('running')
      const long = file('long.yaml', 'name: long\nsteps:\n  - {id: s, run: "sleep 60"}\n')
      const lid = (await orch(['submit', long, '--store', store])).json().workflow_id
      await waitFor(async () => (await orch(['status', lid, '--store', store])).json().status === 'running', 30_000, 200)
      const cancel = await orch(['cancel', lid, '--store', store])
      expect(cancel.code).toBe(0)
      await waitFor(async () => (await orch(['status', lid, '--store', store])).json().status === 'cancelled', 30_000, 200)
      const waited = await orch(['submit', file('ok2.yaml', 'name: ok2\nsteps:\n  - {id: a, run: "echo 7"}\n'), '--wait', '--store', store])
      expect(waited.code).toBe(0)
      expect(waited.json()).toMatchObject({ status: 'succeeded', steps: [{ id: 'a', output: 7 }] })
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
})
