import { spawn, spawnSync } from 'node:child_process'
import fc from 'fast-check'
import { describe, expect, it } from 'vitest'
import { ProvError } from '../src/errors'
import { forEachLimit, mapLimit } from '../src/util/concurrency'
import { confirmOrRefuse } from '../src/util/confirm'
import { runFile, runFileOrFail } from '../src/util/exec'
import { isSameProcess, parentPidOf, pidAlive, processStartTime } from '../src/util/process'
import { serialised } from '../src/util/queue'
import { shellJoin, shellQuote } from '../src/util/shell'
import { sshConnectionOptions } from '../src/util/ssh-options'
import { FINISHED_WORKFLOW_STATUSES, isFinishedWorkflowStatus, WORKFLOW_STATUSES } from '../src/util/status'

/** What a real POSIX shell makes of a command line: each argument it passes, NUL-separated. */
function shellWords(line: string): string[] {
  const result = spawnSync('sh', ['-c', `printf '%s\\0' ${line}`], { encoding: 'utf8' })
  expect(result.status, result.stderr).toBe(0)
  return result.stdout.split('\0').slice(0, -1)
}

/** Every character a shell treats specially, plus ordinary and non-ASCII ones. */
const shellCharacters = [...`'"\\$\`;&|<>(){}[]*?~!#%=^ \t\n`, 'a', 'Z', '0', '-', '.', '/', 'é', '日']

describe('shellQuote', () => {
  it('makes any value exactly one word that the shell passes through unchanged', () => {
    const hostile = ['x; touch /tmp/p', '$(id)', '`id`', "it's", '', ' ', 'a\nb', '*', '~', '%1', 'A=B', '-rf', "'", '"', '\\', '$HOME', '!x', '#c']
    for (const value of hostile) expect(shellWords(shellQuote(value)), JSON.stringify(value)).toEqual([value])
    expect(shellWords(shellJoin(hostile))).toEqual(hostile)
  })

  it('round-trips random strings through sh (property)', () => {
    fc.assert(
      fc.property(fc.array(fc.string({ unit: fc.constantFrom(...shellCharacters) }), { minLength: 1, maxLength: 4 }), (values) => {
        expect(shellWords(shellJoin(values))).toEqual(values)
      }),
      { numRuns: 40 },
    )
  })

  it('leaves plain words readable and refuses NUL', () => {
    expect(shellQuote('web-01.example.org:22/x')).toBe('web-01.example.org:22/x')
    expect(shellQuote('A=B')).toBe("'A=B'")
    expect(() => shellQuote('a\0b')).toThrow(ProvError)
  })
})

describe('mapLimit', () => {
  it('keeps order, never runs more than the limit at once, and runs every item once', async () => {
    let running = 0
    let peak = 0
    const seen: number[] = []
    const results = await mapLimit([5, 1, 4, 2, 3, 0], 2, async (n, index) => {
      running++
      peak = Math.max(peak, running)
      seen.push(index)
      for (let i = 0; i < n; i++) await Promise.resolve()
      running--
      return n * 10
    })
    expect(results).toEqual([50, 10, 40, 20, 30, 0])
    expect(peak).toBe(2)
    expect(seen.sort()).toEqual([0, 1, 2, 3, 4, 5])
  })

  it('rejects with the first failure and starts nothing after it', async () => {
    const started: number[] = []
    await expect(
      forEachLimit([1, 2, 3, 4], 1, async (n) => {
        started.push(n)
        if (n === 2) throw new Error('boom')
      }),
    ).rejects.toThrow('boom')
    expect(started).toEqual([1, 2])
    expect(await mapLimit([], 4, async () => 1)).toEqual([])
  })
})

describe('serialised', () => {
  it('runs calls with one key one after another in call order, a failure does not block the next', async () => {
    const order: string[] = []
    const step = (name: string, fail = false) =>
      serialised('k', async () => {
        order.push(`start ${name}`)
        await Promise.resolve()
        order.push(`end ${name}`)
        if (fail) throw new Error(name)
        return name
      })
    const results = await Promise.allSettled([step('a'), step('b', true), step('c')])
    expect(order).toEqual(['start a', 'end a', 'start b', 'end b', 'start c', 'end c'])
    expect(results.map((r) => r.status)).toEqual(['fulfilled', 'rejected', 'fulfilled'])
  })
})

describe('runFile', () => {
  it('gives exit code and output without a shell; a missing program is exit 1 naming it', async () => {
    expect(await runFile('sh', ['-c', 'echo out; echo err >&2; exit 3'])).toMatchObject({ code: 3, stdout: 'out\n', stderr: 'err\n', timedOut: false })
    expect((await runFile('printf', ['%s', '$(id); x'])).stdout).toBe('$(id); x')
    expect((await runFile('cat', [], { input: 'piped' })).stdout).toBe('piped')
    const missing = await runFile('prov-no-such-program', []).catch((e) => e)
    expect(missing).toBeInstanceOf(ProvError)
    expect(missing.code).toBe(1)
    expect(missing.message).toMatch(/cannot run prov-no-such-program: not found/)
    expect(await runFile('sleep', ['5'], { timeoutMs: 100 })).toMatchObject({ timedOut: true, signal: 'SIGTERM' })
    await expect(runFileOrFail('sh', ['-c', 'echo nope >&2; exit 1'], 'probe')).rejects.toThrow('probe failed: nope')
  })
})

describe('process identity', () => {
  it('reads start time and parent of a live process; a dead pid is not alive nor the same process', async () => {
    const start = processStartTime(process.pid)
    expect(start).toMatch(/^\d+$/)
    expect(parentPidOf(process.pid)).toBe(process.ppid)
    expect(pidAlive(process.pid)).toBe(true)
    expect(isSameProcess(process.pid, start)).toBe(true)
    const child = spawn('true')
    const pid = child.pid as number
    await new Promise((resolve) => child.on('exit', resolve))
    expect(pidAlive(0)).toBe(false)
    expect(isSameProcess(pid, start)).toBe(false)
    expect(processStartTime(2 ** 22 + 1)).toBeUndefined()
  })
})

describe('ssh options and workflow statuses', () => {
  it('converts the ssh config section once', () => {
    expect(sshConnectionOptions({ connect_timeout: 10, retries: 3, idle_timeout: 30 })).toEqual({ connectTimeoutMs: 10_000, retries: 3, idleTimeoutMs: 30_000 })
    const withKey = sshConnectionOptions({ connect_timeout: 1, retries: 3, idle_timeout: 2, key_path: '~/k' }, { retries: 1 })
    expect(withKey.privateKeyPath).toMatch(/^\/.*\/k$/)
    expect(withKey.retries).toBe(1)
  })

  it('finished statuses are a subset of the statuses', () => {
    for (const status of FINISHED_WORKFLOW_STATUSES) expect(WORKFLOW_STATUSES).toContain(status)
    expect(isFinishedWorkflowStatus('rolled_back')).toBe(true)
    expect(isFinishedWorkflowStatus('running')).toBe(false)
  })
})

describe('confirmOrRefuse', () => {
  it('proceeds with --yes, refuses off a terminal (exit 2) naming the action', async () => {
    const pipe = { isTTY: false } as NodeJS.ReadStream
    expect(await confirmOrRefuse({ yes: true, what: 'delete servers', input: pipe })).toBe(true)
    const refused = await confirmOrRefuse({ yes: false, what: 'delete servers', input: pipe }).catch((e) => e)
    expect(refused).toBeInstanceOf(ProvError)
    expect(refused.code).toBe(2)
    expect(refused.message).toBe('refusing to delete servers without --yes (stdin is not a terminal, so nobody can confirm)')
  })
})
