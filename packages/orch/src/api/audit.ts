import type { MiddlewareHandler } from 'hono'
import type { AuditEntry } from '../store/store'
import type { Vars } from './envelope'
import { isMutating } from './guard'

/** Distinct (client, method, status) keys of refused requests kept per window; the rest share one row. */
const MAX_REFUSED_KEYS = 100

interface Refused {
  client: string
  method: string
  path: string
  status: number
  count: number
  first: number
  last: number
}

/**
 * The audit trail: every mutating request of an authenticated client is one row. Requests
 * refused before authentication (bad host, origin, type, size, rate, credentials) are counted
 * per client, method and status and written as one row per window, so a flood of refused
 * requests adds at most MAX_REFUSED_KEYS + 1 rows a window, whatever its size.
 */
export class AuditLog {
  private refused = new Map<string, Refused>()
  private timer: NodeJS.Timeout

  constructor(
    private readonly write: (entries: AuditEntry[]) => Promise<void>,
    windowMs = 60_000,
  ) {
    this.timer = setInterval(() => this.flush().catch(() => {}), windowMs)
    this.timer.unref()
  }

  private noteRefused(client: string, method: string, path: string, status: number) {
    let key = `${client}\u0000${method}\u0000${status}`
    if (!this.refused.has(key) && this.refused.size >= MAX_REFUSED_KEYS) key = '*'
    const now = Date.now()
    const entry = this.refused.get(key)
    if (entry) {
      entry.count++
      entry.last = now
    } else {
      this.refused.set(
        key,
        key === '*'
          ? { client: '*', method: '*', path: '*', status: 0, count: 1, first: now, last: now }
          : { client, method, path, status, count: 1, first: now, last: now },
      )
    }
  }

  /** Writes the refused-request counts of the current window. */
  async flush(): Promise<void> {
    if (!this.refused.size) return
    const entries = [...this.refused.values()]
    this.refused = new Map()
    await this.write(
      entries.map((e) => ({
        who: `unauthenticated@${e.client}`,
        method: e.method,
        path: e.path,
        status: e.status,
        detail: JSON.stringify({ refused: e.count, from: new Date(e.first).toISOString(), to: new Date(e.last).toISOString() }),
      })),
    )
  }

  async close(): Promise<void> {
    clearInterval(this.timer)
    await this.flush()
  }

  middleware(): MiddlewareHandler<Vars> {
    return async (c, next) => {
      let status = 500
      try {
        await next()
        status = c.res.status
      } finally {
        const who = c.get('who')
        if (!who) {
          if (status >= 400) this.noteRefused(c.get('client'), c.req.method, c.req.path, status)
        } else if (isMutating(c.req.method)) {
          const id = /^\/v1\/workflows\/([^/]+)/.exec(c.req.path)?.[1] ?? (c.res.headers.get('x-workflow-id') || undefined)
          await this.write([{ who, method: c.req.method, path: c.req.path, status, workflowId: id }]).catch(() => {})
        }
      }
    }
  }
}
