/**
 * A local stand-in for HashiCorp Vault (Transit, AppRole login, sys/health), for tests only:
 * Vault itself cannot run here. It follows Vault's documented HTTP API strictly, so a client that
 * sends something real Vault would refuse is refused here too. Each rule names the page of the
 * Vault API documentation (https://developer.hashicorp.com/vault/api-docs/...) it comes from; the
 * error texts are Vault's own (builtin/logical/transit, sdk/helper/keysutil).
 */
import { createCipheriv, createDecipheriv, hkdfSync, randomBytes } from 'node:crypto'
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http'
import type { AddressInfo } from 'node:net'

interface TransitKey {
  versions: Buffer[]
  derived: boolean
}

type Capability = 'create' | 'update' | 'read'
/** A token's policy: capabilities per API path (without the /v1/ prefix), e.g. `transit/encrypt/prov`. */
export type VaultPolicy = Record<string, Capability[]>

export type HealthMode = 'active' | 'standby' | 'perf-standby' | 'dr-secondary' | 'uninitialized' | 'sealed'

export interface VaultContract {
  url: string
  /** A token with every capability (like a root token). */
  token: string
  roleId: string
  secretId: string
  requests: Array<{ method: string; path: string; body: Record<string, unknown>; headers: IncomingMessage['headers'] }>
  /** A new token limited to `policy`. */
  createToken(policy: VaultPolicy): string
  /** Answer the next n requests (except sys/health) with 429 (rate limit quota) or 503 (sealed). */
  throttle(n: number, status?: 429 | 503): void
  /** What sys/health reports (and sealed: every other request is 503). */
  setHealth(mode: HealthMode): void
  rotateKey(name: string): void
  close(): Promise<void>
}

/** The policy an AppRole login gets: what prov-kms needs on one Transit key. */
export function transitPolicy(key: string, mount = 'transit'): VaultPolicy {
  return Object.fromEntries(['encrypt', 'decrypt', 'rewrap', 'datakey/plaintext'].map((op) => [`${mount}/${op}/${key}`, ['update'] as Capability[]]))
}

/**
 * Go's base64.StdEncoding.DecodeString, which Vault uses for every base64 field: the standard
 * alphabet with padding; only CR and LF are skipped. Returns the error Go reports, or the bytes.
 */
function goBase64(text: string): Buffer | string {
  const clean = text.replace(/[\r\n]/g, '')
  const bad = clean.search(/[^A-Za-z0-9+/=]/)
  if (bad >= 0) return `illegal base64 data at input byte ${bad}`
  if (clean.length % 4 !== 0 || /=[^=]/.test(clean) || /={3,}$/.test(clean)) return `illegal base64 data at input byte ${Math.max(0, clean.length - 1)}`
  return Buffer.from(clean, 'base64')
}

export async function startVaultContract(keys: Record<string, { derived?: boolean }> = { prov: { derived: true } }): Promise<VaultContract> {
  const token = `hvs.${randomBytes(18).toString('base64url')}`
  const roleId = 'role-1234'
  const secretId = `secret-${randomBytes(8).toString('hex')}`
  const state = new Map<string, TransitKey>()
  for (const [name, options] of Object.entries(keys)) state.set(name, { versions: [randomBytes(32)], derived: options.derived ?? false })
  // undefined policy: every capability.
  const tokens = new Map<string, VaultPolicy | undefined>([[token, undefined]])
  let throttleLeft = 0
  let throttleStatus = 429
  let health: HealthMode = 'active'
  const requests: VaultContract['requests'] = []

  const send = (res: ServerResponse, status: number, body: unknown, headers: Record<string, string> = {}) => {
    res.writeHead(status, { 'content-type': 'application/json', ...headers })
    res.end(JSON.stringify(body))
  }
  // api-docs#error-response: errors are a JSON object with an `errors` list of strings.
  const errors = (res: ServerResponse, status: number, message: string, headers?: Record<string, string>) => send(res, status, { errors: [message] }, headers)
  const permissionDenied = (res: ServerResponse) => errors(res, 403, '1 error occurred:\n\t* permission denied\n\n')

  // api-docs/secret/transit#create-key (derived): derived keys need a context on every operation;
  // for other keys the context is not used.
  const keyFor = (key: TransitKey, version: number, context: Buffer | undefined): Buffer | string => {
    const base = key.versions[version - 1]
    if (!key.derived) return base
    if (!context?.length)
      return "missing 'context' for key derivation; the key was created using a derived key, which means additional, per-request information must be included in order to perform operations with the key"
    return Buffer.from(hkdfSync('sha256', base, context, 'vault-transit-derived', 32))
  }
  const seal = (key: TransitKey, plain: Buffer, context: Buffer | undefined): string => {
    const version = key.versions.length
    const k = keyFor(key, version, context)
    if (typeof k === 'string') throw new Error(k)
    const nonce = randomBytes(12)
    const cipher = createCipheriv('aes-256-gcm', k, nonce)
    const ct = Buffer.concat([cipher.update(plain), cipher.final(), cipher.getAuthTag()])
    return `vault:v${version}:${Buffer.concat([nonce, ct]).toString('base64')}`
  }
  // sdk/helper/keysutil Policy.Decrypt: the checks and messages in this order.
  const open = (key: TransitKey, ciphertext: string, context: Buffer | undefined): Buffer => {
    if (!ciphertext.startsWith('vault:v')) throw new Error('invalid ciphertext: no prefix')
    const parts = ciphertext.slice('vault:v'.length).split(/:(.*)/s)
    if (parts.length < 2) throw new Error('invalid ciphertext: wrong number of fields')
    if (!/^-?\d+$/.test(parts[0])) throw new Error('invalid ciphertext: version number could not be decoded')
    const version = Math.max(1, Number(parts[0]))
    if (version > key.versions.length) throw new Error('invalid ciphertext: version is too new')
    const raw = goBase64(parts[1])
    if (typeof raw === 'string') throw new Error('invalid ciphertext: could not decode base64')
    const k = keyFor(key, version, context)
    if (typeof k === 'string') throw new Error(k)
    if (raw.length < 28) throw new Error('invalid ciphertext length')
    const decipher = createDecipheriv('aes-256-gcm', k, raw.subarray(0, 12))
    decipher.setAuthTag(raw.subarray(raw.length - 16))
    try {
      return Buffer.concat([decipher.update(raw.subarray(12, raw.length - 16)), decipher.final()])
    } catch {
      throw new Error('cipher: message authentication failed')
    }
  }

  // api-docs/system/health#read-health-information: the status code tells the node's state.
  const healthAnswer = (): [number, Record<string, unknown>] => {
    const base = { initialized: true, sealed: false, standby: false, performance_standby: false, version: '1.15.0+contract', cluster_name: 'contract' }
    switch (health) {
      case 'active':
        return [200, base]
      case 'standby':
        return [429, { ...base, standby: true }]
      case 'dr-secondary':
        return [472, { ...base, standby: true, replication_dr_mode: 'secondary' }]
      case 'perf-standby':
        return [473, { ...base, standby: true, performance_standby: true }]
      case 'uninitialized':
        return [501, { ...base, initialized: false, sealed: true }]
      case 'sealed':
        return [503, { ...base, sealed: true }]
    }
  }

  const handle = async (req: IncomingMessage, res: ServerResponse) => {
    const chunks: Buffer[] = []
    for await (const chunk of req) chunks.push(chunk as Buffer)
    const path = (req.url ?? '').replace(/\?.*$/, '')
    const raw = Buffer.concat(chunks).toString('utf8')
    let body: Record<string, unknown> = {}
    // api-docs#http-api: request bodies are JSON.
    if (raw.trim()) {
      try {
        body = JSON.parse(raw)
      } catch (error) {
        return errors(res, 400, `failed to parse JSON input: ${(error as Error).message}`)
      }
    }
    requests.push({ method: req.method ?? 'GET', path, body, headers: req.headers })
    if (path === '/v1/sys/health' && (req.method === 'GET' || req.method === 'HEAD')) {
      const [status, answer] = healthAnswer()
      return send(res, status, answer)
    }
    // api-docs#http-status-codes: a sealed Vault answers 503 to everything else.
    if (health === 'sealed' || health === 'uninitialized') return errors(res, 503, 'Vault is sealed')
    if (throttleLeft > 0) {
      throttleLeft--
      // docs/enterprise/lease-count-quotas, api-docs#http-status-codes: 429 with Retry-After.
      return throttleStatus === 429
        ? errors(res, 429, `request path "${path.slice(4)}": rate limit quota exceeded`, { 'retry-after': '0' })
        : errors(res, 503, 'Vault is sealed')
    }
    // api-docs/auth/approle#login-with-approle: no token needed.
    if (path === '/v1/auth/approle/login') {
      if (req.method !== 'POST' && req.method !== 'PUT') return errors(res, 405, 'unsupported operation')
      if (typeof body.role_id !== 'string' || !body.role_id) return errors(res, 400, 'missing role_id')
      if (body.role_id !== roleId || body.secret_id !== secretId) return errors(res, 400, 'invalid role or secret ID')
      const issued = `hvs.${randomBytes(18).toString('base64url')}`
      tokens.set(issued, transitPolicy('prov'))
      return send(res, 200, { auth: { client_token: issued, policies: ['default', 'prov'], lease_duration: 3600, renewable: true } })
    }
    // api-docs#authentication: the token comes in X-Vault-Token or `Authorization: Bearer`.
    const bearer = /^Bearer (\S+)$/.exec(String(req.headers.authorization ?? ''))?.[1]
    const presented = String(req.headers['x-vault-token'] ?? bearer ?? '')
    if (!tokens.has(presented)) return permissionDenied(res)
    const match = /^\/v1\/transit\/(encrypt|decrypt|rewrap|datakey\/plaintext|datakey\/wrapped|keys)\/([^/]+)(\/rotate)?$/.exec(path)
    if (!match) return errors(res, 404, `no handler for route "${path.slice(4)}". route entry not found.`)
    // api-docs/secret/transit: every operation used here is a POST (PUT works the same).
    if (req.method !== 'POST' && req.method !== 'PUT') return errors(res, 405, 'unsupported operation')
    const [, op, name, rotate] = match
    const key = state.get(name)
    // docs/concepts/policies#capabilities: POST to a path that does not exist yet is `create`
    // (encrypt with a missing key creates it), otherwise `update`.
    const capability: Capability = op === 'encrypt' && !key ? 'create' : 'update'
    const policy = tokens.get(presented)
    if (policy && !policy[path.slice(4)]?.includes(capability)) return permissionDenied(res)
    if (op === 'keys' && rotate) {
      // api-docs/secret/transit#rotate-key
      if (!key) return errors(res, 400, 'encryption key not found')
      key.versions.push(randomBytes(32))
      return send(res, 204, {})
    }
    // api-docs/secret/transit#encrypt-data etc.: context is base64 (checked before the key).
    let context: Buffer | undefined
    if (body.context !== undefined && body.context !== '') {
      const decoded = typeof body.context === 'string' ? goBase64(body.context) : 'not a string'
      if (typeof decoded === 'string') return errors(res, 400, 'failed to base64-decode context')
      context = decoded
    }
    try {
      switch (op) {
        case 'encrypt': {
          if (typeof body.plaintext !== 'string') return errors(res, 400, 'missing plaintext to encrypt')
          const plain = goBase64(body.plaintext)
          if (typeof plain === 'string') return errors(res, 400, plain)
          let target = key
          if (!target) {
            // Created on first use, derived when the request carries a context.
            target = { versions: [randomBytes(32)], derived: context !== undefined }
            state.set(name, target)
          }
          return send(res, 200, { data: { ciphertext: seal(target, plain, context), key_version: target.versions.length } })
        }
        case 'decrypt':
        case 'rewrap': {
          if (typeof body.ciphertext !== 'string' || !body.ciphertext) return errors(res, 400, 'missing ciphertext to decrypt')
          if (!key) return errors(res, 400, 'encryption key not found')
          const plain = open(key, body.ciphertext, context)
          if (op === 'decrypt') return send(res, 200, { data: { plaintext: plain.toString('base64') } })
          return send(res, 200, { data: { ciphertext: seal(key, plain, context), key_version: key.versions.length } })
        }
        default: {
          // api-docs/secret/transit#generate-data-key
          if (!key) return errors(res, 400, 'encryption key not found')
          const bits = body.bits === undefined ? 256 : Number(body.bits)
          if (![128, 256, 512].includes(bits)) return errors(res, 400, 'invalid bit length')
          const plain = randomBytes(bits / 8)
          const data: Record<string, unknown> = { ciphertext: seal(key, plain, context), key_version: key.versions.length }
          if (op === 'datakey/plaintext') data.plaintext = plain.toString('base64')
          return send(res, 200, { data })
        }
      }
    } catch (error) {
      return errors(res, 400, (error as Error).message)
    }
  }

  const server: Server = createServer((req, res) => {
    handle(req, res).catch((error) => errors(res, 500, String(error)))
  })
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve))
  const { port } = server.address() as AddressInfo
  return {
    url: `http://127.0.0.1:${port}`,
    token,
    roleId,
    secretId,
    requests,
    createToken(policy) {
      const issued = `hvs.${randomBytes(18).toString('base64url')}`
      tokens.set(issued, policy)
      return issued
    },
    throttle(n, status = 429) {
      throttleLeft = n
      throttleStatus = status
    },
    setHealth(mode) {
      health = mode
    },
    rotateKey(name) {
      state.get(name)?.versions.push(randomBytes(32))
    },
    close: () =>
      new Promise<void>((resolve) => {
        server.closeAllConnections()
        server.close(() => resolve())
      }),
  }
}
