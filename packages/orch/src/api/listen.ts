import { randomBytes } from 'node:crypto'
import { lstatSync, rmSync } from 'node:fs'
import { createServer, type Server } from 'node:http'
import { type AddressInfo, createConnection } from 'node:net'
import { join } from 'node:path'
import { getRequestListener } from '@hono/node-server'
import { configError, ORCH_SOCKET_NAME, ORCH_TOKEN_NAME, PROV_VERSION, writeFileAtomic } from '@prov/core'
import { ensurePrivateDir } from '../files'
import type { Api } from './app'

/**
 * The answer to a request the HTTP adapter cannot even turn into a Request (so the app's own
 * guards never see it): a Host the URL parser normalises (`LOCALHOST`, `127.1`, `0x7f000001`,
 * `[::ffff:127.0.0.1]`) or none is refused like any other foreign host (421), anything else is
 * 400 — both with the usual JSON error envelope instead of an empty body.
 */
export function unbuildableRequest(error: unknown): Response {
  const message = error instanceof Error ? error.message : String(error)
  const host = /host header/i.test(message)
  const body = {
    status: 'error',
    data: null,
    metadata: { timestamp: new Date().toISOString(), request_id: `req-${randomBytes(6).toString('hex')}`, version: PROV_VERSION },
    error: host
      ? {
          code: 'MISDIRECTED',
          message: 'this server does not answer to this Host header (give it exactly as 127.0.0.1, localhost or an allowed name)',
          details: { hint: 'use 127.0.0.1 or localhost, or add the name to orchestrator.allowed_hosts (--allow-host)' },
        }
      : { code: 'BAD_REQUEST', message: `malformed request: ${message}`, details: {} },
  }
  return new Response(JSON.stringify(body), { status: host ? 421 : 400, headers: { 'content-type': 'application/json; charset=utf-8' } })
}

export interface Listener {
  /** `host:port` actually bound (port 0 -> the chosen one). */
  address: { host: string; port: number }
  socketPath?: string
  tokenFile?: string
  close(): Promise<void>
  closed: Promise<void>
}

export interface ListenOptions {
  host: string
  port: number
  /** Folder of the socket and the token file (0700). */
  stateDir: string
  /** Write a fresh owner token (token auth on TCP). */
  token?: string
  onWarn?: (message: string) => void
}

export const newOwnerToken = () => randomBytes(32).toString('base64url')

/** True when something accepts connections on the unix socket `path`. */
function socketAnswers(path: string): Promise<boolean> {
  return new Promise((resolve) => {
    const probe = createConnection(path)
    probe.once('connect', () => {
      probe.destroy()
      resolve(true)
    })
    probe.once('error', () => resolve(false))
  })
}

function listenOn(server: Server, target: { path: string } | { host: string; port: number }, what: string): Promise<void> {
  return new Promise((resolve, reject) => {
    server.once('error', (error: NodeJS.ErrnoException) => reject(configError(`cannot listen on ${what}: ${error.code ?? error.message}`, { location: what })))
    if ('path' in target) server.listen(target.path, resolve)
    else server.listen(target.port, target.host, resolve)
  })
}

/**
 * Serves the API on TCP and on the owner-only unix socket `<stateDir>/orch.sock` (mode 0600:
 * connect() needs write permission on it, so other users are refused by the kernel). A fresh
 * random token goes to `<stateDir>/orch.token` (0600) for TCP clients of the same user.
 */
export async function listen(api: Api, options: ListenOptions): Promise<Listener> {
  ensurePrivateDir(options.stateDir)
  const socketPath = join(options.stateDir, ORCH_SOCKET_NAME)
  try {
    const st = lstatSync(socketPath)
    if (!st.isSocket()) throw configError(`${socketPath} exists and is not a socket; refusing to replace it`, { location: socketPath })
    if (await socketAnswers(socketPath)) {
      throw configError(`another prov-orch serve already listens on ${socketPath}`, { location: socketPath, hint: 'stop it first, or use its API' })
    }
    rmSync(socketPath)
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code !== 'ENOENT') throw error
  }
  const tcp = createServer(getRequestListener((req, env) => api.fetch(req, { ...env, transport: 'tcp' }), { errorHandler: unbuildableRequest }))
  const unix = createServer(getRequestListener((req, env) => api.fetch(req, { ...env, transport: 'unix' }), { errorHandler: unbuildableRequest }))
  await listenOn(tcp, { host: options.host, port: options.port }, `${options.host}:${options.port}`)
  let socketBound = false
  // The socket is created by bind(): with umask 0177 it is born 0600, with no window for others.
  const umask = process.umask(0o177)
  try {
    await listenOn(unix, { path: socketPath }, socketPath)
    socketBound = true
  } catch (error) {
    options.onWarn?.(`no unix socket (${(error as Error).message}); local clients need the token`)
  } finally {
    process.umask(umask)
  }
  const tokenFile = options.token ? join(options.stateDir, ORCH_TOKEN_NAME) : undefined
  if (tokenFile) writeFileAtomic(tokenFile, `${options.token}\n`, { mode: 0o600 })
  const address = tcp.address() as AddressInfo
  const closed = Promise.all([
    new Promise<void>((r) => tcp.once('close', () => r())),
    socketBound ? new Promise<void>((r) => unix.once('close', () => r())) : Promise.resolve(),
  ]).then(() => {
    if (socketBound) rmSync(socketPath, { force: true })
    if (tokenFile) rmSync(tokenFile, { force: true })
  })
  return {
    address: { host: options.host, port: address.port },
    socketPath: socketBound ? socketPath : undefined,
    tokenFile,
    closed,
    async close() {
      for (const server of socketBound ? [tcp, unix] : [tcp]) {
        server.close()
        // Event streams would keep the server open until their workflows end.
        server.closeAllConnections?.()
      }
      await closed
    },
  }
}
