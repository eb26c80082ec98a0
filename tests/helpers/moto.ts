/**
 * moto_server (moto 5): an independent AWS emulator, so AWS code is tested against someone
 * else's reading of the APIs, not only ours. Started on a free loopback port, reset with
 * POST /moto-api/reset, stopped by its own pid. `scripts/setup.sh` checks it is there.
 */
import { type ChildProcess, spawn } from 'node:child_process'
import { existsSync, readdirSync } from 'node:fs'
import { createServer, type IncomingMessage } from 'node:http'
import { homedir } from 'node:os'
import { join } from 'node:path'
import { setTimeout as sleep } from 'node:timers/promises'
import { freePort } from './net'

/** The moto_server binary: $MOTO_SERVER, else pyenv's ~/.pyenv/versions/<python>/bin; throws when there is none. */
export function motoServerPath(): string {
  const versions = join(homedir(), '.pyenv', 'versions')
  const found = existsSync(versions)
    ? readdirSync(versions)
        .map((version) => join(versions, version, 'bin', 'moto_server'))
        .filter((path) => existsSync(path))
    : []
  if (process.env.MOTO_SERVER && existsSync(process.env.MOTO_SERVER)) found.unshift(process.env.MOTO_SERVER)
  if (!found.length) {
    throw new Error(
      `moto_server is missing (looked in ${versions}/*/bin and $MOTO_SERVER): install moto 5 with its server (pip install 'moto[server]>=5'), or point MOTO_SERVER at it; the AWS tests run against it`,
    )
  }
  return found[0]
}

export interface Moto {
  url: string
  /** Forgets every resource (POST /moto-api/reset). */
  reset(): Promise<void>
  /**
   * Every resource moto holds for one service (GET /moto-api/data.json), to show that a command
   * changed nothing. Per service: moto sets up other services' backends lazily on first use.
   */
  data(service: string): Promise<string>
  close(): Promise<void>
}

/** Starts moto_server on a free loopback port; `env` adds settings such as INITIAL_NO_AUTH_ACTION_COUNT. */
export async function startMoto(env: Record<string, string> = {}): Promise<Moto> {
  const binary = motoServerPath()
  const port = await freePort()
  const url = `http://127.0.0.1:${port}`
  const child: ChildProcess = spawn(binary, ['-H', '127.0.0.1', '-p', String(port)], { stdio: ['ignore', 'ignore', 'pipe'], env: { ...process.env, ...env } })
  let stderr = ''
  child.stderr?.on('data', (chunk: Buffer) => {
    stderr = `${stderr}${chunk}`.slice(-2000)
  })
  const stop = () =>
    new Promise<void>((resolve) => {
      if (child.exitCode !== null || child.signalCode !== null) return resolve()
      child.once('exit', () => resolve())
      child.kill('SIGTERM')
    })
  for (let attempt = 0; ; attempt++) {
    if (child.exitCode !== null) throw new Error(`moto_server exited (${child.exitCode}): ${stderr}`)
    try {
      const response = await fetch(`${url}/moto-api/`)
      if (response.status < 500) break
    } catch {
      // not listening yet
    }
    if (attempt > 300) {
      await stop()
      throw new Error(`moto_server did not start on ${url}: ${stderr}`)
    }
    await sleep(100)
  }
  return {
    url,
    async reset() {
      await fetch(`${url}/moto-api/reset`, { method: 'POST' })
    },
    async data(service) {
      const all = (await (await fetch(`${url}/moto-api/data.json`)).json()) as Record<string, unknown>
      return JSON.stringify(all[service] ?? null)
    },
    close: stop,
  }
}

/** What the proxy does to a request of one query-API action, `times` times. */
export type AwsFault =
  /** Answers 503 RequestLimitExceeded without passing the request on (EC2's throttling answer). */
  | 'throttle'
  /** Passes the request on, so moto acts on it, then answers 500 InternalError instead of moto's answer. */
  | 'fail-after-acting'

export interface AwsProxy {
  url: string
  /** The `Action` of every request seen, in order (faulted ones included). */
  actions: string[]
  fault(action: string, fault: AwsFault, times: number): void
  clear(): void
  close(): Promise<void>
}

/**
 * A loopback proxy in front of moto for the AWS query protocol (EC2): it logs each request's
 * Action (to prove a command made no mutating call) and injects throttling and server errors in
 * the documented EC2 error shape; every other answer is moto's own.
 */
export async function startAwsProxy(target: string): Promise<AwsProxy> {
  const actions: string[] = []
  const faults = new Map<string, { fault: AwsFault; left: number }>()
  const bodyOf = (request: IncomingMessage) =>
    new Promise<Buffer>((resolveBody, reject) => {
      const chunks: Buffer[] = []
      request.on('data', (chunk: Buffer) => chunks.push(chunk))
      request.on('end', () => resolveBody(Buffer.concat(chunks)))
      request.on('error', reject)
    })
  const ec2Error = (code: string, message: string) =>
    `<?xml version="1.0" encoding="UTF-8"?>\n<Response><Errors><Error><Code>${code}</Code><Message>${message}</Message></Error></Errors><RequestID>00000000-0000-4000-8000-000000000000</RequestID></Response>`
  const server = createServer(async (request, response) => {
    try {
      const body = await bodyOf(request)
      const action = new URLSearchParams(body.toString('utf8')).get('Action') ?? new URL(request.url ?? '/', 'http://x').searchParams.get('Action') ?? ''
      actions.push(action)
      const planned = faults.get(action)
      const fault = planned && planned.left > 0 ? planned.fault : undefined
      if (planned && fault) planned.left--
      if (fault === 'throttle') {
        response.writeHead(503, { 'content-type': 'text/xml' }).end(ec2Error('RequestLimitExceeded', 'Request limit exceeded.'))
        return
      }
      const headers = Object.fromEntries(
        Object.entries(request.headers).filter(([name, value]) => typeof value === 'string' && !['host', 'connection', 'content-length'].includes(name)),
      ) as Record<string, string>
      const answer = await fetch(`${target}${request.url ?? '/'}`, {
        method: request.method,
        headers,
        body: request.method === 'GET' || request.method === 'HEAD' ? undefined : body,
      })
      const text = Buffer.from(await answer.arrayBuffer())
      if (fault === 'fail-after-acting') {
        response.writeHead(500, { 'content-type': 'text/xml' }).end(ec2Error('InternalError', 'An internal error has occurred.'))
        return
      }
      response.writeHead(answer.status, { 'content-type': answer.headers.get('content-type') ?? 'text/xml' }).end(text)
    } catch (error) {
      response.writeHead(502).end(String(error))
    }
  })
  await new Promise<void>((resolveListen, reject) => {
    server.on('error', reject)
    server.listen(0, '127.0.0.1', () => resolveListen())
  })
  const address = server.address()
  const port = typeof address === 'object' && address ? address.port : 0
  return {
    url: `http://127.0.0.1:${port}`,
    actions,
    fault(action, fault, times) {
      faults.set(action, { fault, left: times })
    },
    clear() {
      faults.clear()
    },
    close: () =>
      new Promise<void>((resolveClose) => {
        server.closeAllConnections()
        server.close(() => resolveClose())
      }),
  }
}
