/**
 * A local contract server for the HashiCorp Vault Transit HTTP API (the documented request and
 * response shapes of /v1/transit/{encrypt,decrypt,rewrap,datakey/plaintext}/:name,
 * /v1/auth/approle/login and /v1/sys/health), including its error answers:
 * 403 {"errors":["permission denied"]}, 400 for bad ciphertext/context, 429 and 503.
 * It only exists for tests: Vault itself cannot run here.
 */
import { createCipheriv, createDecipheriv, hkdfSync, randomBytes } from 'node:crypto'
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http'
import type { AddressInfo } from 'node:net'

interface TransitKey {
  versions: Buffer[]
  derived: boolean
}

export interface VaultContract {
  url: string
  token: string
  roleId: string
  secretId: string
  requests: Array<{ method: string; path: string; body: Record<string, unknown> }>
  /** Answer the next n transit calls with this status (429 or 503). */
  throttle(n: number, status?: 429 | 503): void
  /** Deny every transit call (403 permission denied). */
  deny(on: boolean): void
  rotateKey(name: string): void
  close(): Promise<void>
}

export async function startVaultContract(keys: Record<string, { derived?: boolean }> = { prov: { derived: true } }): Promise<VaultContract> {
  const token = `hvs.${randomBytes(18).toString('base64url')}`
  const roleId = 'role-1234'
  const secretId = `secret-${randomBytes(8).toString('hex')}`
  const state = new Map<string, TransitKey>()
  for (const [name, options] of Object.entries(keys)) state.set(name, { versions: [randomBytes(32)], derived: options.derived ?? false })
  const tokens = new Set([token])
  let throttleLeft = 0
  let throttleStatus = 429
  let denied = false
  const requests: VaultContract['requests'] = []

  const send = (res: ServerResponse, status: number, body: unknown) => {
    res.writeHead(status, { 'content-type': 'application/json', ...(status === 429 ? { 'retry-after': '0' } : {}) })
    res.end(JSON.stringify(body))
  }
  const errors = (res: ServerResponse, status: number, message: string) => send(res, status, { errors: [message] })

  const keyFor = (key: TransitKey, version: number, context: string | undefined): Buffer | string => {
    const base = key.versions[version - 1]
    if (!base) return 'invalid ciphertext: key version not found'
    if (!key.derived) return base
    if (!context)
      return "missing 'context' for key derivation; the key was created using a derived key, which means additional, per-request information must be included in order to perform operations with the key"
    return Buffer.from(hkdfSync('sha256', base, Buffer.from(context, 'base64'), 'vault-transit-derived', 32))
  }
  const seal = (key: TransitKey, plain: Buffer, context: string | undefined): string => {
    const version = key.versions.length
    const k = keyFor(key, version, context)
    if (typeof k === 'string') throw new Error(k)
    const nonce = randomBytes(12)
    const cipher = createCipheriv('aes-256-gcm', k, nonce)
    const ct = Buffer.concat([cipher.update(plain), cipher.final(), cipher.getAuthTag()])
    return `vault:v${version}:${Buffer.concat([nonce, ct]).toString('base64')}`
  }
  const open = (key: TransitKey, ciphertext: string, context: string | undefined): Buffer => {
    const match = /^vault:v(\d+):([A-Za-z0-9+/=]+)$/.exec(ciphertext ?? '')
    if (!match) throw new Error('invalid ciphertext: no prefix')
    const k = keyFor(key, Number(match[1]), context)
    if (typeof k === 'string') throw new Error(k)
    const raw = Buffer.from(match[2], 'base64')
    if (raw.length < 28) throw new Error('invalid ciphertext: too short')
    const decipher = createDecipheriv('aes-256-gcm', k, raw.subarray(0, 12))
    decipher.setAuthTag(raw.subarray(raw.length - 16))
    try {
      return Buffer.concat([decipher.update(raw.subarray(12, raw.length - 16)), decipher.final()])
    } catch {
      throw new Error('cipher: message authentication failed')
    }
  }

  const handle = async (req: IncomingMessage, res: ServerResponse) => {
    const chunks: Buffer[] = []
    for await (const chunk of req) chunks.push(chunk as Buffer)
    let body: Record<string, unknown> = {}
    try {
      body = chunks.length ? JSON.parse(Buffer.concat(chunks).toString('utf8')) : {}
    } catch {
      return errors(res, 400, 'failed to parse JSON input')
    }
    const path = (req.url ?? '').replace(/\?.*$/, '')
    requests.push({ method: req.method ?? 'GET', path, body })
    if (path === '/v1/sys/health') return send(res, 200, { initialized: true, sealed: false, standby: false, version: '1.15.0+contract' })
    if (path === '/v1/auth/approle/login' && req.method === 'POST') {
      if (body.role_id !== roleId || body.secret_id !== secretId) return errors(res, 400, 'invalid role or secret ID')
      const issued = `hvs.${randomBytes(18).toString('base64url')}`
      tokens.add(issued)
      return send(res, 200, { auth: { client_token: issued, policies: ['default', 'prov'], lease_duration: 3600, renewable: true } })
    }
    if (!tokens.has(String(req.headers['x-vault-token'] ?? ''))) return errors(res, 403, 'permission denied')
    const match = /^\/v1\/transit\/(encrypt|decrypt|rewrap|datakey\/plaintext|keys)\/([^/]+)(\/rotate)?$/.exec(path)
    if (!match || req.method !== 'POST') return errors(res, 404, `no handler for route "${path}"`)
    if (throttleLeft > 0) {
      throttleLeft--
      return throttleStatus === 429 ? errors(res, 429, 'request path "transit/": rate limit quota exceeded') : errors(res, 503, 'Vault is sealed')
    }
    if (denied) return errors(res, 403, 'permission denied')
    const [, op, name, rotate] = match
    const key = state.get(name)
    if (op === 'keys' && rotate) {
      if (!key) return errors(res, 400, 'encryption key not found')
      key.versions.push(randomBytes(32))
      return send(res, 204, {})
    }
    if (!key) return errors(res, 400, 'encryption key not found')
    const context = typeof body.context === 'string' ? body.context : undefined
    try {
      switch (op) {
        case 'encrypt': {
          if (typeof body.plaintext !== 'string') return errors(res, 400, 'missing plaintext to encrypt')
          return send(res, 200, { data: { ciphertext: seal(key, Buffer.from(body.plaintext, 'base64'), context), key_version: key.versions.length } })
        }
        case 'decrypt':
          return send(res, 200, { data: { plaintext: open(key, String(body.ciphertext), context).toString('base64') } })
        case 'rewrap':
          return send(res, 200, { data: { ciphertext: seal(key, open(key, String(body.ciphertext), context), context), key_version: key.versions.length } })
        case 'datakey/plaintext': {
          const bits = Number(body.bits ?? 256)
          if (![128, 256, 512].includes(bits)) return errors(res, 400, 'invalid bits given')
          const plain = randomBytes(bits / 8)
          return send(res, 200, { data: { plaintext: plain.toString('base64'), ciphertext: seal(key, plain, context), key_version: key.versions.length } })
        }
      }
    } catch (error) {
      return errors(res, 400, (error as Error).message)
    }
    return errors(res, 404, 'unsupported')
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
    throttle(n, status = 429) {
      throttleLeft = n
      throttleStatus = status
    },
    deny(on) {
      denied = on
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
