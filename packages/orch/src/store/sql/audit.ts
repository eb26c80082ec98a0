import type { Db } from '../db'
import { iso, parse } from '../rows'
import type { AuditEntry, AuditRecord } from '../types'

/** Appends audit rows (one statement). */
export async function writeAudit(db: Db, entries: AuditEntry[]): Promise<void> {
  if (!entries.length) return
  const now = Date.now()
  await db.run(
    `INSERT INTO orch_audit (ts, who, method, path, status, workflow_id, detail) VALUES ${entries.map(() => '(?, ?, ?, ?, ?, ?, ?)').join(', ')}`,
    entries.flatMap((e) => [now, e.who, e.method, e.path, e.status, e.workflowId ?? null, e.detail ?? null]),
  )
}

/** The newest `limit` audit rows. */
export async function readAudit(db: Db, limit: number): Promise<AuditRecord[]> {
  const rows = await db.all<{ ts: number; who: string; method: string; path: string; status: number; workflow_id: string | null; detail: string | null }>(
    'SELECT ts, who, method, path, status, workflow_id, detail FROM orch_audit ORDER BY id DESC LIMIT ?',
    [limit],
  )
  return rows.map((r) => ({ ...r, ts: iso(r.ts), status: Number(r.status), detail: parse(r.detail) }))
}
