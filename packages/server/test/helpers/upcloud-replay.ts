/**
 * A loopback server that replays UpCloud API 1.3 traffic recorded against the real API (go-vcr
 * cassettes of UpCloudLtd/upcloud-go-api, vendored in tests/fixtures/upcloud/). It answers only
 * with recorded responses: a request that matches no recorded interaction of the cassettes in
 * play (method, path, query names, JSON body shape) is written to `violations` (the tests assert
 * there are none) and refused with 400.
 *
 * Matching:
 * - A writing request (POST/PUT/DELETE) must be the next writing interaction of a cassette in
 *   play, in the cassette's order; it is used up.
 * - A GET is answered by the latest matching GET recorded before that cassette's next writing
 *   interaction (the server as it was at that point of the session), else by the first one
 *   recorded after it (a read the session has not reached yet).
 * - Bodies match by shape: the same keys, the same scalar types, arrays whose elements match each
 *   other both ways; the values of the keys in `EXACT` must be equal (ids, zone, sizes, kinds of
 *   things: what the recording dictates), other values (names, labels, user data) may differ.
 *   A key no cassette recorded is refused unless it is in `UNRECORDED`; those sent are listed in
 *   `unrecordedSent` so that a test states which ones it relies on.
 * - Query parameters match by name and count; values must be equal except label filters.
 *
 * Statuses the cassettes do not hold (401 for a wrong credential, 429 storms) are injected by the
 * test with `fail()`, in the error body format the recorded 400 of errorhandling.yaml has.
 */
import { readFileSync } from 'node:fs'
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http'
import type { AddressInfo } from 'node:net'
import { join } from 'node:path'
import { parse } from 'yaml'

type Json = Record<string, unknown>

const fixtures = join(import.meta.dirname, '..', '..', '..', '..', 'tests', 'fixtures', 'upcloud')

/** Keys whose values the recording dictates. */
const EXACT = new Set(['storage', 'zone', 'plan', 'action', 'type', 'family', 'tier', 'size', 'password_delivery', 'remote_access_enabled'])
/**
 * Request fields of API 1.3 that prov sends and no cassette of upcloud-go-api recorded (its tests
 * create servers without them); the recorded response to the same request without them is served.
 */
export const UNRECORDED = new Set(['server.user_data', 'server.login_user', 'server.plan'])
/** Query parameters whose values are prov's own (its identity labels). */
const FREE_QUERY = new Set(['label'])
const MAX_BODY = 1 << 20

interface Interaction {
  method: string
  path: string
  query: [string, string][]
  body: unknown
  status: number
  response: string
}

interface Cassette {
  name: string
  interactions: Interaction[]
  /** Indexes of writing interactions used up. */
  used: Set<number>
}

export interface Fault {
  method: string
  /** Matched against the path after the API version (`/zone`, `/server`). */
  path: RegExp
  status: number
  body: Json
  headers?: Record<string, string>
  times: number
}

/** A request kept unanswered until the test releases it (to interrupt prov at a known point). */
export interface Hold {
  /** Resolves when a matching request has arrived. */
  reached: Promise<void>
  /** Lets the held request (and later ones) through to the recorded answer. */
  release(): void
}

export interface Served {
  cassette: string
  index: number
  method: string
  path: string
}

export interface UpcloudReplay {
  url: string
  username: string
  password: string
  violations: string[]
  /** Every request that reached the server: method, path with query, parsed body. */
  requests: { method: string; path: string; body: unknown }[]
  /** Which recorded interaction answered each request. */
  served: Served[]
  /** Paths of `UNRECORDED` fields prov sent. */
  unrecordedSent: Set<string>
  /** The cassettes whose interactions may answer (writes and reads), and ones that may answer reads only. */
  play(cassettes: string[], reads?: string[]): void
  fail(fault: Fault): void
  /** Holds the next request of this method whose API path matches (`/server/{uuid}`) until released. */
  hold(method: string, path: RegExp): Hold
  clearFaults(): void
  close(): Promise<void>
}

function load(name: string): Cassette {
  const doc = parse(readFileSync(join(fixtures, `${name}.yaml`), 'utf8')) as {
    interactions: { request: { method: string; url: string; body: string }; response: { code: number; body: string } }[]
  }
  return {
    name,
    used: new Set(),
    interactions: doc.interactions.map((it) => {
      const url = new URL(it.request.url)
      return {
        method: it.request.method,
        path: url.pathname,
        query: [...url.searchParams.entries()],
        body: it.request.body ? JSON.parse(it.request.body) : undefined,
        status: it.response.code,
        response: it.response.body ?? '',
      }
    }),
  }
}

/** Why `sent` does not have the shape of `recorded` (undefined when it does). */
export function shapeProblem(recorded: unknown, sent: unknown, path: string, unrecorded: Set<string>, key = ''): string | undefined {
  const at = path || 'the body'
  if (Array.isArray(recorded)) {
    if (!Array.isArray(sent)) return `${at}: expected an array`
    for (const [i, element] of sent.entries()) {
      if (recorded.every((r) => shapeProblem(r, element, `${path}[${i}]`, unrecorded, key) !== undefined))
        return `${path}[${i}]: matches no recorded element (${shapeProblem(recorded[0], element, `${path}[${i}]`, unrecorded, key)})`
    }
    for (const [i, element] of recorded.entries()) {
      if (sent.every((s) => shapeProblem(element, s, `${path}[${i}]`, unrecorded, key) !== undefined))
        return `${path}: nothing sent matches recorded element ${i} (${JSON.stringify(element)})`
    }
    return undefined
  }
  if (recorded !== null && typeof recorded === 'object') {
    if (sent === null || typeof sent !== 'object' || Array.isArray(sent)) return `${at}: expected an object`
    for (const k of Object.keys(recorded)) if (!(k in sent)) return `${path ? `${path}.` : ''}${k}: recorded but not sent`
    for (const [k, value] of Object.entries(sent as Json)) {
      const child = path ? `${path}.${k}` : k
      if (!(k in recorded)) {
        if (unrecorded.has(child)) continue
        return `${child}: sent but never recorded`
      }
      const problem = shapeProblem((recorded as Json)[k], value, child, unrecorded, k)
      if (problem) return problem
    }
    return undefined
  }
  if (typeof recorded !== typeof sent) return `${at}: recorded a ${typeof recorded}, sent a ${typeof sent}`
  if (EXACT.has(key) && recorded !== sent) return `${at}: recorded ${JSON.stringify(recorded)}, sent ${JSON.stringify(sent)}`
  return undefined
}

/** The unrecorded fields present in a body (`server.user_data`...). */
function unrecordedIn(body: unknown, path = ''): string[] {
  if (body === null || typeof body !== 'object' || Array.isArray(body)) return []
  return Object.entries(body as Json).flatMap(([k, v]) => {
    const child = path ? `${path}.${k}` : k
    return UNRECORDED.has(child) ? [child] : unrecordedIn(v, child)
  })
}

function queryProblem(recorded: [string, string][], sent: [string, string][]): string | undefined {
  const names = (q: [string, string][]) =>
    q
      .map(([k]) => k)
      .sort()
      .join('&')
  if (names(recorded) !== names(sent)) return `query parameters ${names(sent) || '(none)'}, recorded ${names(recorded) || '(none)'}`
  for (const [k, v] of sent) {
    if (!FREE_QUERY.has(k) && !recorded.some(([rk, rv]) => rk === k && rv === v)) return `query ${k}=${v} was not recorded`
  }
  return undefined
}

function requestProblem(it: Interaction, method: string, path: string, query: [string, string][], body: unknown): string | undefined {
  if (it.method !== method) return `method ${method}, recorded ${it.method}`
  if (it.path !== path) return `path ${path}, recorded ${it.path}`
  const q = queryProblem(it.query, query)
  if (q) return q
  if (it.body === undefined) return body === undefined ? undefined : 'a body where none was recorded'
  if (body === undefined) return 'no body where one was recorded'
  return shapeProblem(it.body, body, '', UNRECORDED)
}

/** Index of the cassette's next writing interaction not used up (its length when none is left). */
function cursor(cassette: Cassette): number {
  const index = cassette.interactions.findIndex((it, i) => it.method !== 'GET' && !cassette.used.has(i))
  return index < 0 ? cassette.interactions.length : index
}

function readBody(req: IncomingMessage): Promise<string> {
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = []
    let size = 0
    req.on('data', (chunk: Buffer) => {
      size += chunk.length
      if (size > MAX_BODY) {
        reject(new Error('request body too large'))
        req.destroy()
        return
      }
      chunks.push(chunk)
    })
    req.on('end', () => resolve(Buffer.concat(chunks).toString('utf8')))
    req.on('error', reject)
  })
}

export async function startUpcloudReplay(): Promise<UpcloudReplay> {
  const username = 'prov-test-api-user'
  const password = 'replay-Secret-9f3a27c1'
  const cassettes = new Map<string, Cassette>()
  const cassette = (name: string) => {
    let found = cassettes.get(name)
    if (!found) {
      found = load(name)
      cassettes.set(name, found)
    }
    return found
  }
  let writable: Cassette[] = []
  let readable: Cassette[] = []
  let faults: Fault[] = []
  let holds: { method: string; path: RegExp; arrived: () => void; released: Promise<void> }[] = []
  const violations: string[] = []
  const requests: UpcloudReplay['requests'] = []
  const served: Served[] = []
  const unrecordedSent = new Set<string>()

  const send = (res: ServerResponse, status: number, body: string, headers: Record<string, string> = {}) => {
    res.writeHead(status, body ? { 'content-type': 'application/json; charset=UTF-8', ...headers } : headers)
    res.end(body)
  }
  const error = (code: string, message: string) => JSON.stringify({ error: { error_code: code, error_message: message } })

  const handle = async (req: IncomingMessage, res: ServerResponse) => {
    const url = new URL(req.url ?? '/', 'http://replay')
    const method = req.method ?? 'GET'
    const text = await readBody(req)
    let body: unknown
    try {
      body = text ? JSON.parse(text) : undefined
    } catch {
      violations.push(`${method} ${url.pathname}: body is not JSON`)
      return send(res, 400, error('REPLAY_BAD_JSON', 'body is not JSON'))
    }
    const path = url.pathname
    const query = [...url.searchParams.entries()]
    requests.push({ method, path: `${path}${url.search}`, body })
    const expected = `Basic ${Buffer.from(`${username}:${password}`).toString('base64')}`
    if (req.headers.authorization !== expected) {
      // UpCloud's documented answer to a wrong API user or password (no cassette holds one).
      return send(res, 401, error('AUTHENTICATION_FAILED', 'Authentication failed using the given username and password.'))
    }
    const apiPath = path.replace(/^\/1\.3/, '')
    const fault = faults.find((f) => f.method === method && f.path.test(apiPath) && f.times > 0)
    if (fault) {
      fault.times--
      return send(res, fault.status, JSON.stringify(fault.body), fault.headers)
    }
    const held = holds.find((h) => h.method === method && h.path.test(apiPath))
    if (held) {
      held.arrived()
      await held.released
    }
    for (const field of unrecordedIn(body)) unrecordedSent.add(field)
    const problems: string[] = []
    if (method !== 'GET') {
      for (const c of writable) {
        const index = cursor(c)
        const it = c.interactions[index]
        if (!it) continue
        const problem = requestProblem(it, method, path, query, body)
        if (!problem) {
          c.used.add(index)
          served.push({ cassette: c.name, index, method, path: `${path}${url.search}` })
          return send(res, it.status, it.response)
        }
        problems.push(`${c.name}#${index}: ${problem}`)
      }
    } else {
      for (const c of [...writable, ...readable]) {
        const at = cursor(c)
        const matching = c.interactions.map((it, i) => ({ it, i })).filter(({ it }) => !requestProblem(it, method, path, query, body))
        const pick = matching.filter(({ i }) => i < at).pop() ?? matching.find(({ i }) => i > at)
        if (pick) {
          served.push({ cassette: c.name, index: pick.i, method, path: `${path}${url.search}` })
          return send(res, pick.it.status, pick.it.response)
        }
      }
    }
    const inPlay = [...writable, ...readable].map((c) => c.name).join(', ') || 'none'
    violations.push(
      `${method} ${path}${url.search}: no recorded interaction matches (cassettes in play: ${inPlay})${problems.length ? `: ${problems.join('; ')}` : ''}`,
    )
    return send(res, 400, error('REPLAY_NOT_RECORDED', `no recorded interaction matches ${method} ${path}`))
  }

  const server: Server = createServer((req, res) => {
    handle(req, res).catch((e: Error) => {
      violations.push(`replay failed: ${e.message}`)
      if (!res.headersSent) send(res, 500, error('REPLAY_FAILED', e.message))
    })
  })
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve))
  const { port } = server.address() as AddressInfo

  return {
    url: `http://127.0.0.1:${port}/1.3`,
    username,
    password,
    violations,
    requests,
    served,
    unrecordedSent,
    play(names, reads = []) {
      writable = names.map(cassette)
      readable = reads.map(cassette)
    },
    fail(fault) {
      faults.push({ ...fault })
    },
    hold(method, path) {
      let arrived = () => {}
      let release = () => {}
      const reached = new Promise<void>((resolve) => {
        arrived = resolve
      })
      const released = new Promise<void>((resolve) => {
        release = resolve
      })
      const entry = { method, path, arrived, released }
      holds.push(entry)
      return {
        reached,
        release() {
          holds = holds.filter((h) => h !== entry)
          release()
        },
      }
    },
    clearFaults() {
      faults = []
    },
    close: () =>
      new Promise<void>((resolve) => {
        server.closeAllConnections()
        server.close(() => resolve())
      }),
  }
}
