import { hostname } from 'node:os'
import { configError, pidAlive } from '@prov/core'
import type { Db } from '../db'
import { inTx } from '../tx'

/**
 * An exclusive store (SQLite: one file, one writer) has one engine: a live holder of the lock
 * (same host, live pid) makes this refuse; a dead one's lock is taken over. Other stores share
 * the work between workers and need no lock.
 */
export async function acquireEngineLock(db: Db, owner: string): Promise<{ takenOver?: { pid: number; owner: string } }> {
  if (!db.exclusiveEngine) return {}
  return inTx(db, async ({ q }) => {
    const [row] = await q.all<{ owner: string; host: string; pid: number }>('SELECT owner, host, pid FROM orch_engine_lock WHERE id = 1')
    if (row && row.owner !== owner) {
      if (row.host !== hostname() || (row.pid !== process.pid && pidAlive(row.pid))) {
        throw configError(`another prov-orch engine (pid ${row.pid} on ${row.host}) already runs on ${db.location}`, {
          location: db.location,
          hint: "hand it work with 'prov-orch submit', or use PostgreSQL for several workers",
        })
      }
    }
    await q.run('DELETE FROM orch_engine_lock WHERE id = 1')
    await q.run('INSERT INTO orch_engine_lock (id, owner, host, pid, started_at) VALUES (1, ?, ?, ?, ?)', [owner, hostname(), process.pid, Date.now()])
    return row && row.owner !== owner ? { takenOver: { pid: row.pid, owner: row.owner } } : {}
  })
}

export async function releaseEngineLock(db: Db, owner: string): Promise<void> {
  if (db.exclusiveEngine) await db.run('DELETE FROM orch_engine_lock WHERE id = 1 AND owner = ?', [owner])
  // A worker that stopped cleanly no longer counts as serving the store.
  await db.run('DELETE FROM orch_workers WHERE id = ?', [owner])
}

/** Engines heartbeat every third of their lease (30 s by default): a minute of silence means gone. */
const WORKER_SILENCE_MS = 60_000

/**
 * Whether an engine or worker serves the store now: on an exclusive store the holder of the
 * engine lock (alive, when it runs on this host); elsewhere a worker with a recent heartbeat.
 */
export async function engineServing(db: Db, now = Date.now()): Promise<boolean> {
  if (db.exclusiveEngine) {
    const [row] = await db.all<{ host: string; pid: number }>('SELECT host, pid FROM orch_engine_lock WHERE id = 1')
    return Boolean(row) && (row.host !== hostname() || pidAlive(Number(row.pid)))
  }
  const [row] = await db.all<{ n: number }>('SELECT count(*) AS n FROM orch_workers WHERE heartbeat_at > ?', [now - WORKER_SILENCE_MS])
  return Number(row.n) > 0
}
