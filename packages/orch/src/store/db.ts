import { createRequire } from 'node:module'
import { dirname } from 'node:path'
import { describeStoreUrl, failedError, isProvError, usageError } from '@prov/core'
import { assertPrivateStore, ensurePrivateDir, ensurePrivateFile, restrictFile } from '../files'

/** The few SQL operations the store needs; `?` placeholders in both dialects. */
export interface Sql {
  all<T = Record<string, unknown>>(sql: string, params?: unknown[]): Promise<T[]>
  run(sql: string, params?: unknown[]): Promise<number>
}

/**
 * A database and what its dialect means for the store. The store's operations use these
 * properties, never the dialect's name: SQLite has one writer and locks the whole file for a
 * transaction; PostgreSQL locks the rows a transaction selects FOR UPDATE, so several workers
 * share one store.
 */
export interface Db extends Sql {
  dialect: 'sqlite' | 'postgres'
  /** A human description of where the data lives (no password). */
  location: string
  /** One engine per store (SQLite: a second one is refused); otherwise workers share it under leases. */
  exclusiveEngine: boolean
  /** Suffix of a SELECT that locks its rows until commit ('' where the transaction locks everything). */
  forUpdate: string
  /** The same, skipping rows another transaction holds. */
  forUpdateSkipLocked: string
  /** Statement bounding how long a transaction waits for a row lock, if the database needs one. */
  lockTimeout?: string
  /** Column types of the schema. */
  types: { bigint: string; serial: string }
  tx<T>(fn: (q: Sql) => Promise<T>): Promise<T>
  close(): Promise<void>
}

const TRANSIENT = new Set(['40P01', '40001', '55P03', 'SQLITE_BUSY'])
const CONNECTION = new Set(['ECONNREFUSED', 'ECONNRESET', 'ENOTFOUND', 'ETIMEDOUT', 'EPIPE', '57P01', '57P02', '57P03', '08006', '08003', '08001'])

/** PostgreSQL deadlock_detected / serialization_failure / lock_not_available, SQLite busy: safe to retry the transaction. */
export function isTransientConflict(error: unknown): boolean {
  return TRANSIENT.has(String((error as NodeJS.ErrnoException)?.code))
}

/** PostgreSQL deadlock_detected. */
export const isDeadlock = (error: unknown) => (error as { code?: string })?.code === '40P01'

/** Connection-level failures (the store went away), as opposed to bugs or bad data. */
export function isStoreError(error: unknown): boolean {
  const e = error as NodeJS.ErrnoException & { severity?: string }
  if (!e) return false
  if (CONNECTION.has(String(e.code))) return true
  // node-postgres reports some connection losses without a code.
  return /Connection terminated|timeout exceeded when trying to connect|Client has encountered a connection error|connect ECONNREFUSED|the database system is (shutting down|starting up)/i.test(
    String(e.message),
  )
}

const require = createRequire(import.meta.url)

/**
 * SQLite through better-sqlite3 (synchronous; calls are serialised so an async transaction owns
 * the connection until it commits). WAL + synchronous=FULL: every commit is fsynced, so a state
 * change that was reported is on disk even after a power loss (NORMAL would survive `kill -9`
 * but not a power cut; choose it with `?synchronous=normal`).
 */
export function openSqlite(spec: string): Db {
  const [path, query] = spec.split('?')
  const params = new URLSearchParams(query ?? '')
  const synchronous = (params.get('synchronous') ?? 'full').toUpperCase()
  if (!['FULL', 'NORMAL', 'EXTRA'].includes(synchronous)) throw usageError(`unknown synchronous mode '${synchronous}'`, { location: '--store' })
  const Database = require('better-sqlite3') as typeof import('better-sqlite3')
  let db: import('better-sqlite3').Database
  try {
    // Step outputs and logs are in here: 0600 in a 0700 folder. SQLite gives the -wal and -shm
    // files the mode of the database; they are checked too, in case an older build made them.
    ensurePrivateDir(dirname(path))
    assertPrivateStore(path)
    ensurePrivateFile(path)
    db = new Database(path, { timeout: 10_000 })
    db.pragma('journal_mode = WAL')
    db.pragma(`synchronous = ${synchronous}`)
    db.pragma('busy_timeout = 10000')
    for (const suffix of ['-wal', '-shm']) restrictFile(`${path}${suffix}`)
  } catch (error) {
    if (isProvError(error)) throw error
    throw failedError(`store unreachable: cannot open SQLite database ${path}: ${(error as Error).message}`, { location: path })
  }
  const statements = new Map<string, import('better-sqlite3').Statement>()
  const prepare = (sql: string) => {
    let statement = statements.get(sql)
    if (!statement) {
      statement = db.prepare(sql)
      statements.set(sql, statement)
    }
    return statement
  }
  const norm = (params: unknown[] = []) => params.map((p) => (typeof p === 'boolean' ? (p ? 1 : 0) : p === undefined ? null : p))
  const sql: Sql = {
    async all<T>(text: string, params?: unknown[]) {
      const st = prepare(text)
      if (st.reader) return st.all(...norm(params)) as T[]
      st.run(...norm(params))
      return []
    },
    async run(text: string, params?: unknown[]) {
      return prepare(text).run(...norm(params)).changes
    },
  }
  let chain: Promise<unknown> = Promise.resolve()
  return {
    dialect: 'sqlite',
    location: path,
    exclusiveEngine: true,
    forUpdate: '',
    forUpdateSkipLocked: '',
    types: { bigint: 'INTEGER', serial: 'INTEGER PRIMARY KEY AUTOINCREMENT' },
    ...sql,
    tx<T>(fn: (q: Sql) => Promise<T>): Promise<T> {
      const next = chain.then(async () => {
        db.exec('BEGIN IMMEDIATE')
        try {
          const result = await fn(sql)
          db.exec('COMMIT')
          return result
        } catch (error) {
          if (db.inTransaction) db.exec('ROLLBACK')
          throw error
        }
      })
      chain = next.catch(() => {})
      return next
    },
    async close() {
      await chain
      db.close()
    },
  }
}

export async function openPostgres(url: string): Promise<Db> {
  const pg = require('pg') as typeof import('pg')
  pg.types.setTypeParser(20, (v: string) => Number(v))
  const pool = new pg.Pool({ connectionString: url, max: 4, connectionTimeoutMillis: 5000 })
  // An idle client losing its server must not crash the process; queries report the failure.
  pool.on('error', () => {})
  // Same for a client inside a transaction: its query rejects; the 'error' event must not crash us.
  pool.on('connect', (client) => {
    client.on('error', () => {})
  })
  const where = describeStoreUrl(url)
  try {
    const client = await pool.connect()
    client.release()
  } catch (error) {
    await pool.end().catch(() => {})
    throw failedError(`store unreachable: ${where}: ${(error as Error).message || (error as NodeJS.ErrnoException).code}`, {
      location: '--store',
      hint: 'start PostgreSQL or fix the URL',
    })
  }
  const convert = (sql: string) => {
    let n = 0
    return sql.replace(/\?/g, () => `$${++n}`)
  }
  const over = (runner: { query: import('pg').Pool['query'] }): Sql => ({
    async all<T>(sql: string, params?: unknown[]) {
      const result = await runner.query(convert(sql), params as unknown[])
      return result.rows as T[]
    },
    async run(sql: string, params?: unknown[]) {
      const result = await runner.query(convert(sql), params as unknown[])
      return result.rowCount ?? 0
    },
  })
  return {
    dialect: 'postgres',
    location: where,
    exclusiveEngine: false,
    forUpdate: ' FOR UPDATE',
    forUpdateSkipLocked: ' FOR UPDATE SKIP LOCKED',
    lockTimeout: "SET LOCAL lock_timeout = '2s'",
    types: { bigint: 'BIGINT', serial: 'BIGSERIAL PRIMARY KEY' },
    ...over(pool),
    async tx<T>(fn: (q: Sql) => Promise<T>): Promise<T> {
      const client = await pool.connect()
      try {
        await client.query('BEGIN')
        const result = await fn(over(client))
        await client.query('COMMIT')
        return result
      } catch (error) {
        await client.query('ROLLBACK').catch(() => {})
        throw error
      } finally {
        client.release()
      }
    },
    async close() {
      await pool.end()
    },
  }
}
