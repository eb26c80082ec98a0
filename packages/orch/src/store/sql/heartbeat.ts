import { hostname } from 'node:os'
import type { Db } from '../db'

/**
 * Renews the leases of the steps `owner` runs and marks the worker alive. Where rows are locked
 * one by one (several workers), one row per statement, so a heartbeat never holds two row locks
 * at once and cannot deadlock with a worker that completes those steps.
 */
export async function heartbeat(db: Db, owner: string, leaseMs: number): Promise<void> {
  const now = Date.now()
  if (db.exclusiveEngine) {
    await db.run(`UPDATE orch_steps SET lease_until = ? WHERE owner = ? AND status = 'running'`, [now + leaseMs, owner])
  } else {
    const mine = await db.all<{ workflow_id: string; id: string }>(`SELECT workflow_id, id FROM orch_steps WHERE owner = ? AND status = 'running'`, [owner])
    for (const r of mine) {
      await db.run(`UPDATE orch_steps SET lease_until = ? WHERE workflow_id = ? AND id = ? AND owner = ? AND status = 'running'`, [
        now + leaseMs,
        r.workflow_id,
        r.id,
        owner,
      ])
    }
  }
  await db.run(
    `INSERT INTO orch_workers (id, host, pid, started_at, heartbeat_at) VALUES (?, ?, ?, ?, ?) ON CONFLICT (id) DO UPDATE SET heartbeat_at = excluded.heartbeat_at`,
    [owner, hostname(), process.pid, now, now],
  )
}
