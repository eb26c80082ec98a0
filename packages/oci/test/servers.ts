import { createHash } from 'node:crypto'
import { createServer as createHttpServer, request as httpRequest, type IncomingMessage, type Server, type ServerResponse } from 'node:http'
import { createConnection, createServer, type Socket } from 'node:net'

function listen(server: Server | ReturnType<typeof createServer>): Promise<number> {
  return new Promise((resolve) => {
    server.listen(0, '127.0.0.1', () => {
      const address = server.address()
      resolve(typeof address === 'object' && address ? address.port : 0)
    })
  })
}

function close(server: Server | ReturnType<typeof createServer>, sockets: Set<Socket>): Promise<void> {
  for (const s of sockets) s.destroy()
  return new Promise((resolve) => server.close(() => resolve()))
}

/** A TCP proxy that cuts the first `cuts` connections once they have sent `cutAfter` bytes upstream. */
export async function cuttingProxy(upstreamPort: number, options: { cutAfter: number; cuts: number }) {
  let cutsLeft = options.cuts
  let cutCount = 0
  const sockets = new Set<Socket>()
  const server = createServer((client) => {
    const upstream = createConnection({ host: '127.0.0.1', port: upstreamPort })
    sockets.add(client).add(upstream)
    let sent = 0
    client.on('data', (chunk: Buffer) => {
      sent += chunk.length
      if (cutsLeft > 0 && sent > options.cutAfter) {
        cutsLeft--
        cutCount++
        client.destroy()
        upstream.destroy()
        return
      }
      upstream.write(chunk)
    })
    upstream.pipe(client)
    client.on('error', () => upstream.destroy())
    upstream.on('error', () => client.destroy())
    client.on('close', () => upstream.destroy())
  })
  const port = await listen(server)
  return { host: `127.0.0.1:${port}`, cuts: () => cutCount, close: () => close(server, sockets) }
}

/** An HTTP front that demands bearer tokens (WWW-Authenticate flow) and forwards to a registry. */
export async function bearerFront(upstreamPort: number, credential: { user: string; password: string }) {
  const token = 'test-token-0123456789'
  const sockets = new Set<Socket>()
  let tokenRequests = 0
  let redirects = 0
  const scopes: string[] = []
  const server = createHttpServer((req, res) => {
    const url = new URL(req.url ?? '/', 'http://x')
    if (url.pathname === '/token') {
      tokenRequests++
      scopes.push(...url.searchParams.getAll('scope'))
      const expected = `Basic ${Buffer.from(`${credential.user}:${credential.password}`).toString('base64')}`
      if (req.headers.authorization !== expected) {
        res.writeHead(401, { 'content-type': 'application/json' }).end('{"errors":[{"code":"UNAUTHORIZED"}]}')
        return
      }
      res.writeHead(200, { 'content-type': 'application/json' }).end(JSON.stringify({ token, expires_in: 300 }))
      return
    }
    if (req.headers.authorization !== `Bearer ${token}`) {
      const port = (server.address() as { port: number }).port
      res
        .writeHead(401, {
          'content-type': 'application/json',
          'www-authenticate': `Bearer realm="http://127.0.0.1:${port}/token",service="prov-test",scope="repository:x:pull"`,
        })
        .end('{"errors":[{"code":"UNAUTHORIZED","message":"authentication required"}]}')
      req.resume()
      return
    }
    if (req.method === 'GET' && /\/blobs\/sha256:/.test(url.pathname)) {
      // Like registries that serve blobs from object storage: a redirect to another host.
      redirects++
      res.writeHead(307, { location: `http://127.0.0.1:${upstreamPort}${req.url}` }).end()
      req.resume()
      return
    }
    const headers = { ...req.headers }
    delete headers.authorization
    const forward = httpRequest({ host: '127.0.0.1', port: upstreamPort, method: req.method, path: req.url, headers }, (upstream) => {
      const out = { ...upstream.headers }
      if (typeof out.location === 'string') out.location = out.location.replace(`127.0.0.1:${upstreamPort}`, req.headers.host ?? '')
      res.writeHead(upstream.statusCode ?? 502, out)
      upstream.pipe(res)
    })
    forward.on('error', () => res.destroy())
    req.pipe(forward)
  })
  server.on('connection', (s) => sockets.add(s))
  const port = await listen(server)
  return { host: `127.0.0.1:${port}`, tokenRequests: () => tokenRequests, redirects: () => redirects, scopes, close: () => close(server, sockets) }
}

const sha = (b: Buffer) => `sha256:${createHash('sha256').update(b).digest('hex')}`

/** A registry that lies: a blob whose bytes do not match its digest, and a manifest of an unknown type. */
export async function lyingRegistry() {
  const config = Buffer.from('{"name":"liar","kind":"taskserv","version":"1.0.0"}')
  const honest = Buffer.from('honest layer bytes')
  const evil = Buffer.from('evil layer bytes!!')
  const manifest = Buffer.from(
    JSON.stringify({
      schemaVersion: 2,
      mediaType: 'application/vnd.oci.image.manifest.v1+json',
      artifactType: 'application/vnd.prov.taskserv.v1+json',
      config: { mediaType: 'application/vnd.prov.manifest.config.v1+json', digest: sha(config), size: config.length },
      layers: [{ mediaType: 'application/vnd.oci.image.layer.v1.tar+gzip', digest: sha(honest), size: evil.length }],
    }),
  )
  const unknown = Buffer.from(JSON.stringify({ schemaVersion: 2, mediaType: 'application/vnd.example.thing.v1+json', things: [] }))
  const sockets = new Set<Socket>()
  const server = createHttpServer((req, res) => {
    const path = new URL(req.url ?? '/', 'http://x').pathname
    const send = (status: number, body: Buffer, type: string, digest?: string) => {
      res.writeHead(status, { 'content-type': type, 'content-length': body.length, ...(digest ? { 'docker-content-digest': digest } : {}) })
      res.end(req.method === 'HEAD' ? undefined : body)
    }
    if (path === '/v2/') return send(200, Buffer.from('{}'), 'application/json')
    if (path === '/v2/bad/blob/manifests/v1' || path === `/v2/bad/blob/manifests/${sha(manifest)}`)
      return send(200, manifest, 'application/vnd.oci.image.manifest.v1+json', sha(manifest))
    if (path === `/v2/bad/blob/blobs/${sha(config)}`) return send(200, config, 'application/octet-stream')
    if (path === `/v2/bad/blob/blobs/${sha(honest)}`) return send(200, evil, 'application/octet-stream')
    if (path === '/v2/bad/type/manifests/v1' || path === `/v2/bad/type/manifests/${sha(unknown)}`)
      return send(200, unknown, 'application/vnd.example.thing.v1+json', sha(unknown))
    send(404, Buffer.from('{"errors":[{"code":"MANIFEST_UNKNOWN","message":"manifest unknown"}]}'), 'application/json')
  })
  server.on('connection', (s) => sockets.add(s))
  const port = await listen(server)
  return { host: `127.0.0.1:${port}`, honestDigest: sha(honest), close: () => close(server, sockets) }
}

/** A loopback TCP listener that only counts the connections it accepts (and closes them). */
export async function countingListener() {
  let accepted = 0
  const sockets = new Set<Socket>()
  const server = createServer((socket) => {
    accepted++
    sockets.add(socket)
    socket.destroy()
  })
  const port = await listen(server)
  return { port, host: `127.0.0.1:${port}`, accepted: () => accepted, close: () => close(server, sockets) }
}

type Route = (req: IncomingMessage, res: ServerResponse) => void

/**
 * A registry that answers only the given paths (anything else: 404 MANIFEST_UNKNOWN), and counts
 * the connections it accepted: a hostile registry is a script of what it sends.
 */
export async function scriptedRegistry(routes: Record<string, Route>) {
  let accepted = 0
  const sockets = new Set<Socket>()
  const server = createHttpServer((req, res) => {
    const path = new URL(req.url ?? '/', 'http://x').pathname
    const route = routes[path]
    if (route) return route(req, res)
    if (path === '/v2/') return res.writeHead(200, { 'content-type': 'application/json' }).end('{}')
    res.writeHead(404, { 'content-type': 'application/json' }).end('{"errors":[{"code":"MANIFEST_UNKNOWN","message":"manifest unknown"}]}')
  })
  server.on('connection', (s) => {
    accepted++
    sockets.add(s)
  })
  const port = await listen(server)
  return { host: `127.0.0.1:${port}`, accepted: () => accepted, close: () => close(server, sockets) }
}
