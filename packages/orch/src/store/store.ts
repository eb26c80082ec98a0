/**
 * The durable state of workflows and steps, one operation per file in `sql/`, the state machine
 * in `lifecycle.ts`. Every mutating method is one transaction (one durable commit); the same
 * code runs on SQLite and PostgreSQL, choosing by what the database can lock (`db.ts`), never by
 * its name. In PostgreSQL a workflow's row is locked (`FOR UPDATE`) before its steps change, so
 * several workers keep one consistent order of events.
 */
import { failedError, isFinishedWorkflowStatus, orchStateDir, parseStoreUrl } from '@prov/core'
import type { EngineStore } from '../engine'
import type { CompiledWorkflow } from '../workflow'
import { type Db, openPostgres, openSqlite } from './db'
import { ensureSchema } from './schema'
import { readAudit, writeAudit } from './sql/audit'
import { cancel, cancelRequested } from './sql/cancel'
import { claim } from './sql/claim'
import { complete, recordProcesses } from './sql/complete'
import { acquireEngineLock, engineServing, releaseEngineLock } from './sql/engine-lock'
import { readEvents } from './sql/events'
import { heartbeat } from './sql/heartbeat'
import { getWorkflow, listSteps, listWorkflows, metrics, readLogs, unfinished } from './sql/read'
import { recover } from './sql/recover'
import { retry } from './sql/retry'
import { rollback } from './sql/rollback'
import { newWorkflowId, submit } from './sql/submit'
import { inTx, type Tx } from './tx'
import type { AuditEntry, StepKind, StepProcess, StepRecord, StepResult, WorkflowRecord } from './types'

export * from './types'

/** Thrown inside a preview's transaction to roll it back, carrying what the operation produced. */
class PreviewOutcome extends Error {
  constructor(readonly record: WorkflowRecord & { steps: StepRecord[] }) {
    super('preview')
  }
}

export class OrchStore implements EngineStore {
  private constructor(
    readonly db: Db,
    readonly url: string,
    /** Where the API's socket and token live: beside a SQLite store, else the workspace's .prov. */
    readonly stateDir: string,
  ) {}

  get dialect() {
    return this.db.dialect
  }

  get location() {
    return this.db.location
  }

  static async open(url: string, baseDir = process.cwd()): Promise<OrchStore> {
    const parsed = parseStoreUrl(url, baseDir)
    const db = parsed.kind === 'postgres' ? await openPostgres(parsed.url) : openSqlite(parsed.path)
    try {
      await ensureSchema(db)
    } catch (error) {
      await db.close().catch(() => {})
      throw failedError(`store ${db.location} is not usable: ${(error as Error).message}`)
    }
    return new OrchStore(db, url, orchStateDir(parsed, baseDir))
  }

  close() {
    return this.db.close()
  }

  // Submitting and controlling workflows.

  async submit(workflow: CompiledWorkflow, submittedBy?: string, id = newWorkflowId()): Promise<string> {
    await inTx(this.db, (tx) => submit(tx, workflow, submittedBy, id))
    return id
  }

  async cancel(id: string) {
    await inTx(this.db, (tx) => cancel(tx, id))
    return this.get(id)
  }

  async rollback(id: string) {
    await inTx(this.db, (tx) => rollback(tx, id))
    return this.get(id)
  }

  async retry(id: string, stepId?: string) {
    await inTx(this.db, (tx) => retry(tx, id, stepId))
    return this.get(id)
  }

  /**
   * What cancel, rollback or retry would make of a workflow, without changing it: the operation
   * runs in a transaction that is rolled back after the result is read, so the preview refuses
   * exactly what the operation would refuse (an unknown id, a retry of a succeeded workflow).
   */
  async preview(action: 'cancel' | 'rollback' | 'retry', id: string, stepId?: string): Promise<WorkflowRecord & { steps: StepRecord[] }> {
    const operations = { cancel: (tx: Tx) => cancel(tx, id), rollback: (tx: Tx) => rollback(tx, id), retry: (tx: Tx) => retry(tx, id, stepId) }
    try {
      await inTx(this.db, async (tx) => {
        await operations[action](tx)
        throw new PreviewOutcome({ ...(await getWorkflow(tx.q, id)), steps: await listSteps(tx.q, id) })
      })
    } catch (outcome) {
      if (outcome instanceof PreviewOutcome) return outcome.record
      throw outcome
    }
    throw new Error('unreachable: a preview always ends by rolling back')
  }

  // What an engine uses (EngineStore).

  acquireEngineLock(owner: string) {
    return acquireEngineLock(this.db, owner)
  }

  /** Takes the store for an engine: an exclusive store's lock, then every step a dead engine left running. */
  async begin(owner: string, killOrphan: (p: StepProcess) => void): Promise<void> {
    await acquireEngineLock(this.db, owner)
    if (this.db.exclusiveEngine) await recover(this.db, owner, true, killOrphan)
  }

  async end(owner: string): Promise<void> {
    await releaseEngineLock(this.db, owner)
  }

  /** Whether an engine or worker serves this store now (queued work will run). */
  engineServing() {
    return engineServing(this.db)
  }

  heartbeat(owner: string, leaseMs: number) {
    return heartbeat(this.db, owner, leaseMs)
  }

  /** Steps of workers whose lease ran out (an exclusive store has none: begin() took them all). */
  async recoverExpired(owner: string, killOrphan: (p: StepProcess) => void): Promise<number> {
    return this.db.exclusiveEngine ? 0 : recover(this.db, owner, false, killOrphan)
  }

  /** Claims up to `limit` ready steps, honouring each workflow's parallel_limit; marks them running with a lease. */
  claim(owner: string, limit: number, leaseMs: number, onlyWorkflow?: string) {
    if (limit <= 0) return Promise.resolve([])
    return inTx(this.db, (tx) => claim(tx, owner, limit, leaseMs, onlyWorkflow))
  }

  /** Records finished steps (a batch: one durable commit), schedules retries, advances workflows. */
  async complete(owner: string, results: StepResult[]): Promise<void> {
    if (!results.length) return
    await inTx(this.db, (tx) => complete(tx, owner, results))
  }

  /**
   * Records finished steps and claims new ones in one transaction: one durable commit (one fsync
   * on SQLite) per engine round instead of two.
   */
  completeAndClaim(owner: string, results: StepResult[], limit: number, leaseMs: number, onlyWorkflow?: string, processes: StepProcess[] = []) {
    if (!results.length && !processes.length) return this.claim(owner, limit, leaseMs, onlyWorkflow)
    return inTx(this.db, async (tx) => {
      await recordProcesses(tx, owner, processes)
      await complete(tx, owner, results)
      return limit > 0 ? claim(tx, owner, limit, leaseMs, onlyWorkflow) : []
    })
  }

  cancelRequested(ids: string[]) {
    return cancelRequested({ q: this.db }, ids)
  }

  async isFinished(id: string): Promise<boolean> {
    return isFinishedWorkflowStatus((await this.get(id)).status)
  }

  unfinished() {
    return unfinished(this.db)
  }

  // Reading.

  get(id: string) {
    return getWorkflow(this.db, id)
  }

  steps(id: string, kind?: StepKind) {
    return listSteps(this.db, id, kind)
  }

  list(options: { status?: string; limit?: number; offset?: number } = {}) {
    return listWorkflows(this.db, options)
  }

  events(id: string, afterSeq = 0, limit = 1000) {
    return readEvents(this.db, id, afterSeq, limit)
  }

  async logs(id: string, step?: string) {
    await this.get(id)
    return readLogs(this.db, id, step)
  }

  metrics() {
    return metrics(this.db)
  }

  audit(entries: AuditEntry[]) {
    return writeAudit(this.db, entries)
  }

  readAudit(limit: number) {
    return readAudit(this.db, limit)
  }
}
