/**
 * A loopback Hetzner Cloud API held to Hetzner's own OpenAPI document
 * (tests/fixtures/hcloud/openapi.json): every request prov (or the real `hcloud` CLI) sends must
 * be an operation of the document with a body its request schema accepts, and every answer is
 * checked against the document's response schema before it is sent. Objects are built from the
 * document's own `example` values, so response handling is checked against Hetzner's data, not
 * against our reading of it. Anything that does not match is recorded in `violations` (the tests
 * assert there are none) and answered 400.
 */
import { createHash } from 'node:crypto'
import { readFileSync } from 'node:fs'
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http'
import type { AddressInfo } from 'node:net'
import { join } from 'node:path'
import { Ajv, type ValidateFunction } from 'ajv'

type Json = Record<string, unknown>
type Schema = Json
interface Operation {
  requestBody?: { content: { 'application/json': { schema: Schema } } }
  responses: Record<string, { content?: { 'application/json': { schema: Schema } } }>
}

const fixtures = join(import.meta.dirname, '..', '..', '..', '..', 'tests', 'fixtures', 'hcloud')
const document = JSON.parse(readFileSync(join(fixtures, 'openapi.json'), 'utf8')) as {
  paths: Record<string, Record<string, Operation>>
  components: { schemas: Record<string, Schema> }
}

/** The document's example of a schema: each property's `example`, recursively. */
export function exampleOf(schema: Schema | undefined): unknown {
  if (!schema) return null
  if (typeof schema.$ref === 'string') return exampleOf(document.components.schemas[schema.$ref.split('/').pop() as string])
  if (schema.example !== undefined) return structuredClone(schema.example)
  if (Array.isArray(schema.allOf)) return Object.assign({}, ...schema.allOf.map((s) => exampleOf(s as Schema) as Json))
  if (Array.isArray(schema.oneOf)) return exampleOf(schema.oneOf[0] as Schema)
  if (Array.isArray(schema.anyOf)) return exampleOf(schema.anyOf[0] as Schema)
  if (schema.type === 'array') return [exampleOf(schema.items as Schema)]
  if (schema.type === 'object' || schema.properties) {
    const out: Json = {}
    for (const [key, value] of Object.entries((schema.properties ?? {}) as Record<string, Schema>)) out[key] = exampleOf(value)
    return out
  }
  if (schema.nullable) return null
  return schema.type === 'string' ? '' : schema.type === 'boolean' ? false : 0
}

const schemaOf = (name: string) => document.components.schemas[name]

/**
 * OpenAPI 3.0 writes `nullable: true` beside `$ref`/`allOf` without a `type`, which JSON Schema
 * (ajv) cannot read: such a schema becomes "that, or null".
 */
function jsonSchemaOf(value: unknown): unknown {
  if (Array.isArray(value)) return value.map(jsonSchemaOf)
  if (!value || typeof value !== 'object') return value
  const out: Json = {}
  for (const [key, child] of Object.entries(value as Json)) out[key] = key === 'example' || key === 'examples' ? child : jsonSchemaOf(child)
  if (out.nullable === true && out.type === undefined) {
    const { nullable: _nullable, ...rest } = out
    return { anyOf: [rest, { type: 'null' }] }
  }
  return out
}

const ajv = new Ajv({ strict: false, allErrors: true, validateFormats: false, discriminator: true })
ajv.addSchema({ $id: 'hcloud', components: jsonSchemaOf(document.components) }, 'hcloud')
const compiled = new Map<Schema, ValidateFunction>()
function validator(schema: Schema): ValidateFunction {
  let fn = compiled.get(schema)
  if (!fn) {
    const rebased = JSON.parse(JSON.stringify(jsonSchemaOf(schema)).replaceAll('"#/components/', '"hcloud#/components/')) as Schema
    fn = ajv.compile(rebased)
    compiled.set(schema, fn)
  }
  return fn
}

function findOperation(method: string, path: string): { template: string; operation: Operation; params: Record<string, string> } | undefined {
  for (const [template, item] of Object.entries(document.paths)) {
    const names: string[] = []
    const pattern = new RegExp(
      `^${template.replace(/\{(\w+)\}/g, (_m, name: string) => {
        names.push(name)
        return '([^/]+)'
      })}$`,
    )
    const match = pattern.exec(path)
    const operation = item[method.toLowerCase()]
    if (match && operation) return { template, operation, params: Object.fromEntries(names.map((n, i) => [n, decodeURIComponent(match[i + 1])])) }
  }
  return undefined
}

function idsAsStrings(body: Json, fields: string[]): Json {
  return Object.fromEntries(fields.filter((f) => typeof body[f] === 'number').map((f) => [f, String(body[f])]))
}

/** Hetzner's label selector: `k=v`, `k==v`, `k!=v`, `k`, `!k`, comma-separated. */
function matchesSelector(labels: Record<string, string>, selector: string | null): boolean {
  if (!selector) return true
  return selector.split(',').every((term) => {
    const t = term.trim()
    let m = /^([^!=]+)!=(.*)$/.exec(t)
    if (m) return labels[m[1]] !== m[2]
    m = /^([^!=]+)==?(.*)$/.exec(t)
    if (m) return labels[m[1]] === m[2]
    if (t.startsWith('!')) return !(t.slice(1) in labels)
    return t in labels
  })
}

export interface Fault {
  method: string
  path: RegExp
  /** Absent with `alter`: the recorded answer's own status. */
  status?: number
  body?: Json
  /** Sent as the body as is (not JSON, truncated JSON, a flood): wins over `body`. */
  raw?: string | Buffer
  headers?: Record<string, string>
  /** How many requests it answers (then requests go through again). */
  times: number
  /** The request is carried out, only its answer is replaced (a 500 after the server was made). */
  passThrough?: boolean
  /** The request is carried out and its documented answer altered (labels removed, fields dropped). */
  alter?: (answer: Json | undefined) => Json | undefined
}

export interface HcloudApi {
  url: string
  token: string
  /** Requests that did not match the document (method/path unknown, body refused, answer off-schema). */
  violations: string[]
  /** Every request: method, path with query, parsed body. */
  requests: { method: string; path: string; body: unknown }[]
  servers: Map<number, Json>
  sshKeys: Map<number, Json>
  /** The user_data each server was created with (Hetzner keeps it but never returns it). */
  userData: Map<number, string | undefined>
  /** Answers matching requests with this status and body instead (429 storms, 500 mid-create...). */
  fail(fault: Fault): void
  /** Forgets faults not used up. */
  clearFaults(): void
  close(): Promise<void>
}

/** Starts the API on a free loopback port; `token` is the only bearer token it accepts. */
export async function startHcloudApi(token = 'hcloud-test-token-0123456789'): Promise<HcloudApi> {
  const violations: string[] = []
  const requests: HcloudApi['requests'] = []
  const servers = new Map<number, Json>()
  const sshKeys = new Map<number, Json>()
  const actions = new Map<number, Json>()
  const faults: Fault[] = []
  const userData = new Map<number, string | undefined>()
  let nextId = 1000

  const serverTypes = [
    { ...(exampleOf(schemaOf('server_type')) as Json), id: 1, name: 'cx22', description: 'CX22', cores: 2, memory: 4, disk: 40, storage_type: 'local' },
    { ...(exampleOf(schemaOf('server_type')) as Json), id: 2, name: 'cpx31', description: 'CPX31', cores: 4, memory: 8, disk: 160, storage_type: 'local' },
  ]
  const location = exampleOf(schemaOf('location')) as Json
  const locations = [location, { ...location, id: 2, name: 'nbg1', city: 'Nuremberg', description: 'Nuremberg DC Park 1' }]
  const imageExample = exampleOf(schemaOf('image')) as Json
  const images = [
    {
      ...imageExample,
      id: 114690387,
      name: 'debian-12',
      description: 'Debian 12',
      type: 'system',
      status: 'available',
      os_flavor: 'debian',
      os_version: '12',
      deprecated: null,
      deleted: null,
    },
    {
      ...imageExample,
      id: 67794396,
      name: 'ubuntu-24.04',
      description: 'Ubuntu 24.04',
      type: 'system',
      status: 'available',
      os_flavor: 'ubuntu',
      os_version: '24.04',
    },
  ]

  const action = (command: string, resource: number, type = 'server'): Json => {
    const id = nextId++
    const a = {
      ...(exampleOf(schemaOf('action')) as Json),
      id,
      command,
      status: 'running',
      progress: 0,
      finished: null,
      error: null,
      resources: [{ id: resource, type }],
    }
    actions.set(id, a)
    return a
  }
  const finish = (a: Json) => Object.assign(a, { status: 'success', progress: 100, finished: new Date().toISOString() })
  const meta = (count: number) => ({ pagination: { page: 1, per_page: 50, previous_page: null, next_page: null, last_page: 1, total_entries: count } })
  const error = (status: number, code: string, message: string) => ({ status, body: { error: { code, message, details: {} } } })
  const byIdOrName = <T extends Json>(list: T[], value: unknown) => list.find((x) => x.name === value || x.id === Number(value))

  function handle(method: string, template: string, params: Record<string, string>, query: URLSearchParams, body: Json): { status: number; body?: Json } {
    const selector = query.get('label_selector')
    const name = query.get('name')
    const key = `${method} ${template}`
    switch (key) {
      case 'GET /server_types':
        return { status: 200, body: { server_types: serverTypes.filter((t) => !name || t.name === name), meta: meta(serverTypes.length) } }
      case 'GET /locations':
        return { status: 200, body: { locations: locations.filter((l) => !name || l.name === name), meta: meta(locations.length) } }
      case 'GET /images': {
        const list = images.filter((i) => (!name || i.name === name) && (!query.get('type') || i.type === query.get('type')))
        return { status: 200, body: { images: list, meta: meta(list.length) } }
      }
      case 'GET /networks':
        return { status: 200, body: { networks: [], meta: meta(0) } }
      case 'GET /pricing':
        return { status: 200, body: exampleOf(schemaOf('list_prices_response')) as Json }
      case 'GET /actions': {
        const list = query
          .getAll('id')
          .map((id) => actions.get(Number(id)))
          .filter((a): a is Json => !!a)
          .map(finish)
        return { status: 200, body: { actions: list, meta: meta(list.length) } }
      }
      case 'GET /actions/{id}': {
        const a = actions.get(Number(params.id))
        if (!a) return error(404, 'not_found', 'action not found')
        return { status: 200, body: { action: finish(a) } }
      }
      case 'GET /ssh_keys': {
        const list = [...sshKeys.values()].filter(
          (k) =>
            (!query.get('fingerprint') || k.fingerprint === query.get('fingerprint')) &&
            matchesSelector(k.labels as Record<string, string>, selector) &&
            (!name || k.name === name),
        )
        return { status: 200, body: { ssh_keys: list, meta: meta(list.length) } }
      }
      case 'POST /ssh_keys': {
        if ([...sshKeys.values()].some((k) => k.name === body.name)) return error(409, 'uniqueness_error', 'SSH key with the same name already exists')
        const blob = Buffer.from(String(body.public_key).split(/\s+/)[1] ?? '', 'base64')
        const fingerprint = createHash('md5').update(blob).digest('hex').match(/../g)?.join(':')
        const id = nextId++
        const k = {
          ...(exampleOf(schemaOf('ssh_key')) as Json),
          id,
          name: body.name,
          public_key: body.public_key,
          fingerprint,
          labels: body.labels ?? {},
          created: new Date().toISOString(),
        }
        sshKeys.set(id, k)
        return { status: 201, body: { ssh_key: k } }
      }
      case 'DELETE /ssh_keys/{id}':
        if (!sshKeys.delete(Number(params.id))) return error(404, 'not_found', 'ssh key not found')
        return { status: 204 }
      case 'GET /servers': {
        const list = [...servers.values()].filter((s) => matchesSelector(s.labels as Record<string, string>, selector) && (!name || s.name === name))
        return { status: 200, body: { servers: list, meta: meta(list.length) } }
      }
      case 'POST /servers': {
        const type = byIdOrName(serverTypes, body.server_type)
        if (!type) return error(400, 'invalid_input', `invalid input in field 'server_type'`)
        const image = byIdOrName(images, body.image)
        if (!image) return error(400, 'invalid_input', `invalid input in field 'image'`)
        const loc = body.location === undefined ? locations[0] : byIdOrName(locations, body.location)
        if (!loc) return error(400, 'invalid_input', `invalid input in field 'location'`)
        if ([...servers.values()].some((s) => s.name === body.name)) return error(409, 'uniqueness_error', 'server name is already used')
        for (const keyRef of (body.ssh_keys as unknown[]) ?? [])
          if (!byIdOrName([...sshKeys.values()], keyRef)) return error(400, 'invalid_input', 'ssh key not found')
        const id = nextId++
        const example = exampleOf(schemaOf('server')) as Json
        const octet = (id % 250) + 2
        const server: Json = {
          ...example,
          id,
          name: body.name,
          status: 'initializing',
          created: new Date().toISOString(),
          labels: body.labels ?? {},
          // No ISO attached (the example's ISO object has values off its own enums).
          iso: null,
          server_type: type,
          image,
          datacenter: { ...(example.datacenter as Json), location: loc, name: `${loc.name}-dc14` },
          public_net: { ...(example.public_net as Json), ipv4: { ...((example.public_net as Json).ipv4 as Json), ip: `198.51.100.${octet}` } },
        }
        servers.set(id, server)
        userData.set(id, typeof body.user_data === 'string' ? body.user_data : undefined)
        const start = action('start_server', id)
        return { status: 201, body: { server, action: action('create_server', id), next_actions: [start], root_password: null } }
      }
      case 'GET /servers/{id}': {
        const server = servers.get(Number(params.id))
        if (!server) return error(404, 'not_found', 'server with ID not found')
        // Booting takes one look: the first GET after create sees it running.
        if (server.status === 'initializing' || server.status === 'starting') server.status = 'running'
        return { status: 200, body: { server } }
      }
      case 'DELETE /servers/{id}': {
        const id = Number(params.id)
        if (!servers.delete(id)) return error(404, 'not_found', 'server with ID not found')
        return { status: 200, body: { action: finish(action('delete_server', id)) } }
      }
      case 'POST /servers/{id}/actions/poweron':
      case 'POST /servers/{id}/actions/shutdown':
      case 'POST /servers/{id}/actions/poweroff': {
        const server = servers.get(Number(params.id))
        if (!server) return error(404, 'not_found', 'server with ID not found')
        server.status = template.endsWith('poweron') ? 'starting' : 'off'
        const command = template.endsWith('poweron') ? 'start_server' : template.endsWith('shutdown') ? 'shutdown_server' : 'stop_server'
        return { status: 201, body: { action: action(command, server.id as number) } }
      }
      default:
        return error(404, 'not_found', `${key} is in the document but not emulated`)
    }
  }
  const send = (res: ServerResponse, status: number, body?: Json, headers: Record<string, string> = {}) => {
    res.writeHead(status, { 'content-type': 'application/json', ...headers })
    res.end(body === undefined ? undefined : JSON.stringify(body))
  }

  const server: Server = createServer((req: IncomingMessage, res: ServerResponse) => {
    const chunks: Buffer[] = []
    req.on('data', (c: Buffer) => chunks.push(c))
    req.on('end', () => {
      try {
        answer(req, res, Buffer.concat(chunks).toString('utf8'))
      } catch (error) {
        violations.push(`${req.method} ${req.url}: the emulator failed: ${(error as Error).message}`)
        send(res, 500, { error: { code: 'server_error', message: 'emulator failure' } })
      }
    })
  })

  function answer(req: IncomingMessage, res: ServerResponse, raw: string): void {
    const url = new URL(req.url ?? '/', 'http://127.0.0.1')
    const method = req.method ?? 'GET'
    let body: Json = {}
    try {
      body = raw ? (JSON.parse(raw) as Json) : {}
    } catch {
      violations.push(`${method} ${url.pathname}: body is not JSON`)
      send(res, 400, { error: { code: 'json_error', message: 'invalid JSON' } })
      return
    }
    requests.push({ method, path: `${url.pathname}${url.search}`, body: raw ? body : undefined })
    if (req.headers.authorization !== `Bearer ${token}`) {
      send(res, 401, { error: { code: 'unauthorized', message: 'unable to authenticate', details: {} } })
      return
    }
    const path = url.pathname.replace(/^\/v1/, '')
    const found = findOperation(method, path)
    if (!found) {
      violations.push(`${method} ${path}: no such operation in Hetzner's OpenAPI document`)
      send(res, 404, { error: { code: 'not_found', message: 'not found' } })
      return
    }
    const requestSchema = found.operation.requestBody?.content['application/json'].schema
    if (requestSchema && raw) {
      const check = validator(requestSchema)
      // The document types "ID or name" fields as strings; the API also takes the numeric ID, which
      // the hcloud CLI of Debian (1.30) sends for image and server_type.
      const documented = found.template === '/servers' && method === 'POST' ? { ...body, ...idsAsStrings(body, ['image', 'server_type', 'location']) } : body
      if (!check(documented)) {
        violations.push(`${method} ${found.template}: request body refused by the document: ${ajv.errorsText(check.errors)}`)
        send(res, 400, { error: { code: 'invalid_input', message: ajv.errorsText(check.errors) } })
        return
      }
    } else if (raw && !requestSchema) {
      violations.push(`${method} ${found.template}: sends a body the operation does not take`)
    }
    const fault = faults.find((f) => f.times > 0 && f.method === method && f.path.test(path))
    if (fault) {
      fault.times--
      if (fault.alter) {
        const reply = handle(method, found.template, found.params, url.searchParams, body)
        send(res, fault.status ?? reply.status, fault.alter(reply.body), fault.headers)
        return
      }
      if (fault.passThrough) handle(method, found.template, found.params, url.searchParams, body)
      if (fault.raw !== undefined) {
        res.writeHead(fault.status ?? 200, { 'content-type': 'application/json', ...fault.headers })
        res.end(fault.raw)
        return
      }
      send(res, fault.status ?? 200, fault.body, fault.headers)
      return
    }
    const reply = handle(method, found.template, found.params, url.searchParams, body)
    const responseSchema = (found.operation.responses[String(reply.status)] ?? found.operation.responses[`${String(reply.status)[0]}xx`])?.content?.[
      'application/json'
    ]?.schema
    if (reply.body && responseSchema) {
      const check = validator(responseSchema)
      if (!check(reply.body)) violations.push(`${method} ${found.template}: the emulator's own answer is off the document: ${ajv.errorsText(check.errors)}`)
    } else if (reply.body && reply.status < 400) {
      violations.push(`${method} ${found.template}: status ${reply.status} is not a documented answer`)
    }
    send(res, reply.status, reply.body)
  }
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve))
  const port = (server.address() as AddressInfo).port
  return {
    url: `http://127.0.0.1:${port}/v1`,
    token,
    violations,
    requests,
    servers,
    sshKeys,
    fail: (fault) => faults.push(fault),
    clearFaults: () => {
      faults.length = 0
    },
    userData,
    close: () => new Promise<void>((resolve) => server.close(() => resolve())),
  }
}
