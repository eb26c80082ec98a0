import { randomBytes } from 'node:crypto'
import { hostname } from 'node:os'
import {
  ExitCode,
  isProvError,
  MIN_REDACTED_SECRET_LENGTH,
  processStartTime,
  redactKnownSecrets,
  redactString,
  registerSecretValue,
  type SecretResolver,
} from '@prov/core'
import { commandLine, DEFAULT_MAX_OUTPUT, resolveInput, UnsafeValueError } from './command'
import { evaluateCondition, MissingRefError, type RefScope, renderTemplate } from './expr'
import { killOrphanGroup, runProcess, SHELL_COMMAND_NOT_FOUND } from './runner'
import { isStoreError, isTransientConflict } from './store/db'
import type { ClaimedStep, StepProcess, StepResult } from './store/types'
import type { CompiledStep, RunSpec } from './workflow'

export interface EngineOptions {
  /** Steps running at once in this engine, across workflows (the global limit). */
  concurrency?: number
  /** A claimed step belongs to this engine until the lease runs out without a heartbeat. */
  leaseMs?: number
  pollMs?: number
  /** Stop when this workflow is finished (`run`), or when no workflow is unfinished (`worker --until-idle`). */
  until?: { workflow: string } | 'idle'
  /** Only run steps of this workflow. */
  onlyWorkflow?: string
  onWarn?: (message: string) => void
  /** After stop(), how long running steps may finish before they are killed and left for recovery (default 10 s). */
  stopGraceMs?: number
  /** Resolves `env: {X: {secret: name}}` when a step starts. */
  secrets?: SecretResolver
  /** Bytes of a step's stdout kept unless the step sets max_output (default 16 MiB). */
  maxOutput?: number
}

/** A step that cannot succeed by running again (a missing secret, a bad reference): no retries. */
class PermanentStepError extends Error {}

/** stderr kept per attempt in the step log; the rest is counted, not stored. */
const MAX_STDERR_LOG = 1024 * 1024

/**
 * What an engine needs from a store: these functions, nothing else (no SQL, no dialect). The
 * store decides what taking it, recovering and heartbeats mean for its database.
 */
export interface EngineStore {
  /** Takes the store for this engine (an exclusive store's lock) and recovers steps a dead engine left. */
  begin(owner: string, killOrphan: (p: StepProcess) => void): Promise<void>
  /** Gives the store back (releases what begin took). */
  end(owner: string): Promise<void>
  heartbeat(owner: string, leaseMs: number): Promise<void>
  /** Re-queues or fails steps of workers whose lease ran out; the number recovered. */
  recoverExpired(owner: string, killOrphan: (p: StepProcess) => void): Promise<number>
  completeAndClaim(
    owner: string,
    results: StepResult[],
    limit: number,
    leaseMs: number,
    onlyWorkflow: string | undefined,
    processes: StepProcess[],
  ): Promise<ClaimedStep[]>
  complete(owner: string, results: StepResult[]): Promise<void>
  cancelRequested(workflowIds: string[]): Promise<Set<string>>
  isFinished(workflowId: string): Promise<boolean>
  /** Workflows not finished yet. */
  unfinished(): Promise<number>
}

interface Running {
  claimed: ClaimedStep
  kill?: (reason: 'timeout' | 'cancel') => void
  logs: { stream: 'stdout' | 'stderr' | 'engine'; text: string }[]
  stderrBytes: number
}

/**
 * Claims ready steps from the store, runs them (child processes in their own process group, or
 * built-in kinds), and records each result durably. Results that finish together are committed
 * together (group commit), but nothing that depends on a result starts before its commit.
 */
export class Engine {
  readonly owner = `${hostname()}:${process.pid}:${randomBytes(3).toString('hex')}`
  private readonly concurrency: number
  private readonly leaseMs: number
  private readonly pollMs: number
  private running = new Map<string, Running>()
  private results: StepResult[] = []
  private processes: StepProcess[] = []
  private stopped = false
  private wake: (() => void) | undefined
  private storeDown = false
  private abandoned = false
  private flushing: Promise<void> | undefined

  constructor(
    private readonly store: EngineStore,
    private readonly options: EngineOptions = {},
  ) {
    this.concurrency = options.concurrency ?? 32
    this.leaseMs = options.leaseMs ?? 30_000
    this.pollMs = options.pollMs ?? 100
  }

  private readonly killOrphan = (p: StepProcess) => {
    if (killOrphanGroup(p.pid, p.host, p.start, hostname()))
      this.options.onWarn?.(`killed the process group ${p.pid} of step ${p.stepId} left by a dead engine`)
  }

  stop() {
    this.stopped = true
    this.wake?.()
  }

  private notify() {
    const wake = this.wake
    this.wake = undefined
    wake?.()
  }

  private sleep(ms: number) {
    return new Promise<void>((resolve) => {
      const timer = setTimeout(() => {
        this.wake = undefined
        resolve()
      }, ms)
      this.wake = () => {
        clearTimeout(timer)
        resolve()
      }
    })
  }

  /** Runs until stopped (or the `until` condition), after taking the store (and recovering what a dead engine left). */
  async run(): Promise<void> {
    await this.store.begin(this.owner, this.killOrphan)
    let lastBeat = 0
    let lastRecover = 0
    let lastCancelCheck = 0
    try {
      while (!this.stopped) {
        try {
          // Let finished children report first, so one commit carries many results (group commit).
          await new Promise((r) => setImmediate(r))
          if (this.results.length && this.results.length < this.running.size) await new Promise((r) => setTimeout(r, 2))
          const now = Date.now()
          if (now - lastBeat > this.leaseMs / 3) {
            await this.store.heartbeat(this.owner, this.leaseMs)
            lastBeat = now
          }
          if (now - lastRecover > Math.min(1000, this.leaseMs / 2)) {
            await this.store.recoverExpired(this.owner, this.killOrphan)
            lastRecover = now
          }
          if (now - lastCancelCheck > 200) {
            await this.checkCancels()
            lastCancelCheck = now
          }
          const free = this.concurrency - this.running.size
          const claimed = await this.completeAndClaim(free)
          if (this.storeDown) {
            this.storeDown = false
            this.options.onWarn?.('store reachable again; resuming')
          }
          for (const c of claimed) this.start(c)
          if (!claimed.length && (await this.done())) break
          if (!claimed.length || this.running.size >= this.concurrency) await this.sleep(this.pollMs)
        } catch (error) {
          // A deadlock or serialization failure between workers: the transaction was rolled back; go again.
          if (isTransientConflict(error)) {
            await this.sleep(10 + Math.random() * 40)
            continue
          }
          if (!isStoreError(error)) throw error
          if (!this.storeDown) this.options.onWarn?.(`store unreachable (${(error as Error).message}); no new steps until it returns`)
          this.storeDown = true
          await this.sleep(1000)
        }
      }
      // Stopping: running steps get a grace period; then their process groups are killed and
      // they stay 'running' in the store, to be recovered like after a crash.
      const graceEnd = Date.now() + (this.options.stopGraceMs ?? 10_000)
      while (this.running.size || this.results.length) {
        if (Date.now() > graceEnd && this.running.size) {
          this.abandoned = true
          for (const r of this.running.values()) r.kill?.('cancel')
          this.running.clear()
        }
        try {
          await this.flush()
        } catch (error) {
          if (!isStoreError(error)) throw error
          if (Date.now() > graceEnd) break
        }
        if (this.running.size || this.results.length) await this.sleep(this.pollMs)
      }
    } finally {
      await this.store.end(this.owner).catch(() => {})
    }
  }

  private async done(): Promise<boolean> {
    const until = this.options.until
    if (!until || this.running.size || this.results.length) return false
    if (until === 'idle') return (await this.store.unfinished()) === 0
    return this.store.isFinished(until.workflow)
  }

  private flush(): Promise<void> {
    if (this.flushing) return this.flushing
    if (!this.results.length) return Promise.resolve()
    const batch = this.results
    this.results = []
    this.flushing = this.store
      .complete(this.owner, batch)
      .catch((error) => {
        // Keep the results: they are committed when the store is back.
        this.results = [...batch, ...this.results]
        throw error
      })
      .finally(() => {
        this.flushing = undefined
      })
    return this.flushing
  }

  /** Commits the finished steps and claims new ones in one transaction. */
  private async completeAndClaim(free: number) {
    if (this.flushing) await this.flushing.catch(() => {})
    const batch = this.results
    const processes = this.processes
    this.results = []
    this.processes = []
    try {
      return await this.store.completeAndClaim(this.owner, batch, free, this.leaseMs, this.options.onlyWorkflow, processes)
    } catch (error) {
      // Keep the results: they are committed when the store is back.
      this.results = [...batch, ...this.results]
      this.processes = [...processes, ...this.processes]
      throw error
    }
  }

  private async checkCancels() {
    if (!this.running.size) return
    const ids = [...new Set([...this.running.values()].map((r) => r.claimed.workflowId))]
    const cancelled = await this.store.cancelRequested(ids)
    for (const r of this.running.values()) if (cancelled.has(r.claimed.workflowId)) r.kill?.('cancel')
  }

  private finish(key: string, result: StepResult) {
    if (this.abandoned && !this.running.has(key)) return
    const r = this.running.get(key)
    this.running.delete(key)
    // Logs and errors are for people: secret-looking values never reach the store.
    const logs = [...(r?.logs ?? []), ...(result.logs ?? [])].map((l) => ({ ...l, text: redactString(l.text) }))
    this.results.push({ ...result, error: result.error === undefined ? undefined : redactString(result.error), logs })
    this.notify()
  }

  private start(claimed: ClaimedStep) {
    const key = `${claimed.workflowId}\u0000${claimed.spec.id}`
    const entry: Running = { claimed, logs: [], stderrBytes: 0 }
    this.running.set(key, entry)
    const base = { workflowId: claimed.workflowId, stepId: claimed.spec.id }
    this.execute(claimed, entry).then(
      (result) => this.finish(key, { ...base, ...result }),
      (error) =>
        this.finish(key, {
          ...base,
          status: 'failed',
          error: (error as Error).message,
          retryable: !(error instanceof MissingRefError || error instanceof PermanentStepError || error instanceof UnsafeValueError),
        }),
    )
  }

  private async execute(claimed: ClaimedStep, entry: Running): Promise<Omit<StepResult, 'workflowId' | 'stepId'>> {
    const spec = claimed.spec
    const scope: RefScope = { steps: claimed.scope, target: spec.target, workflow: { id: claimed.workflowId, name: claimed.workflowName } }
    if (spec.when && !evaluateCondition(spec.when, scope)) return { status: 'skipped', error: `condition is false: ${spec.when}` }
    const input = resolveInput(spec.input, scope)
    const env: NodeJS.ProcessEnv = {
      ...process.env,
      ...(await this.stepEnv(spec.env, scope)),
      PROV_ORCH_WORKFLOW_ID: claimed.workflowId,
      PROV_ORCH_STEP_ID: spec.id,
      PROV_ORCH_ATTEMPT: String(claimed.attempt),
      ...(spec.target !== undefined ? { PROV_ORCH_TARGET: typeof spec.target === 'string' ? spec.target : JSON.stringify(spec.target) } : {}),
    }
    const run = spec.run
    if ('builtin' in run) {
      if (run.builtin === 'noop') return { status: 'succeeded', output: input ?? null }
      if (run.builtin === 'sleep') {
        await new Promise((r) => setTimeout(r, run.ms ?? 0))
        return { status: 'succeeded', output: null }
      }
      if (run.builtin === 'fail') return { status: 'failed', error: run.message ?? 'failed (builtin fail)', retryable: true }
      return this.observe(run as Extract<RunSpec, { builtin: 'observe' }>, env, entry, spec.cwd)
    }
    const { argv, display, env: values } = commandLine(run, scope)
    const stdinText = input === undefined ? '' : typeof input === 'string' ? input : JSON.stringify(input)
    const maxOutput = spec.maxOutput ?? this.options.maxOutput ?? DEFAULT_MAX_OUTPUT
    const proc = runProcess(argv, {
      input: stdinText,
      env: { ...env, ...values },
      cwd: spec.cwd,
      timeoutMs: spec.timeoutMs,
      maxStdout: maxOutput,
      onOverflow: spec.outputOverflow,
      onStderr: (text) => this.logStderr(entry, text),
    })
    entry.kill = proc.kill
    if (proc.pid) {
      const start = processStartTime(proc.pid)
      if (start) this.processes.push({ workflowId: claimed.workflowId, stepId: spec.id, pid: proc.pid, host: hostname(), start })
    }
    const r = await proc.result
    if (r.killed === 'cancel') return { status: 'cancelled', error: 'cancelled; process group killed', exitCode: r.code }
    if (r.killed === 'timeout') return { status: 'failed', error: `timed out after ${spec.timeoutMs} ms; process group killed`, exitCode: r.code }
    if (r.killed === 'overflow') {
      return {
        status: 'failed',
        error: `stdout exceeded max_output (${maxOutput} bytes); process group killed (raise max_output, or set output_overflow: truncate)`,
        exitCode: r.code,
        retryable: false,
      }
    }
    const truncated = r.overflowed
    if (truncated) entry.logs.push({ stream: 'engine', text: `stdout truncated: kept ${maxOutput} of ${r.stdoutBytes} bytes (max_output)\n` })
    // Error texts quote stderr: built from redacted text, so a secret (or a line of one) never reaches them.
    const stderrTail = r.stderr ? lastLine(redactKnownSecrets(r.stderr)) : ''
    if (r.notFound && (r.error || r.code === SHELL_COMMAND_NOT_FOUND)) {
      return { status: 'failed', error: `command not found: ${display}${stderrTail ? ` (${stderrTail})` : ''}`, exitCode: r.code, retryable: false }
    }
    if (r.error) return { status: 'failed', error: r.error }
    if (r.code !== 0) {
      // A failed command's stdout (partial results, exit 6) is kept in the step log: `--via-orch` relays it.
      return {
        status: 'failed',
        error: `exit ${r.code ?? r.signal}${stderrTail ? `: ${stderrTail}` : ''}`,
        exitCode: r.code,
        retryable: true,
        logs: r.stdout ? [{ stream: 'stdout', text: r.stdout }] : undefined,
      }
    }
    // A resolved secret that the step printed never reaches the store.
    const text = redactKnownSecrets(r.stdout).trim()
    let output: unknown = text
    if (text) {
      try {
        output = JSON.parse(text)
      } catch {
        if (spec.expectJson) {
          return {
            status: 'failed',
            error: `printed invalid JSON (expect_json): ${JSON.stringify(text.slice(0, 80))}`,
            exitCode: 0,
            retryable: false,
            logs: [{ stream: 'stdout', text: r.stdout.slice(0, 64 * 1024) }],
          }
        }
      }
    } else if (spec.expectJson) {
      return { status: 'failed', error: 'printed nothing, but JSON is expected (expect_json)', exitCode: 0, retryable: false }
    } else output = null
    return { status: 'succeeded', output, exitCode: 0, ...(truncated ? { truncated: true } : {}) }
  }

  private logStderr(entry: Running, text: string) {
    const before = entry.stderrBytes
    entry.stderrBytes += Buffer.byteLength(text)
    if (entry.stderrBytes <= MAX_STDERR_LOG) entry.logs.push({ stream: 'stderr', text })
    else if (before <= MAX_STDERR_LOG) entry.logs.push({ stream: 'engine', text: `stderr past ${MAX_STDERR_LOG} bytes is not stored\n` })
  }

  /** The step's own environment: templates rendered, secret references resolved (values only in memory). */
  private async stepEnv(env: CompiledStep['env'], scope: RefScope): Promise<Record<string, string>> {
    const out: Record<string, string> = {}
    for (const [name, value] of Object.entries(env ?? {})) {
      if (typeof value === 'string') {
        out[name] = renderTemplate(value, scope)
        continue
      }
      if (!this.options.secrets) throw new PermanentStepError(`secret '${value.secret}' (env.${name}) cannot be resolved: this engine has no secret resolver`)
      try {
        out[name] = await this.options.secrets.get(value.secret)
      } catch (error) {
        const permanent = isProvError(error) && error.code !== ExitCode.FAILED
        // The variable goes after the message, not before it as `env.PW: secret 'x' ...`: a
        // password-named field followed by ': ' reads as `field: value` to the redactor.
        const message = `${(error as Error).message} (env.${name})`
        throw permanent ? new PermanentStepError(message) : new Error(message)
      }
      if (out[name].length < MIN_REDACTED_SECRET_LENGTH)
        this.options.onWarn?.(
          `secret '${value.secret}' (env.${name}) is shorter than ${MIN_REDACTED_SECRET_LENGTH} characters: it cannot be redacted from what the step prints`,
        )
      registerSecretValue(out[name])
    }
    return out
  }

  /** Canary observation: runs the health command every interval for the duration; enough passes promote. */
  private async observe(
    run: Extract<RunSpec, { builtin: 'observe' }>,
    env: NodeJS.ProcessEnv,
    entry: Running,
    cwd?: string,
  ): Promise<Omit<StepResult, 'workflowId' | 'stepId'>> {
    const deadline = Date.now() + run.durationMs
    let passed = 0
    let checks = 0
    let cancelled = false
    entry.kill = () => {
      cancelled = true
    }
    const scope: RefScope = { steps: {}, target: entry.claimed.spec.target }
    do {
      const { argv, env: values } = commandLine(run.health, scope)
      const proc = runProcess(argv, { env: { ...env, ...values }, cwd, timeoutMs: Math.max(run.intervalMs, 1000) })
      const prior = entry.kill
      entry.kill = (reason) => {
        prior?.(reason)
        proc.kill(reason)
      }
      const r = await proc.result
      checks++
      if (r.code === 0) passed++
      entry.logs.push({ stream: 'engine', text: `health check ${checks}: ${r.code === 0 ? 'pass' : `fail (exit ${r.code})`}\n` })
      // Fail as soon as the threshold can no longer be met by the remaining time.
      const possibleChecks = checks + Math.max(0, Math.floor((deadline - Date.now()) / run.intervalMs))
      if (passed + (possibleChecks - checks) < run.threshold * possibleChecks) break
      if (cancelled) return { status: 'cancelled', error: 'cancelled' }
      if (Date.now() + run.intervalMs > deadline) break
      await new Promise((r) => setTimeout(r, run.intervalMs))
    } while (Date.now() < deadline)
    const ratio = checks ? passed / checks : 0
    const output = { checks, passed, ratio, threshold: run.threshold }
    if (ratio < run.threshold)
      return { status: 'failed', output, error: `canary unhealthy: ${passed}/${checks} health checks passed (threshold ${run.threshold})`, retryable: false }
    if (run.then === 'rollback') return { status: 'failed', output, error: 'canary healthy; then: rollback', retryable: false }
    return { status: 'succeeded', output }
  }
}

function lastLine(text: string) {
  const lines = text.trim().split('\n')
  return lines[lines.length - 1].slice(0, 200)
}
