import { randomBytes } from 'node:crypto'
import { hostname } from 'node:os'
import { configError, failedError, notFoundError, orchStateDir, parseStoreUrl, usageError } from '@prov/core'
import type { CompiledStep, CompiledWorkflow, RunSpec } from '../workflow'
import { type Db, openPostgres, openSqlite, type Sql } from './db'

export const EVENT_SCHEMA = 'prov.orch.event/v1'
export const WORKFLOW_STATUS = ['queued', 'running', 'rolling_back', 'succeeded', 'failed', 'cancelled', 'rolled_back'] as const
export type WorkflowStatus = (typeof WORKFLOW_STATUS)[number]
export type StepStatus = 'queued' | 'running' | 'succeeded' | 'failed' | 'cancelled' | 'rolled_back' | 'skipped'
const ACTIVE = "('queued','running','rolling_back')"
export const FINISHED: WorkflowStatus[] = ['succeeded', 'failed', 'cancelled', 'rolled_back']

export interface AuditEntry {
  who: string
  method: string
  path: string
  status: number
  workflowId?: string
  /** JSON text, e.g. the count of refused requests a row stands for. */
  detail?: string
}

/** A request that contradicts the workflow's state (API: 409). */
const conflictError = (message: string, options: { hint?: string } = {}) => usageError(message, { ...options, details: { kind: 'conflict' } })

export interface OrchEvent {
  schema: typeof EVENT_SCHEMA
  workflow_id: string
  seq: number
  ts: string
  type: string
  step?: string
  data?: Record<string, unknown>
}

export interface WorkflowRecord {
  schema: 'prov.orch.workflow.status/v1'
  id: string
  name: string
  status: WorkflowStatus
  phase: 'main' | 'rollback'
  error: string | null
  parallel_limit: number
  rollback_enabled: boolean
  cancel_requested: boolean
  created_at: string
  updated_at: string
  started_at: string | null
  finished_at: string | null
  submitted_by: string | null
  steps_total: number
  counts: Record<string, number>
}

export interface StepRecord {
  id: string
  kind: 'main' | 'rollback'
  status: StepStatus
  attempts: number
  output: unknown
  error: string | null
  exit_code: number | null
  owner: string | null
  started_at: string | null
  finished_at: string | null
  depends_on: string[]
  /** The output is only the first max_output bytes of what the step printed (output_overflow: truncate). */
  output_truncated: boolean
}

export interface ClaimedStep {
  workflowId: string
  workflowName: string
  kind: 'main' | 'rollback'
  spec: CompiledStep
  attempt: number
  scope: Record<string, { status: string; output: unknown }>
}

export interface StepResult {
  workflowId: string
  stepId: string
  status: 'succeeded' | 'failed' | 'skipped' | 'cancelled'
  output?: unknown
  error?: string
  exitCode?: number | null
  /** false: do not retry (command not found, bad reference, invalid JSON). */
  retryable?: boolean
  /** stdout went past max_output and was cut (output_overflow: truncate). */
  truncated?: boolean
  logs?: { stream: 'stdout' | 'stderr' | 'engine'; text: string }[]
}

/** Where a running step's process group lives, so a later engine can kill it after a crash. */
export interface StepProcess {
  workflowId: string
  stepId: string
  pid: number
  host: string
  /** Start time of the process (/proc/PID/stat field 22): guards against a reused pid. */
  start: string
}

interface StepRow {
  workflow_id: string
  id: string
  seq: number
  kind: 'main' | 'rollback'
  status: StepStatus
  spec: string
  deps: string
  dependents: string
  pending: number
  attempts: number
  output: string | null
  error: string | null
  exit_code: number | null
  owner: string | null
  lease_until: number | null
  started_at: number | null
  finished_at: number | null
  output_truncated: number | null
}

interface WorkflowRow {
  id: string
  name: string
  status: WorkflowStatus
  phase: 'main' | 'rollback'
  error: string | null
  parallel_limit: number
  rollback_enabled: number | boolean
  cancel_requested: number | boolean
  created_at: number
  updated_at: number
  started_at: number | null
  finished_at: number | null
  submitted_by: string | null
  steps_total: number
}

const iso = (ms: number | null) => (ms === null || ms === undefined ? null : new Date(Number(ms)).toISOString())
const json = (v: unknown) => (v === undefined ? null : JSON.stringify(v))
const parse = (v: string | null) => (v === null || v === undefined ? null : JSON.parse(v))

function ddl(dialect: Db['dialect']): string[] {
  const big = dialect === 'postgres' ? 'BIGINT' : 'INTEGER'
  const serial = dialect === 'postgres' ? 'BIGSERIAL PRIMARY KEY' : 'INTEGER PRIMARY KEY AUTOINCREMENT'
  return [
    `CREATE TABLE IF NOT EXISTS orch_workflows (id TEXT PRIMARY KEY, name TEXT NOT NULL, status TEXT NOT NULL, phase TEXT NOT NULL DEFAULT 'main',
      error TEXT, parallel_limit INTEGER NOT NULL, rollback_enabled INTEGER NOT NULL, cancel_requested INTEGER NOT NULL DEFAULT 0,
      definition TEXT NOT NULL, ev_seq ${big} NOT NULL DEFAULT 0, steps_total INTEGER NOT NULL, submitted_by TEXT,
      created_at ${big} NOT NULL, updated_at ${big} NOT NULL, started_at ${big}, finished_at ${big})`,
    'CREATE INDEX IF NOT EXISTS orch_workflows_status ON orch_workflows (status, created_at)',
    `CREATE TABLE IF NOT EXISTS orch_steps (workflow_id TEXT NOT NULL, id TEXT NOT NULL, seq INTEGER NOT NULL, kind TEXT NOT NULL, status TEXT NOT NULL,
      spec TEXT NOT NULL, deps TEXT NOT NULL, dependents TEXT NOT NULL, pending INTEGER NOT NULL, attempts INTEGER NOT NULL DEFAULT 0,
      next_at ${big} NOT NULL DEFAULT 0, output TEXT, error TEXT, exit_code INTEGER, owner TEXT, lease_until ${big},
      started_at ${big}, finished_at ${big}, pid INTEGER, pid_host TEXT, pid_start TEXT, output_truncated INTEGER, PRIMARY KEY (workflow_id, id))`,
    'CREATE INDEX IF NOT EXISTS orch_steps_ready ON orch_steps (workflow_id, kind, status, pending, seq)',
    'CREATE INDEX IF NOT EXISTS orch_steps_lease ON orch_steps (status, lease_until)',
    `CREATE TABLE IF NOT EXISTS orch_events (workflow_id TEXT NOT NULL, seq ${big} NOT NULL, ts ${big} NOT NULL, type TEXT NOT NULL,
      step TEXT, data TEXT, PRIMARY KEY (workflow_id, seq))`,
    `CREATE TABLE IF NOT EXISTS orch_logs (id ${serial}, workflow_id TEXT NOT NULL, step TEXT NOT NULL, attempt INTEGER NOT NULL,
      stream TEXT NOT NULL, ts ${big} NOT NULL, text TEXT NOT NULL)`,
    'CREATE INDEX IF NOT EXISTS orch_logs_wf ON orch_logs (workflow_id, step, id)',
    `CREATE TABLE IF NOT EXISTS orch_workers (id TEXT PRIMARY KEY, host TEXT NOT NULL, pid INTEGER NOT NULL, started_at ${big} NOT NULL, heartbeat_at ${big} NOT NULL)`,
    `CREATE TABLE IF NOT EXISTS orch_engine_lock (id INTEGER PRIMARY KEY, owner TEXT NOT NULL, host TEXT NOT NULL, pid INTEGER NOT NULL, started_at ${big} NOT NULL)`,
    `CREATE TABLE IF NOT EXISTS orch_audit (id ${serial}, ts ${big} NOT NULL, who TEXT NOT NULL, method TEXT NOT NULL, path TEXT NOT NULL,
      status INTEGER NOT NULL, workflow_id TEXT, detail TEXT)`,
  ]
}

export function newWorkflowId(): string {
  return `wf-${Date.now().toString(36)}-${randomBytes(4).toString('hex')}`
}

function pidAlive(pid: number): boolean {
  try {
    process.kill(pid, 0)
    return true
  } catch (error) {
    return (error as NodeJS.ErrnoException).code === 'EPERM'
  }
}

/**
 * The durable state of workflows and steps. Every method is one transaction (one durable commit);
 * the same code runs on SQLite and PostgreSQL. In PostgreSQL a workflow's row is locked
 * (`FOR UPDATE`) before its steps change, so several workers keep one consistent order of events.
 */
export class OrchStore {
  private constructor(
    readonly db: Db,
    readonly url: string,
    /** Where the API's socket and token live: beside a SQLite store, else the workspace's .prov. */
    readonly stateDir: string,
  ) {}

  get dialect() {
    return this.db.dialect
  }

  static async open(url: string, baseDir = process.cwd()): Promise<OrchStore> {
    const parsed = parseStoreUrl(url, baseDir)
    const db = parsed.kind === 'postgres' ? await openPostgres(parsed.url) : openSqlite(parsed.path)
    const store = new OrchStore(db, url, orchStateDir(parsed, baseDir))
    try {
      if (db.dialect === 'postgres') {
        // DDL takes strong table locks: only when something is missing (first worker, older
        // schema), serialised between workers starting together, retried on a deadlock.
        const ready = async () => {
          const rows = await db.all<{ n: number }>(
            `SELECT count(*) AS n FROM information_schema.columns WHERE table_schema = current_schema() AND
             ((table_name = 'orch_steps' AND column_name IN ('pid', 'pid_host', 'pid_start', 'output_truncated')) OR (table_name = 'orch_audit' AND column_name = 'detail'))`,
          )
          return Number(rows[0]?.n) === 5
        }
        for (let attempt = 1; !(await ready()); attempt++) {
          try {
            await db.tx(async (q) => {
              await q.run('SELECT pg_advisory_xact_lock(74007)')
              for (const statement of ddl(db.dialect)) await q.run(statement)
              await store.migrate(q)
            })
          } catch (error) {
            if (attempt >= 5 || (error as { code?: string }).code !== '40P01') throw error
            await new Promise((r) => setTimeout(r, 50 * attempt))
          }
        }
      } else {
        for (const statement of ddl(db.dialect)) await db.run(statement)
        await store.migrate(db)
      }
    } catch (error) {
      await db.close().catch(() => {})
      throw failedError(`store ${db.location} is not usable: ${(error as Error).message}`)
    }
    return store
  }

  close() {
    return this.db.close()
  }

  /** Columns added after the first schema: a database created by an earlier build gets them. */
  private async migrate(q: Sql) {
    const added: [string, string][] = [
      ['pid', 'INTEGER'],
      ['pid_host', 'TEXT'],
      ['pid_start', 'TEXT'],
      ['output_truncated', 'INTEGER'],
    ]
    if (this.db.dialect === 'postgres') {
      for (const [name, type] of added) await q.run(`ALTER TABLE orch_steps ADD COLUMN IF NOT EXISTS ${name} ${type}`)
      return
    }
    const columns = new Set((await q.all<{ name: string }>('PRAGMA table_info(orch_steps)')).map((c) => c.name))
    for (const [name, type] of added) if (!columns.has(name)) await q.run(`ALTER TABLE orch_steps ADD COLUMN ${name} ${type}`)
  }

  private forUpdate(skipLocked = false) {
    return this.db.dialect === 'postgres' ? (skipLocked ? ' FOR UPDATE SKIP LOCKED' : ' FOR UPDATE') : ''
  }

  /** SQLite: one engine per database file; a live holder (same host, live pid) makes this refuse. */
  async acquireEngineLock(owner: string): Promise<{ takenOver?: { pid: number; owner: string } }> {
    if (this.db.dialect !== 'sqlite') return {}
    return this.tx(async (q) => {
      const [row] = await q.all<{ owner: string; host: string; pid: number }>('SELECT owner, host, pid FROM orch_engine_lock WHERE id = 1')
      if (row && row.owner !== owner) {
        if (row.host !== hostname() || (row.pid !== process.pid && pidAlive(row.pid))) {
          throw configError(`another prov-orch engine (pid ${row.pid} on ${row.host}) already runs on ${this.db.location}`, {
            location: this.db.location,
            hint: "hand it work with 'prov-orch submit', or use PostgreSQL for several workers",
          })
        }
      }
      await q.run('DELETE FROM orch_engine_lock WHERE id = 1')
      await q.run('INSERT INTO orch_engine_lock (id, owner, host, pid, started_at) VALUES (1, ?, ?, ?, ?)', [owner, hostname(), process.pid, Date.now()])
      return row && row.owner !== owner ? { takenOver: { pid: row.pid, owner: row.owner } } : {}
    })
  }

  async releaseEngineLock(owner: string) {
    if (this.db.dialect === 'sqlite') await this.db.run('DELETE FROM orch_engine_lock WHERE id = 1 AND owner = ?', [owner])
  }

  /** Events of the open transaction, written (in order) just before it commits. */
  private pending = new Map<Sql, { workflowId: string; type: string; step: string | null; data: string | null; ts: number }[]>()

  private async event(q: Sql, workflowId: string, type: string, step?: string, data?: Record<string, unknown>, now = Date.now()) {
    let list = this.pending.get(q)
    if (!list) {
      list = []
      this.pending.set(q, list)
    }
    list.push({ workflowId, type, step: step ?? null, data: json(data), ts: now })
  }

  /** One seq update and one multi-row insert per workflow (the workflow row is locked by the transaction). */
  private async flushEvents(q: Sql) {
    const list = this.pending.get(q)
    this.pending.delete(q)
    if (!list?.length) return
    const byWorkflow = new Map<string, typeof list>()
    for (const e of list) byWorkflow.set(e.workflowId, [...(byWorkflow.get(e.workflowId) ?? []), e])
    for (const [workflowId, events] of byWorkflow) {
      const last = events[events.length - 1].ts
      const [row] = await q.all<{ ev_seq: number }>('UPDATE orch_workflows SET ev_seq = ev_seq + ?, updated_at = ? WHERE id = ? RETURNING ev_seq', [
        events.length,
        last,
        workflowId,
      ])
      let seq = Number(row.ev_seq) - events.length
      for (let i = 0; i < events.length; i += 200) {
        const chunk = events.slice(i, i + 200)
        await q.run(
          `INSERT INTO orch_events (workflow_id, seq, ts, type, step, data) VALUES ${chunk.map(() => '(?, ?, ?, ?, ?, ?)').join(', ')}`,
          chunk.flatMap((e) => [workflowId, ++seq, e.ts, e.type, e.step, e.data]),
        )
      }
    }
  }

  /** A transaction whose events are written before it commits. */
  private tx<T>(fn: (q: Sql) => Promise<T>): Promise<T> {
    return this.db.tx(async (q) => {
      try {
        const result = await fn(q)
        await this.flushEvents(q)
        return result
      } finally {
        this.pending.delete(q)
      }
    })
  }

  async submit(workflow: CompiledWorkflow, submittedBy?: string, id = newWorkflowId()): Promise<string> {
    const dependents = new Map<string, string[]>(workflow.steps.map((s) => [s.id, []]))
    for (const s of workflow.steps) for (const d of s.deps) dependents.get(d)?.push(s.id)
    const now = Date.now()
    await this.tx(async (q) => {
      await q.run(
        `INSERT INTO orch_workflows (id, name, status, phase, parallel_limit, rollback_enabled, definition, steps_total, submitted_by, created_at, updated_at)
         VALUES (?, ?, 'queued', 'main', ?, ?, ?, ?, ?, ?, ?)`,
        [
          id,
          workflow.name,
          workflow.parallelLimit,
          workflow.rollbackEnabled ? 1 : 0,
          JSON.stringify({ name: workflow.name }),
          workflow.steps.length,
          submittedBy ?? null,
          now,
          now,
        ],
      )
      for (const [seq, s] of workflow.steps.entries()) {
        await q.run(
          `INSERT INTO orch_steps (workflow_id, id, seq, kind, status, spec, deps, dependents, pending) VALUES (?, ?, ?, 'main', 'queued', ?, ?, ?, ?)`,
          [id, s.id, seq, JSON.stringify(s), JSON.stringify(s.deps), JSON.stringify(dependents.get(s.id)), s.deps.length],
        )
      }
      await this.event(q, id, 'workflow.submitted', undefined, { name: workflow.name, steps: workflow.steps.length }, now)
    })
    return id
  }

  /** Claims up to `limit` ready steps, honouring each workflow's parallel_limit; marks them running with a lease. */
  async claim(owner: string, limit: number, leaseMs: number, onlyWorkflow?: string): Promise<ClaimedStep[]> {
    if (limit <= 0) return []
    return this.tx((q) => this.claimIn(q, owner, limit, leaseMs, onlyWorkflow))
  }

  /**
   * Records finished steps and claims new ones in one transaction: one durable commit (one fsync
   * on SQLite) per engine round instead of two.
   */
  async completeAndClaim(
    owner: string,
    results: StepResult[],
    limit: number,
    leaseMs: number,
    onlyWorkflow?: string,
    processes: StepProcess[] = [],
  ): Promise<ClaimedStep[]> {
    if (!results.length && !processes.length) return this.claim(owner, limit, leaseMs, onlyWorkflow)
    return this.tx(async (q) => {
      for (const p of processes) {
        await q.run(`UPDATE orch_steps SET pid = ?, pid_host = ?, pid_start = ? WHERE workflow_id = ? AND id = ? AND owner = ? AND status = 'running'`, [
          p.pid,
          p.host,
          p.start,
          p.workflowId,
          p.stepId,
          owner,
        ])
      }
      await this.completeIn(q, owner, results)
      return limit > 0 ? this.claimIn(q, owner, limit, leaseMs, onlyWorkflow) : []
    })
  }

  private async claimIn(q: Sql, owner: string, limit: number, leaseMs: number, onlyWorkflow?: string): Promise<ClaimedStep[]> {
    const now = Date.now()
    const candidates = await q.all<{ id: string }>(
      `SELECT id FROM orch_workflows WHERE status IN ${ACTIVE} AND cancel_requested = 0${onlyWorkflow ? ' AND id = ?' : ''} ORDER BY id LIMIT 50`,
      onlyWorkflow ? [onlyWorkflow] : [],
    )
    const claimed: ClaimedStep[] = []
    if (this.db.dialect === 'postgres' && candidates.length) await q.run("SET LOCAL lock_timeout = '2s'")
    for (const { id } of candidates) {
      if (claimed.length >= limit) break
      const [wf] = await q.all<WorkflowRow>(
        // Wait for the row (short transactions) rather than skip it: with one hot workflow, skipping
        // starves every worker but the one that holds it most of the time.
        `SELECT id, name, status, phase, parallel_limit, cancel_requested FROM orch_workflows WHERE id = ?${this.forUpdate()}`,
        [id],
      )
      if (!wf || !['queued', 'running', 'rolling_back'].includes(wf.status) || Number(wf.cancel_requested)) continue
      const kind = wf.phase
      const [{ n: running }] = await q.all<{ n: number }>(`SELECT count(*) AS n FROM orch_steps WHERE workflow_id = ? AND kind = ? AND status = 'running'`, [
        id,
        kind,
      ])
      const free = Math.min(Number(wf.parallel_limit) - Number(running), limit - claimed.length)
      if (free <= 0) continue
      const rows = await q.all<StepRow>(
        `SELECT id, spec, attempts, next_at FROM orch_steps WHERE workflow_id = ? AND kind = ? AND status = 'queued' AND pending = 0 AND next_at <= ?
         ORDER BY seq LIMIT ?${this.forUpdate(true)}`,
        [id, kind, now, free],
      )
      if (!rows.length) continue
      if (wf.status === 'queued') {
        await q.run(`UPDATE orch_workflows SET status = 'running', started_at = ? WHERE id = ?`, [now, id])
        await this.event(q, id, 'workflow.started', undefined, undefined, now)
      }
      const specs = rows.map((r) => JSON.parse(r.spec) as CompiledStep)
      const needed = [...new Set(specs.flatMap((s) => refIds(s)))]
      const scope: ClaimedStep['scope'] = {}
      for (let i = 0; i < needed.length; i += 500) {
        const chunk = needed.slice(i, i + 500)
        const outs = await q.all<{ id: string; status: string; output: string | null }>(
          `SELECT id, status, output FROM orch_steps WHERE workflow_id = ? AND kind = 'main' AND id IN (${chunk.map(() => '?').join(',')})`,
          [id, ...chunk],
        )
        for (const o of outs) scope[o.id] = { status: o.status, output: parse(o.output) }
      }
      // One statement for the whole claim (attempts + 1 in SQL), not one per step.
      await q.run(
        `UPDATE orch_steps SET status = 'running', attempts = attempts + 1, owner = ?, lease_until = ?, started_at = ?, error = NULL, pid = NULL
         WHERE workflow_id = ? AND id IN (${rows.map(() => '?').join(',')})`,
        [owner, now + leaseMs, now, id, ...rows.map((r) => r.id)],
      )
      for (const [i, row] of rows.entries()) {
        const attempt = Number(row.attempts) + 1
        await this.event(q, id, 'step.started', row.id, { attempt, kind, owner }, now)
        claimed.push({ workflowId: id, workflowName: wf.name, kind, spec: specs[i], attempt, scope })
      }
    }
    return claimed
  }

  /** Records finished steps (a batch: one durable commit), schedules retries, advances workflows. */
  async complete(owner: string, results: StepResult[]): Promise<void> {
    if (!results.length) return
    await this.tx((q) => this.completeIn(q, owner, results))
  }

  private async completeIn(q: Sql, owner: string, results: StepResult[]): Promise<void> {
    const byWorkflow = new Map<string, StepResult[]>()
    for (const r of [...results].sort((a, b) => (a.workflowId < b.workflowId ? -1 : a.workflowId > b.workflowId ? 1 : 0))) {
      byWorkflow.set(r.workflowId, [...(byWorkflow.get(r.workflowId) ?? []), r])
    }
    {
      const now = Date.now()
      for (const [workflowId, list] of byWorkflow) {
        const [wf] = await q.all<WorkflowRow>(`SELECT id, status, phase, cancel_requested FROM orch_workflows WHERE id = ?${this.forUpdate()}`, [workflowId])
        if (!wf) continue
        // The rows of all results in one query.
        const rows = new Map<string, StepRow>()
        for (let i = 0; i < list.length; i += 500) {
          const chunk = list.slice(i, i + 500).map((r) => r.stepId)
          const found = await q.all<StepRow>(
            `SELECT id, status, owner, attempts, spec, dependents, kind FROM orch_steps WHERE workflow_id = ? AND id IN (${chunk.map(() => '?').join(',')})`,
            [workflowId, ...chunk],
          )
          for (const f of found) rows.set(f.id, f)
        }
        for (const r of list) {
          const row = rows.get(r.stepId)
          // A lost lease: another worker re-claimed the step; its result is the one that counts.
          if (row?.status !== 'running' || row.owner !== owner) continue
          for (const log of r.logs ?? []) {
            await q.run('INSERT INTO orch_logs (workflow_id, step, attempt, stream, ts, text) VALUES (?, ?, ?, ?, ?, ?)', [
              workflowId,
              r.stepId,
              row.attempts,
              log.stream,
              now,
              log.text,
            ])
          }
          const spec = JSON.parse(row.spec) as CompiledStep
          if (r.status === 'succeeded' || r.status === 'skipped') {
            await q.run(
              `UPDATE orch_steps SET status = ?, output = ?, exit_code = ?, output_truncated = ?, finished_at = ?, owner = NULL, lease_until = NULL
               WHERE workflow_id = ? AND id = ?`,
              [r.status, json(r.output ?? null), r.exitCode ?? null, r.truncated ? 1 : 0, now, workflowId, r.stepId],
            )
            await this.release(q, workflowId, JSON.parse(row.dependents) as string[])
            await this.event(
              q,
              workflowId,
              `step.${r.status}`,
              r.stepId,
              r.status === 'succeeded' ? { attempt: row.attempts, ...(r.truncated ? { output_truncated: true } : {}) } : { reason: r.error },
              now,
            )
          } else if (
            r.status === 'failed' &&
            r.retryable !== false &&
            !Number(wf.cancel_requested) &&
            row.kind === 'main' &&
            Number(row.attempts) <= spec.retries.max
          ) {
            const base = spec.retries.backoffMs * 2 ** (Number(row.attempts) - 1)
            const delay = Math.round(base / 2 + Math.random() * (base / 2))
            await q.run(
              `UPDATE orch_steps SET status = 'queued', next_at = ?, error = ?, exit_code = ?, owner = NULL, lease_until = NULL WHERE workflow_id = ? AND id = ?`,
              [now + delay, r.error ?? null, r.exitCode ?? null, workflowId, r.stepId],
            )
            await this.event(
              q,
              workflowId,
              'step.retrying',
              r.stepId,
              { attempt: row.attempts, error: r.error, exit_code: r.exitCode ?? null, delay_ms: delay },
              now,
            )
          } else {
            await this.failStep(q, workflowId, r.stepId, r.status === 'cancelled' ? 'cancelled' : 'failed', r.error ?? 'failed', r.exitCode ?? null, now)
          }
        }
        await this.advance(q, workflowId, now)
      }
    }
  }

  private async release(q: Sql, workflowId: string, dependents: string[]) {
    for (let i = 0; i < dependents.length; i += 500) {
      const chunk = dependents.slice(i, i + 500)
      await q.run(`UPDATE orch_steps SET pending = pending - 1 WHERE workflow_id = ? AND id IN (${chunk.map(() => '?').join(',')})`, [workflowId, ...chunk])
    }
  }

  private async failStep(q: Sql, workflowId: string, stepId: string, status: 'failed' | 'cancelled', error: string, exitCode: number | null, now: number) {
    await q.run(
      `UPDATE orch_steps SET status = ?, error = ?, exit_code = ?, finished_at = ?, owner = NULL, lease_until = NULL WHERE workflow_id = ? AND id = ?`,
      [status, error, exitCode, now, workflowId, stepId],
    )
    await this.event(q, workflowId, `step.${status}`, stepId, { error, exit_code: exitCode }, now)
    if (status === 'failed') {
      // Fail fast: nothing new starts in this phase; running steps finish.
      const [wf] = await q.all<WorkflowRow>('SELECT phase, error FROM orch_workflows WHERE id = ?', [workflowId])
      await q.run(`UPDATE orch_steps SET status = 'cancelled', error = ?, finished_at = ? WHERE workflow_id = ? AND kind = ? AND status = 'queued'`, [
        `not started: step '${stepId}' failed`,
        now,
        workflowId,
        wf.phase,
      ])
      if (!wf.error) await q.run('UPDATE orch_workflows SET error = ? WHERE id = ?', [`step '${stepId}' failed: ${error}`, workflowId])
    }
  }

  /** Finishes a workflow (or a phase) when nothing of the current phase is queued or running. */
  private async advance(q: Sql, workflowId: string, now: number) {
    const [wf] = await q.all<WorkflowRow>('SELECT id, status, phase, rollback_enabled, cancel_requested, error FROM orch_workflows WHERE id = ?', [workflowId])
    if (!wf || FINISHED.includes(wf.status)) return
    const active = await q.all(`SELECT 1 FROM orch_steps WHERE workflow_id = ? AND kind = ? AND status IN ('queued','running') LIMIT 1`, [workflowId, wf.phase])
    if (active.length) return
    const counts = await q.all<{ status: string; n: number }>(
      'SELECT status, count(*) AS n FROM orch_steps WHERE workflow_id = ? AND kind = ? GROUP BY status',
      [workflowId, wf.phase],
    )
    const count = (s: string) => Number(counts.find((c) => c.status === s)?.n ?? 0)
    const finish = async (status: WorkflowStatus, error?: string | null) => {
      await q.run('UPDATE orch_workflows SET status = ?, finished_at = ?, error = ? WHERE id = ?', [status, now, error ?? null, workflowId])
      await this.event(q, workflowId, `workflow.${status}`, undefined, error ? { error } : undefined, now)
    }
    if (wf.phase === 'rollback') {
      if (count('failed') || count('cancelled')) return finish('failed', `rollback incomplete: ${wf.error ?? 'a compensation failed'}`)
      const done = await q.all<{ id: string; spec: string }>(
        `SELECT id, spec FROM orch_steps WHERE workflow_id = ? AND kind = 'rollback' AND status = 'succeeded'`,
        [workflowId],
      )
      for (const d of done) {
        const spec = JSON.parse(d.spec) as CompiledStep & { compensates?: string; real?: boolean }
        if (spec.compensates && spec.real) {
          await q.run(`UPDATE orch_steps SET status = 'rolled_back' WHERE workflow_id = ? AND id = ? AND kind = 'main'`, [workflowId, spec.compensates])
        }
      }
      return finish('rolled_back', wf.error)
    }
    if (Number(wf.cancel_requested)) return finish('cancelled', wf.error ?? 'cancelled')
    if (!count('failed') && !count('cancelled')) return finish('succeeded')
    if (Number(wf.rollback_enabled) && count('succeeded')) return this.startRollback(q, workflowId, now)
    return finish('failed', wf.error)
  }

  /** Compensations of the completed steps, in reverse dependency order (a step's rollback waits for its dependents' rollbacks). */
  private async startRollback(q: Sql, workflowId: string, now: number) {
    await q.run(`DELETE FROM orch_steps WHERE workflow_id = ? AND kind = 'rollback'`, [workflowId])
    const done = await q.all<{ id: string; spec: string; output: string | null; seq: number }>(
      `SELECT id, spec, output, seq FROM orch_steps WHERE workflow_id = ? AND kind = 'main' AND status = 'succeeded' ORDER BY seq`,
      [workflowId],
    )
    const ids = new Set(done.map((d) => d.id))
    const specs = new Map(done.map((d) => [d.id, JSON.parse(d.spec) as CompiledStep]))
    const dependentsOf = new Map<string, string[]>(done.map((d) => [d.id, []]))
    for (const [id, s] of specs) for (const dep of s.deps) if (ids.has(dep)) dependentsOf.get(dep)?.push(id)
    for (const d of done) {
      const s = specs.get(d.id) as CompiledStep
      const deps = (dependentsOf.get(d.id) ?? []).map((x) => `rollback:${x}`)
      const run: RunSpec = s.rollback ?? { builtin: 'noop' }
      const spec = {
        id: `rollback:${d.id}`,
        run,
        input: parse(d.output),
        env: s.env,
        cwd: s.cwd,
        deps,
        retries: { max: 0, backoffMs: 0 },
        timeoutMs: s.timeoutMs,
        idempotent: s.idempotent,
        expectJson: false,
        target: s.target,
        refs: [...s.deps, d.id],
        maxOutput: s.maxOutput,
        outputOverflow: s.outputOverflow,
        compensates: d.id,
        real: Boolean(s.rollback),
      }
      await q.run(
        `INSERT INTO orch_steps (workflow_id, id, seq, kind, status, spec, deps, dependents, pending) VALUES (?, ?, ?, 'rollback', 'queued', ?, ?, ?, ?)`,
        [
          workflowId,
          spec.id,
          1_000_000 - d.seq,
          JSON.stringify(spec),
          JSON.stringify(deps),
          JSON.stringify(s.deps.filter((x) => ids.has(x)).map((x) => `rollback:${x}`)),
          deps.length,
        ],
      )
    }
    await q.run(`UPDATE orch_workflows SET status = 'rolling_back', phase = 'rollback' WHERE id = ?`, [workflowId])
    await this.event(q, workflowId, 'workflow.rolling_back', undefined, { steps: done.length }, now)
  }

  async heartbeat(owner: string, leaseMs: number) {
    const now = Date.now()
    if (this.db.dialect === 'sqlite') {
      await this.db.run(`UPDATE orch_steps SET lease_until = ? WHERE owner = ? AND status = 'running'`, [now + leaseMs, owner])
    }
    // PostgreSQL: one row per statement, so the heartbeat never holds two row locks (no deadlock with other workers).
    const mine =
      this.db.dialect === 'postgres'
        ? await this.db.all<{ workflow_id: string; id: string }>(`SELECT workflow_id, id FROM orch_steps WHERE owner = ? AND status = 'running'`, [owner])
        : []
    for (const r of mine) {
      await this.db.run(`UPDATE orch_steps SET lease_until = ? WHERE workflow_id = ? AND id = ? AND owner = ? AND status = 'running'`, [
        now + leaseMs,
        r.workflow_id,
        r.id,
        owner,
      ])
    }
    await this.db.run(
      `INSERT INTO orch_workers (id, host, pid, started_at, heartbeat_at) VALUES (?, ?, ?, ?, ?) ON CONFLICT (id) DO UPDATE SET heartbeat_at = excluded.heartbeat_at`,
      [owner, hostname(), process.pid, now, now],
    )
  }

  /**
   * Steps left running by a dead engine or worker: idempotent ones are queued again, the others
   * fail. `all`: every running step not owned by `owner` (SQLite, after taking the engine lock);
   * otherwise only those whose lease expired (PostgreSQL workers).
   */
  async recover(owner: string, all: boolean, killOrphan: (p: StepProcess) => void = () => {}): Promise<number> {
    const now = Date.now()
    const stale = await this.db.all<{ workflow_id: string; id: string }>(
      all
        ? `SELECT workflow_id, id FROM orch_steps WHERE status = 'running' AND (owner IS NULL OR owner <> ?)`
        : `SELECT workflow_id, id FROM orch_steps WHERE status = 'running' AND lease_until < ? AND (owner IS NULL OR owner <> ?)`,
      all ? [owner] : [now, owner],
    )
    if (!stale.length) return 0
    const byWorkflow = new Map<string, string[]>()
    for (const s of stale) byWorkflow.set(s.workflow_id, [...(byWorkflow.get(s.workflow_id) ?? []), s.id])
    let n = 0
    await this.tx(async (q) => {
      for (const [workflowId, stepIds] of byWorkflow) {
        await q.all(`SELECT id FROM orch_workflows WHERE id = ?${this.forUpdate()}`, [workflowId])
        for (const stepId of stepIds) {
          const [row] = await q.all<StepRow & { pid: number | null; pid_host: string | null; pid_start: string | null }>(
            `SELECT status, owner, lease_until, spec, kind, pid, pid_host, pid_start FROM orch_steps WHERE workflow_id = ? AND id = ?`,
            [workflowId, stepId],
          )
          if (row?.status !== 'running' || row.owner === owner || (!all && Number(row.lease_until) >= now)) continue
          // The dead engine's step may still run (its process group is detached): stop it first.
          if (row.pid && row.pid_host && row.pid_start) killOrphan({ workflowId, stepId, pid: Number(row.pid), host: row.pid_host, start: row.pid_start })
          const spec = JSON.parse(row.spec) as CompiledStep
          n++
          if (spec.idempotent || (spec.run && 'builtin' in spec.run)) {
            await q.run(`UPDATE orch_steps SET status = 'queued', next_at = 0, owner = NULL, lease_until = NULL WHERE workflow_id = ? AND id = ?`, [
              workflowId,
              stepId,
            ])
            await this.event(q, workflowId, 'step.recovered', stepId, { previous_owner: row.owner, action: 'requeued' }, now)
          } else {
            await this.event(q, workflowId, 'step.recovered', stepId, { previous_owner: row.owner, action: 'failed' }, now)
            await this.failStep(
              q,
              workflowId,
              stepId,
              'failed',
              `interrupted: its ${all ? 'engine' : 'worker'} died while it ran, and it is not idempotent`,
              null,
              now,
            )
          }
        }
        await this.advance(q, workflowId, now)
      }
    })
    return n
  }

  private async lockWorkflow(q: Sql, id: string): Promise<WorkflowRow> {
    const [wf] = await q.all<WorkflowRow>(`SELECT * FROM orch_workflows WHERE id = ?${this.forUpdate()}`, [id])
    if (!wf) throw notFoundError(`no workflow '${id}'`, { hint: 'prov-orch list' })
    return wf
  }

  async cancel(id: string): Promise<WorkflowRecord> {
    await this.tx(async (q) => {
      const wf = await this.lockWorkflow(q, id)
      if (FINISHED.includes(wf.status)) return
      const now = Date.now()
      await q.run('UPDATE orch_workflows SET cancel_requested = 1 WHERE id = ?', [id])
      await q.run(`UPDATE orch_steps SET status = 'cancelled', error = 'cancelled', finished_at = ? WHERE workflow_id = ? AND status = 'queued'`, [now, id])
      await this.event(q, id, 'workflow.cancelling', undefined, undefined, now)
      await this.advance(q, id, now)
    })
    return this.get(id)
  }

  async rollback(id: string): Promise<WorkflowRecord> {
    await this.tx(async (q) => {
      const wf = await this.lockWorkflow(q, id)
      if (!['succeeded', 'failed', 'cancelled'].includes(wf.status)) {
        throw conflictError(`workflow ${id} is ${wf.status}; only a finished workflow can be rolled back`, {
          hint: wf.status === 'running' ? `prov-orch cancel ${id} first` : undefined,
        })
      }
      await q.run(`UPDATE orch_workflows SET cancel_requested = 0, finished_at = NULL WHERE id = ?`, [id])
      await this.startRollback(q, id, Date.now())
    })
    return this.get(id)
  }

  async retry(id: string, stepId?: string): Promise<WorkflowRecord> {
    await this.tx(async (q) => {
      const wf = await this.lockWorkflow(q, id)
      if (!['failed', 'cancelled', 'rolled_back'].includes(wf.status))
        throw conflictError(`workflow ${id} is ${wf.status}; only a failed or cancelled one can be retried`)
      const now = Date.now()
      if (stepId) {
        const [row] = await q.all<StepRow>(`SELECT status FROM orch_steps WHERE workflow_id = ? AND id = ? AND kind = 'main'`, [id, stepId])
        if (!row) throw notFoundError(`workflow ${id} has no step '${stepId}'`)
      }
      const reset = wf.status === 'rolled_back' ? ['failed', 'cancelled', 'rolled_back', 'succeeded'] : ['failed', 'cancelled']
      await q.run(`DELETE FROM orch_steps WHERE workflow_id = ? AND kind = 'rollback'`, [id])
      await q.run(
        `UPDATE orch_steps SET status = 'queued', attempts = 0, next_at = 0, error = NULL, exit_code = NULL, output = NULL, finished_at = NULL
         WHERE workflow_id = ? AND kind = 'main' AND status IN (${reset.map(() => '?').join(',')})`,
        [id, ...reset],
      )
      // Recount unmet dependencies of every queued step.
      const rows = await q.all<{ id: string; status: string; deps: string }>(
        `SELECT id, status, deps FROM orch_steps WHERE workflow_id = ? AND kind = 'main'`,
        [id],
      )
      const done = new Set(rows.filter((r) => r.status === 'succeeded' || r.status === 'skipped').map((r) => r.id))
      for (const r of rows) {
        if (r.status !== 'queued') continue
        const pending = (JSON.parse(r.deps) as string[]).filter((d) => !done.has(d)).length
        await q.run('UPDATE orch_steps SET pending = ? WHERE workflow_id = ? AND id = ?', [pending, id, r.id])
      }
      await q.run(`UPDATE orch_workflows SET status = 'running', phase = 'main', cancel_requested = 0, error = NULL, finished_at = NULL WHERE id = ?`, [id])
      await this.event(q, id, 'workflow.retried', stepId, undefined, now)
    })
    return this.get(id)
  }

  private record(row: WorkflowRow, counts: Record<string, number>): WorkflowRecord {
    return {
      schema: 'prov.orch.workflow.status/v1',
      id: row.id,
      name: row.name,
      status: row.status,
      phase: row.phase,
      error: row.error,
      parallel_limit: Number(row.parallel_limit),
      rollback_enabled: Boolean(Number(row.rollback_enabled)),
      cancel_requested: Boolean(Number(row.cancel_requested)),
      created_at: iso(row.created_at) as string,
      updated_at: iso(row.updated_at) as string,
      started_at: iso(row.started_at),
      finished_at: iso(row.finished_at),
      submitted_by: row.submitted_by,
      steps_total: Number(row.steps_total),
      counts,
    }
  }

  async get(id: string): Promise<WorkflowRecord> {
    const [row] = await this.db.all<WorkflowRow>('SELECT * FROM orch_workflows WHERE id = ?', [id])
    if (!row) throw notFoundError(`no workflow '${id}'`, { hint: 'prov-orch list' })
    const counts = await this.db.all<{ status: string; n: number }>(
      `SELECT status, count(*) AS n FROM orch_steps WHERE workflow_id = ? AND kind = 'main' GROUP BY status`,
      [id],
    )
    return this.record(row, Object.fromEntries(counts.map((c) => [c.status, Number(c.n)])))
  }

  async steps(id: string, kind?: 'main' | 'rollback'): Promise<StepRecord[]> {
    const rows = await this.db.all<StepRow>(
      `SELECT * FROM orch_steps WHERE workflow_id = ?${kind ? ' AND kind = ?' : ''} ORDER BY kind, seq`,
      kind ? [id, kind] : [id],
    )
    return rows.map((r) => ({
      id: r.id,
      kind: r.kind,
      status: r.status,
      attempts: Number(r.attempts),
      output: parse(r.output),
      error: r.error,
      exit_code: r.exit_code,
      owner: r.owner,
      started_at: iso(r.started_at),
      finished_at: iso(r.finished_at),
      depends_on: JSON.parse(r.deps),
      output_truncated: Boolean(Number(r.output_truncated)),
    }))
  }

  async list(options: { status?: string; limit?: number; offset?: number } = {}): Promise<{ items: WorkflowRecord[]; total: number }> {
    const where = options.status ? 'WHERE status = ?' : ''
    const params = options.status ? [options.status] : []
    const rows = await this.db.all<WorkflowRow>(`SELECT * FROM orch_workflows ${where} ORDER BY created_at DESC, id DESC LIMIT ? OFFSET ?`, [
      ...params,
      options.limit ?? 50,
      options.offset ?? 0,
    ])
    const [{ n }] = await this.db.all<{ n: number }>(`SELECT count(*) AS n FROM orch_workflows ${where}`, params)
    return { items: rows.map((r) => this.record(r, {})), total: Number(n) }
  }

  async events(id: string, afterSeq = 0, limit = 1000): Promise<OrchEvent[]> {
    const rows = await this.db.all<{ seq: number; ts: number; type: string; step: string | null; data: string | null }>(
      'SELECT seq, ts, type, step, data FROM orch_events WHERE workflow_id = ? AND seq > ? ORDER BY seq LIMIT ?',
      [id, afterSeq, limit],
    )
    return rows.map((r) => ({
      schema: EVENT_SCHEMA,
      workflow_id: id,
      seq: Number(r.seq),
      ts: iso(r.ts) as string,
      type: r.type,
      ...(r.step ? { step: r.step } : {}),
      ...(r.data ? { data: JSON.parse(r.data) } : {}),
    }))
  }

  async logs(id: string, step?: string) {
    await this.get(id)
    const rows = await this.db.all<{ step: string; attempt: number; stream: string; ts: number; text: string }>(
      `SELECT step, attempt, stream, ts, text FROM orch_logs WHERE workflow_id = ?${step ? ' AND step = ?' : ''} ORDER BY id`,
      step ? [id, step] : [id],
    )
    return rows.map((r) => ({
      schema: 'prov.orch.log/v1',
      workflow_id: id,
      step: r.step,
      attempt: Number(r.attempt),
      stream: r.stream,
      ts: iso(r.ts),
      text: r.text,
    }))
  }

  async appendLogs(workflowId: string, stepId: string, attempt: number, stream: string, text: string) {
    await this.db.run('INSERT INTO orch_logs (workflow_id, step, attempt, stream, ts, text) VALUES (?, ?, ?, ?, ?, ?)', [
      workflowId,
      stepId,
      attempt,
      stream,
      Date.now(),
      text,
    ])
  }

  async cancelRequested(ids: string[]): Promise<Set<string>> {
    if (!ids.length) return new Set()
    const rows = await this.db.all<{ id: string }>(`SELECT id FROM orch_workflows WHERE cancel_requested = 1 AND id IN (${ids.map(() => '?').join(',')})`, ids)
    return new Set(rows.map((r) => r.id))
  }

  async unfinished(): Promise<number> {
    const [{ n }] = await this.db.all<{ n: number }>(`SELECT count(*) AS n FROM orch_workflows WHERE status IN ${ACTIVE}`)
    return Number(n)
  }

  async metrics() {
    const wf = await this.db.all<{ status: string; n: number }>('SELECT status, count(*) AS n FROM orch_workflows GROUP BY status')
    const st = await this.db.all<{ status: string; n: number }>(
      `SELECT s.status, count(*) AS n FROM orch_steps s JOIN orch_workflows w ON w.id = s.workflow_id WHERE w.status IN ${ACTIVE} GROUP BY s.status`,
    )
    const [lat] = await this.db.all<{ n: number; total: number }>(
      'SELECT count(*) AS n, coalesce(sum(finished_at - started_at), 0) AS total FROM orch_steps WHERE finished_at IS NOT NULL AND started_at IS NOT NULL',
    )
    return {
      workflows: Object.fromEntries(wf.map((r) => [r.status, Number(r.n)])),
      steps: Object.fromEntries(st.map((r) => [r.status, Number(r.n)])),
      stepLatency: { count: Number(lat.n), sumMs: Number(lat.total) },
    }
  }

  async audit(entries: AuditEntry[]) {
    if (!entries.length) return
    const now = Date.now()
    await this.db.run(
      `INSERT INTO orch_audit (ts, who, method, path, status, workflow_id, detail) VALUES ${entries.map(() => '(?, ?, ?, ?, ?, ?, ?)').join(', ')}`,
      entries.flatMap((e) => [now, e.who, e.method, e.path, e.status, e.workflowId ?? null, e.detail ?? null]),
    )
  }

  async readAudit(limit: number) {
    const rows = await this.db.all<{
      ts: number
      who: string
      method: string
      path: string
      status: number
      workflow_id: string | null
      detail: string | null
    }>('SELECT ts, who, method, path, status, workflow_id, detail FROM orch_audit ORDER BY id DESC LIMIT ?', [limit])
    return rows.map((r) => ({ ...r, ts: iso(r.ts), status: Number(r.status), detail: parse(r.detail) }))
  }
}

/** Step ids whose outputs a step's templates, input or condition read. */
function refIds(spec: CompiledStep): string[] {
  return spec.refs ?? spec.deps
}
