import type { Db, Sql } from './db'
import { isDeadlock } from './db'

function ddl(db: Db): string[] {
  const { bigint: big, serial } = db.types
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

/** Columns added after the first schema: a database created by an earlier build gets them. */
const ADDED_COLUMNS: { table: string; name: string; type: string }[] = [
  { table: 'orch_steps', name: 'pid', type: 'INTEGER' },
  { table: 'orch_steps', name: 'pid_host', type: 'TEXT' },
  { table: 'orch_steps', name: 'pid_start', type: 'TEXT' },
  { table: 'orch_steps', name: 'output_truncated', type: 'INTEGER' },
  { table: 'orch_audit', name: 'detail', type: 'TEXT' },
]

async function columnsOf(db: Db, q: Sql, table: string): Promise<Set<string>> {
  const rows =
    db.dialect === 'postgres'
      ? await q.all<{ name: string }>('SELECT column_name AS name FROM information_schema.columns WHERE table_schema = current_schema() AND table_name = ?', [
          table,
        ])
      : await q.all<{ name: string }>(`PRAGMA table_info(${table})`)
  return new Set(rows.map((r) => r.name))
}

async function missingColumns(db: Db, q: Sql) {
  const missing: typeof ADDED_COLUMNS = []
  for (const table of new Set(ADDED_COLUMNS.map((c) => c.table))) {
    const present = await columnsOf(db, q, table)
    missing.push(...ADDED_COLUMNS.filter((c) => c.table === table && !present.has(c.name)))
  }
  return missing
}

async function create(db: Db, q: Sql) {
  for (const statement of ddl(db)) await q.run(statement)
  for (const c of await missingColumns(db, q)) await q.run(`ALTER TABLE ${c.table} ADD COLUMN ${c.name} ${c.type}`)
}

/**
 * Creates or upgrades the schema. SQLite: at open (one writer). PostgreSQL: DDL takes strong
 * table locks, so only when something is missing (the first worker, an older schema), serialised
 * between workers starting together, retried on a deadlock.
 */
export async function ensureSchema(db: Db): Promise<void> {
  if (db.exclusiveEngine) {
    await create(db, db)
    return
  }
  const ready = async () => {
    const tables = await db.all<{ n: number }>(
      "SELECT count(*) AS n FROM information_schema.tables WHERE table_schema = current_schema() AND table_name IN ('orch_workflows', 'orch_steps', 'orch_audit')",
    )
    return Number(tables[0]?.n) === 3 && !(await missingColumns(db, db)).length
  }
  for (let attempt = 1; !(await ready()); attempt++) {
    try {
      await db.tx(async (q) => {
        await q.run('SELECT pg_advisory_xact_lock(74007)')
        await create(db, q)
      })
    } catch (error) {
      if (attempt >= 5 || !isDeadlock(error)) throw error
      await new Promise((r) => setTimeout(r, 50 * attempt))
    }
  }
}
