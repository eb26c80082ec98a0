import { existsSync } from 'node:fs'
import { join } from 'node:path'
import { envSecretResolver } from '@prov/core'
import { expect, it } from 'vitest'
import { type Harness, lines, runWorkflow } from './suite'

/** Hostile data in a workflow's run time: outputs and targets never run as code; secrets never stored. */
export function securitySuite(h: Harness) {
  const file = (name: string) => join(h.dir(), `${name}-${Date.now()}-${Math.random().toString(36).slice(2, 6)}`)

  it('step outputs never become shell code: string run (any quoting), sh -c argv, argv, rollback', async () => {
    const marker = file('pwned')
    const payloads = {
      a: `x; touch ${marker}`,
      b: `$(touch ${marker})`,
      c: `"; touch ${marker}; echo "`,
      d: `'; touch ${marker}; echo '`,
      e: `\`touch ${marker}\``,
    }
    const trace = file('undo')
    const r = await runWorkflow(h, {
      name: 'inject-outputs',
      rollback_enabled: true,
      steps: [
        { id: 'src', run: 'cat', input: { value: payloads }, expect_json: true },
        { id: 'plain', run: 'echo {{steps.src.output.a}} {{steps.src.output.b}} {{steps.src.output.e}}' },
        { id: 'dq', run: 'echo "<{{steps.src.output.c}}>"' },
        { id: 'sq', run: "echo '<{{steps.src.output.d}}>'" },
        { id: 'shc', run: ['sh', '-c', 'echo {{steps.src.output.a}}'] },
        { id: 'argv', run: ['echo', '{{steps.src.output.b}}'] },
        { id: 'env', run: 'echo "v=$V"', env: { V: '{{steps.src.output.c}}' } },
        { id: 'undo', run: 'true', rollback: `echo {{steps.src.output.a}} >> ${trace}`, depends_on: ['plain', 'dq', 'sq', 'shc', 'argv', 'env'] },
        { id: 'boom', run: 'exit 3', depends_on: ['undo'] },
      ],
    })
    expect(existsSync(marker)).toBe(false)
    expect(r.steps.plain.output).toBe(`${payloads.a} ${payloads.b} ${payloads.e}`)
    expect(r.steps.dq.output).toBe(`<${payloads.c}>`)
    expect(r.steps.sq.output).toBe(`<${payloads.d}>`)
    expect(r.steps.shc.output).toBe(payloads.a)
    expect(r.steps.argv.output).toBe(payloads.b)
    expect(r.steps.env.output).toBe(`v=${payloads.c}`)
    expect(r.wf.status).toBe('rolled_back')
    expect(lines(trace)).toEqual([payloads.a])
  })

  it('strategy targets never become shell code: rolling steps, their rollbacks and canary health checks', async () => {
    const marker = file('pwned-target')
    const trace = file('targets')
    const targets = [`t1; touch ${marker}`, `$(touch ${marker})`, { name: `x' ; touch ${marker}; '`, ip: `; touch ${marker}` }]
    const r = await runWorkflow(h, {
      name: 'inject-targets',
      strategy: {
        targets,
        step: { run: `echo "deploy {{target}}" >> ${trace}`, rollback: `echo undo {{target}} >> ${trace}` },
        canary: {
          first: 1,
          observe: { health: `echo health {{target}} >> ${trace}; false`, duration: '300ms', interval: '100ms' },
        },
      },
    })
    expect(existsSync(marker)).toBe(false)
    expect(r.wf.status).toBe('rolled_back')
    const seen = lines(trace)
    expect(seen[0]).toBe(`deploy ${targets[0]}`)
    expect(seen).toContain(`health ${JSON.stringify([targets[0]])}`)
    expect(seen.at(-1)).toBe(`undo ${targets[0]}`)
  })

  it('secrets by reference: resolved at run time into the environment; never in status, events or logs', async () => {
    const [store] = h.stores()
    const value = `s3cr3t-${Math.random().toString(36).slice(2)}-value`
    const secrets = envSecretResolver({ PROV_SECRET_DB_PASSWORD: value, PROV_SECRET_API_KEY: `${value}-api` })
    const r = await runWorkflow(
      h,
      {
        name: 'secret-ref',
        defaults: { env: { API: { secret: 'api/key' } } },
        steps: [
          { id: 'use', run: 'test "$PW" = "$EXPECTED" && echo "out $PW" && echo "err $PW $API" >&2', env: { PW: { secret: 'db/password' }, EXPECTED: value } },
          { id: 'leak', run: 'echo "{\\"pw\\": \\"$PW\\"}"; echo "failing with $PW" >&2; exit 7', env: { PW: { secret: 'db/password' } }, depends_on: ['use'] },
        ],
      },
      { engine: { secrets } },
    )
    expect(r.steps.use.status).toBe('succeeded')
    expect(r.steps.use.output).toBe('out [redacted]')
    expect(r.steps.leak.status).toBe('failed')
    const logs = await store.logs(r.id)
    const everything = JSON.stringify([r.wf, Object.values(r.steps), r.events, logs, await store.list({ limit: 500 })])
    expect(everything).not.toContain(value)
    expect(logs.map((l) => l.text).join('')).toContain('err [redacted] [redacted]')
    expect(r.steps.leak.error).toContain('[redacted]')
  })

  it('a secret that cannot be resolved fails its step at once (no retries), naming the reference, not a value', async () => {
    const r = await runWorkflow(
      h,
      { name: 'secret-missing', steps: [{ id: 'a', run: 'true', env: { PW: { secret: 'db/missing' } }, retries: { max: 3, backoff: 10 } }] },
      { engine: { secrets: envSecretResolver({}) } },
    )
    expect(r.steps.a.status).toBe('failed')
    expect(r.steps.a.attempts).toBe(1)
    expect(r.steps.a.error).toMatch(/secret 'db\/missing' is not set \(env\.PW\)/)
  })

  it('stdout past max_output fails the step (no retry); output_overflow truncate keeps and marks it; the engine default applies', async () => {
    const r = await runWorkflow(
      h,
      {
        name: 'output-cap',
        parallel_limit: 3,
        steps: [
          { id: 'fail', run: 'head -c 65536 /dev/zero | tr "\\0" x', max_output: '1KiB', retries: { max: 2, backoff: 10 } },
          { id: 'cut', run: 'head -c 65536 /dev/zero | tr "\\0" y', max_output: 1024, output_overflow: 'truncate' },
          { id: 'default', run: 'head -c 4096 /dev/zero | tr "\\0" z' },
        ],
      },
      { engine: { maxOutput: 2048 } },
    )
    expect(r.steps.fail.status).toBe('failed')
    expect(r.steps.fail.attempts).toBe(1)
    expect(r.steps.fail.error).toMatch(/stdout exceeded max_output \(1024 bytes\)/)
    expect(r.steps.cut.status).toBe('succeeded')
    expect(r.steps.cut.output_truncated).toBe(true)
    expect(r.steps.cut.output).toBe('y'.repeat(1024))
    expect(r.events.find((e) => e.type === 'step.succeeded' && e.step === 'cut')?.data).toMatchObject({ output_truncated: true })
    const [store] = h.stores()
    expect((await store.logs(r.id, 'cut')).map((l) => l.text).join('')).toMatch(/stdout truncated: kept 1024 of 65536 bytes/)
    expect(['failed', 'cancelled']).toContain(r.steps.default.status)
    if (r.steps.default.status === 'failed') expect(r.steps.default.error).toMatch(/max_output \(2048 bytes\)/)
  })
}
