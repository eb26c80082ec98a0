import { existsSync, readFileSync, writeFileSync } from 'node:fs'
import { join } from 'node:path'
import { expect, it } from 'vitest'
import { Engine, type EngineOptions } from '../src/engine'
import type { OrchStore } from '../src/store/store'
import { compileWorkflow } from '../src/workflow'

export interface Harness {
  /** Stores the engines use (PostgreSQL: two, one per worker). */
  stores(): OrchStore[]
  dir(): string
}

export function lines(file: string): string[] {
  return existsSync(file) ? readFileSync(file, 'utf8').split('\n').filter(Boolean) : []
}

/** Alive and not a zombie (containers may not reap orphans). */
function pidAlive(pid: number) {
  try {
    return !/^\d+ \(.*\) Z/.test(readFileSync(`/proc/${pid}/stat`, 'utf8'))
  } catch {
    return false
  }
}

export interface RunOptions {
  afterSubmit?: (id: string) => Promise<void> | void
  concurrency?: number
  engine?: Partial<EngineOptions>
}

/** Submits a workflow and runs it to the end with one engine per store. */
export async function runWorkflow(h: Harness, raw: unknown, options: RunOptions = {}) {
  const [first, ...others] = h.stores()
  const id = await first.submit(compileWorkflow(raw, { baseDir: h.dir() }))
  const engines = [first, ...others].map(
    (s) => new Engine(s, { until: { workflow: id }, concurrency: options.concurrency ?? 16, pollMs: 20, leaseMs: 5000, ...options.engine }),
  )
  const running = Promise.all(engines.map((e) => e.run()))
  await options.afterSubmit?.(id)
  await running
  return { id, wf: await first.get(id), steps: Object.fromEntries((await first.steps(id)).map((s) => [s.id, s])), events: await first.events(id) }
}

/** The engine semantics, the same for SQLite (one engine) and PostgreSQL (two workers). */
export function engineSuite(h: Harness) {
  const run = (raw: unknown, options: RunOptions = {}) => runWorkflow(h, raw, options)
  const log = (name: string) => join(h.dir(), name)

  it('knows whether an engine serves the store: from its start (lock, heartbeat) until its clean end', async () => {
    const [store] = h.stores()
    expect(await store.engineServing()).toBe(false)
    await store.begin('probe-engine', () => {})
    await store.heartbeat('probe-engine', 30_000)
    expect(await store.engineServing()).toBe(true)
    await store.end('probe-engine')
    expect(await store.engineServing()).toBe(false)
  })

  it('runs a batch across providers: servers -> services, parallel_limit 5', async () => {
    const trace = log(`e8-${Date.now()}`)
    const wf = {
      schema: 'prov.orch.workflow/v1',
      name: 'multi_cloud_deployment',
      version: '1.0.0',
      parallel_limit: 5,
      rollback_enabled: true,
      steps: [
        ...Array.from({ length: 8 }, (_, i) => ({
          id: `server-${i}`,
          run: `echo "start $(date +%s%N)" >> ${trace}; sleep 0.15; echo "end $(date +%s%N)" >> ${trace}; echo '{"provider":"upcloud","name":"srv-${i}"}'`,
          expect_json: true,
        })),
        { id: 'servers', run: { builtin: 'noop' }, input: { value: { provider: 'upcloud' } }, depends_on: Array.from({ length: 8 }, (_, i) => `server-${i}`) },
        {
          id: 'services',
          run: ['sh', '-c', 'echo "{\\"provider\\":\\"aws\\",\\"on\\":\\"$1\\"}"', 'sh', '{{steps.server-0.output.name}}'],
          depends_on: ['servers'],
          expect_json: true,
        },
      ],
    }
    const r = await run(wf)
    expect(r.wf.status).toBe('succeeded')
    expect(r.steps.services.output).toEqual({ provider: 'aws', on: 'srv-0' })
    expect(r.steps.servers.output).toEqual({ provider: 'upcloud' })
    // Order: every server step finished before services started.
    const started = (id: string) => r.events.find((e) => e.type === 'step.started' && e.step === id)?.seq ?? 0
    const finished = (id: string) => r.events.find((e) => e.type === 'step.succeeded' && e.step === id)?.seq ?? Infinity
    for (let i = 0; i < 8; i++) expect(finished(`server-${i}`)).toBeLessThan(started('services'))
    // Parallelism never above 5, across all workers.
    let current = 0
    let max = 0
    for (const line of lines(trace)
      .map((l) => l.split(' '))
      .sort((a, b) => Number(BigInt(a[1]) - BigInt(b[1])) || (a[0] === 'end' ? -1 : 1))) {
      current += line[0] === 'start' ? 1 : -1
      max = Math.max(max, current)
    }
    expect(max).toBeLessThanOrEqual(5)
    expect(max).toBeGreaterThanOrEqual(2)
  })

  it('passes outputs by path, renders templates, skips on a false condition, fails a missing reference clearly', async () => {
    const r = await run({
      name: 'data',
      steps: [
        { id: 'create', run: `echo '{"servers":[{"name":"web-1","ip":"10.0.0.5"}],"count":1}'`, expect_json: true },
        { id: 'name', run: 'cat', input: { from: 'steps.create.output.servers[0].name' } },
        { id: 'greet', run: ['echo', 'hello', '{{steps.create.output.servers[0].ip}}'] },
        { id: 'big', run: 'echo never', when: 'steps.create.output.count > 5' },
        { id: 'small', run: 'echo yes', when: 'steps.create.output.count == 1' },
        { id: 'missing', run: 'cat', input: { from: 'steps.create.output.servers[3].name' }, retries: { max: 2, backoff: 10 } },
      ],
    })
    expect(r.steps.name.output).toBe('web-1')
    expect(r.steps.greet.output).toBe('hello 10.0.0.5')
    expect(r.steps.big.status).toBe('skipped')
    expect(r.steps.small.status).toBe('succeeded')
    expect(r.steps.missing.status).toBe('failed')
    expect(r.steps.missing.attempts).toBe(1)
    expect(r.steps.missing.error).toMatch(/steps\.create\.output\.servers\[3\]\.name does not exist/)
    expect(r.wf.status).toBe('failed')
  })

  it('redacts secret-looking values in step logs and errors', async () => {
    const [store] = h.stores()
    const r = await run({ name: 'redact', steps: [{ id: 'leak', run: 'echo "password=hunter2-very-secret" >&2; exit 1' }] })
    const logs = await store.logs(r.id)
    expect(logs.map((l) => l.text).join('')).toContain('password=[redacted]')
    expect(JSON.stringify(logs)).not.toContain('hunter2')
    expect(r.steps.leak.error).not.toContain('hunter2')
  })

  it('retries with exponential backoff and jitter, then succeeds', async () => {
    const counter = log(`retry-${Date.now()}`)
    const r = await run({
      name: 'retry',
      steps: [{ id: 'flaky', run: `echo x >> ${counter}; [ $(wc -l < ${counter}) -ge 3 ]`, retries: { max: 3, backoff: '40ms' } }],
    })
    expect(r.wf.status).toBe('succeeded')
    expect(r.steps.flaky.attempts).toBe(3)
    const delays = r.events.filter((e) => e.type === 'step.retrying').map((e) => Number(e.data?.delay_ms))
    expect(delays).toHaveLength(2)
    expect(delays[0]).toBeGreaterThanOrEqual(20)
    expect(delays[0]).toBeLessThanOrEqual(40)
    expect(delays[1]).toBeGreaterThanOrEqual(40)
    expect(delays[1]).toBeLessThanOrEqual(80)
  })

  it('kills the whole process group of a step that hangs past its timeout', async () => {
    const pidFile = log(`hang-${Date.now()}`)
    const r = await run({ name: 'hang', steps: [{ id: 'hang', run: `sleep 60 & echo $! > ${pidFile}; sleep 60`, timeout: '600ms' }] })
    expect(r.steps.hang.status).toBe('failed')
    expect(r.steps.hang.error).toMatch(/timed out after 600 ms; process group killed/)
    const child = Number(readFileSync(pidFile, 'utf8'))
    await new Promise((res) => setTimeout(res, 300))
    expect(pidAlive(child)).toBe(false)
  })

  it('fails a command that is not found (no retries) and a step that prints invalid JSON', async () => {
    const r = await run({
      name: 'bad-steps',
      steps: [
        { id: 'nope', run: ['prov-no-such-command-xyz', '--x'], retries: { max: 3, backoff: 10 } },
        { id: 'nope-sh', run: 'prov-no-such-command-xyz' },
        { id: 'json', run: 'echo not json', expect_json: true },
      ],
      parallel_limit: 3,
    })
    expect(r.wf.status).toBe('failed')
    expect(r.steps.nope.error).toMatch(/command not found: prov-no-such-command-xyz/)
    expect(r.steps.nope.attempts).toBe(1)
    const bad = [r.steps['nope-sh'], r.steps.json]
    for (const s of bad) expect(['failed', 'cancelled']).toContain(s.status)
    if (r.steps.json.status === 'failed') expect(r.steps.json.error).toMatch(/invalid JSON/)
    const only = await run({ name: 'json', steps: [{ id: 'json', run: 'echo "{broken"', expect_json: true }] })
    expect(only.steps.json.error).toMatch(/printed invalid JSON \(expect_json\)/)
    const sh = await run({ name: 'sh', steps: [{ id: 'sh', run: 'prov-no-such-command-xyz' }] })
    expect(sh.steps.sh.error).toMatch(/command not found/)
  })

  it('rolls back completed steps in reverse dependency order when a step fails', async () => {
    const trace = log(`rb-${Date.now()}`)
    const r = await run({
      name: 'rb',
      rollback_enabled: true,
      steps: [
        { id: 'a', run: `echo do-a >> ${trace}; echo '{"id":"a-1"}'`, rollback: `echo "undo-a $(cat)" >> ${trace}` },
        { id: 'b', run: `echo do-b >> ${trace}`, rollback: `echo undo-b >> ${trace}`, depends_on: ['a'] },
        { id: 'c', run: 'exit 3', depends_on: ['b'] },
        { id: 'd', run: `echo do-d >> ${trace}`, depends_on: ['c'] },
      ],
    })
    expect(r.wf.status).toBe('rolled_back')
    expect(lines(trace)).toEqual(['do-a', 'do-b', 'undo-b', 'undo-a {"id":"a-1"}'])
    expect(r.steps.a.status).toBe('rolled_back')
    expect(r.steps.b.status).toBe('rolled_back')
    expect(r.steps.c.status).toBe('failed')
    expect(r.steps.d.status).toBe('cancelled')
  })

  it('cancels a running workflow: the running step is killed, queued steps never start', async () => {
    const [store] = h.stores()
    const trace = log(`cancel-${Date.now()}`)
    const r = await run(
      {
        name: 'cancel',
        steps: [
          { id: 'long', run: `echo started >> ${trace}; sleep 60` },
          { id: 'after', run: `echo after >> ${trace}`, depends_on: ['long'] },
        ],
      },
      {
        afterSubmit: async (id) => {
          for (let i = 0; i < 400 && !lines(trace).length; i++) await new Promise((res) => setTimeout(res, 25))
          await store.cancel(id)
        },
      },
    )
    expect(r.wf.status).toBe('cancelled')
    expect(r.steps.long.status).toBe('cancelled')
    expect(r.steps.after.status).toBe('cancelled')
    expect(lines(trace)).toEqual(['started'])
  })

  it('canary: a failing health check rolls the first batch back and leaves the rest untouched', async () => {
    const trace = log(`canary-bad-${Date.now()}`)
    const r = await run({
      name: 'canary-bad',
      strategy: {
        targets: ['t1', 't2', 't3', 't4', 't5'],
        step: { run: `echo "deploy $PROV_ORCH_TARGET" >> ${trace}`, rollback: `echo "rollback {{target}}" >> ${trace}` },
        // biome-ignore lint/suspicious/noThenProperty: the workflow field is named then
        canary: { first: 1, observe: { health: 'exit 1', duration: '600ms', interval: '100ms', threshold: 1 }, then: 'promote' },
      },
    })
    expect(r.wf.status).toBe('rolled_back')
    expect(lines(trace)).toEqual(['deploy t1', 'rollback t1'])
    expect(r.steps['update:t1'].status).toBe('rolled_back')
    for (const t of ['t2', 't3', 't4', 't5']) expect(r.steps[`update:${t}`].status).toBe('cancelled')
    expect(r.steps['update:observe'].error).toMatch(/canary unhealthy/)
  })

  it('canary: a passing health check promotes to all targets (rolling batches after the canary)', async () => {
    const trace = log(`canary-ok-${Date.now()}`)
    const r = await run({
      name: 'canary-ok',
      parallel_limit: 10,
      strategy: {
        targets: ['t1', 't2', 't3', 't4', 't5'],
        step: { run: `echo "deploy {{target}}" >> ${trace}`, rollback: `echo "rollback {{target}}" >> ${trace}` },
        rolling: { batch_size: 2, max_unavailable: 1 },
        canary: { first: 1, observe: { health: 'true', duration: '300ms', interval: '100ms' } },
      },
    })
    expect(r.wf.status).toBe('succeeded')
    expect(lines(trace).sort()).toEqual(['deploy t1', 'deploy t2', 'deploy t3', 'deploy t4', 'deploy t5'])
    expect(lines(trace)[0]).toBe('deploy t1')
    // max_unavailable 1: one target at a time, in order.
    expect(lines(trace)).toEqual(['deploy t1', 'deploy t2', 'deploy t3', 'deploy t4', 'deploy t5'])
    expect((r.steps['update:observe'].output as { passed: number }).passed).toBeGreaterThanOrEqual(2)
  })

  it('rolling update: batch n+1 starts only after batch n finished', async () => {
    const trace = log(`rolling-${Date.now()}`)
    const r = await run({
      name: 'rolling',
      parallel_limit: 10,
      strategy: {
        targets: [{ name: 'a' }, { name: 'b' }, { name: 'c' }, { name: 'd' }, { name: 'e' }, { name: 'f' }],
        step: { run: `echo "start {{target.name}}" >> ${trace}; sleep 0.1; echo "end {{target.name}}" >> ${trace}` },
        rolling: { batch_size: 2 },
      },
    })
    expect(r.wf.status).toBe('succeeded')
    const order = lines(trace)
    const pos = (l: string) => order.indexOf(l)
    for (const [prev, next] of [
      [
        ['a', 'b'],
        ['c', 'd'],
      ],
      [
        ['c', 'd'],
        ['e', 'f'],
      ],
    ]) {
      for (const p of prev) for (const n of next) expect(pos(`end ${p}`)).toBeLessThan(pos(`start ${n}`))
    }
  })

  it('retry re-runs failed and cancelled steps only; completed steps never run again', async () => {
    const [store] = h.stores()
    const trace = log(`retrywf-${Date.now()}`)
    const flag = log(`flag-${Date.now()}`)
    const raw = {
      name: 'retry-wf',
      steps: [
        { id: 'one', run: `echo one >> ${trace}` },
        { id: 'two', run: `echo two >> ${trace}; test -f ${flag}`, depends_on: ['one'] },
        { id: 'three', run: `echo three >> ${trace}`, depends_on: ['two'] },
      ],
    }
    const first = await run(raw)
    expect(first.wf.status).toBe('failed')
    writeFileSync(flag, '')
    await store.retry(first.id, 'two')
    const engines = h.stores().map((s) => new Engine(s, { until: { workflow: first.id }, pollMs: 20 }))
    await Promise.all(engines.map((e) => e.run()))
    expect((await store.get(first.id)).status).toBe('succeeded')
    expect(lines(trace)).toEqual(['one', 'two', 'two', 'three'])
  })

  it('recovers steps of a dead engine: idempotent ones run again, others fail', async () => {
    const [store] = h.stores()
    const safe = await store.submit(compileWorkflow({ name: 'orphan-safe', steps: [{ id: 'safe', run: 'echo again', idempotent: true }] }))
    const unsafe = await store.submit(compileWorkflow({ name: 'orphan-unsafe', steps: [{ id: 'unsafe', run: 'echo again' }] }))
    // A "dead" owner claims both and never reports (its lease is already over).
    expect((await store.claim('dead-worker', 10, -1, safe)).map((c) => c.spec.id)).toEqual(['safe'])
    expect((await store.claim('dead-worker', 10, -1, unsafe)).map((c) => c.spec.id)).toEqual(['unsafe'])
    for (const id of [safe, unsafe]) {
      const engines = h.stores().map((s) => new Engine(s, { until: { workflow: id }, pollMs: 20, leaseMs: 2000 }))
      await Promise.all(engines.map((e) => e.run()))
    }
    const [s1] = await store.steps(safe)
    expect(s1.status).toBe('succeeded')
    expect(s1.attempts).toBe(2)
    const [s2] = await store.steps(unsafe)
    expect(s2.status).toBe('failed')
    expect(s2.error).toMatch(/not idempotent/)
    expect((await store.get(unsafe)).status).toBe('failed')
    for (const id of [safe, unsafe]) expect((await store.events(id)).filter((e) => e.type === 'step.recovered')).toHaveLength(1)
  })
}
