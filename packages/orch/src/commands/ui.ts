import { spawn } from 'node:child_process'
import { lstatSync } from 'node:fs'
import { request } from 'node:http'
import { join } from 'node:path'
import { defineProvCommand, describeStoreUrl, failedError, notFoundError, ORCH_SOCKET_NAME, orchStateDir, parseStoreUrl, usageError } from '@prov/core'
import { storeArg, storeUrlFor } from '../context'

interface LoginLink {
  role: string
  expires_at: string
  ttl_seconds: number
  url: string | null
  token: string
}

/** Asks the server on the owner-only unix socket for a one-time login link (only the owner can connect to it). */
function mintLoginLink(socketPath: string, role: string): Promise<LoginLink> {
  const body = JSON.stringify({ role })
  return new Promise((resolve, reject) => {
    const req = request(
      {
        socketPath,
        method: 'POST',
        path: '/v1/login-tokens',
        headers: { host: 'localhost', 'content-type': 'application/json', 'content-length': Buffer.byteLength(body), accept: 'application/json' },
        signal: AbortSignal.timeout(10_000),
      },
      (res) => {
        const chunks: Buffer[] = []
        res.on('data', (chunk: Buffer) => chunks.push(chunk))
        res.on('error', reject)
        res.on('end', () => {
          let answer: { data?: LoginLink; error?: { message?: string } } = {}
          try {
            answer = JSON.parse(Buffer.concat(chunks).toString('utf8'))
          } catch {
            // reported below
          }
          if (res.statusCode === 201 && answer.data?.token) resolve(answer.data)
          else reject(failedError(`the server refused a login link: HTTP ${res.statusCode} ${answer.error?.message ?? ''}`.trim(), { location: socketPath }))
        })
      },
    )
    req.on('error', (error) =>
      reject(failedError(`no answer on ${socketPath}: ${error.message}`, { location: socketPath, hint: 'is prov-orch serve still running on this store?' })),
    )
    req.end(body)
  })
}

/** A desktop session has a display; a server shell has none, and no browser to open. */
const hasDesktop = () => Boolean(process.env.DISPLAY || process.env.WAYLAND_DISPLAY)

export default defineProvCommand({
  meta: {
    name: 'ui',
    description:
      'A one-time login link to the dashboard of the running prov-orch serve (printed; opened in the browser on a desktop): valid once, for 5 minutes',
    examples: ['prov-orch ui', 'prov-orch ui --role viewer --no-open', 'prov-orch ui --store sqlite:/srv/prov/.prov/orch.db'],
    mutating: true,
  },
  args: {
    store: storeArg,
    role: { type: 'enum', options: ['viewer', 'operator', 'admin'], description: 'What the session may do (default admin: the owner)', valueHint: 'ROLE' },
    open: { type: 'boolean', description: 'Open the link with xdg-open when a desktop is present (default true; --no-open prints only)', default: true },
  },
  async run({ args, positionals, common, emit, log }) {
    if (positionals.length) throw usageError(`unexpected argument '${positionals[0]}'`, { hint: 'prov-orch ui [--role viewer]' })
    if (common.check) throw usageError('ui does not support --check (a login link is only made by asking the server)', { hint: 'prov-orch ui --no-open' })
    const role = (args.role as string | undefined) ?? 'admin'
    const { url, baseDir } = await storeUrlFor(common, args.store)
    const socketPath = join(orchStateDir(parseStoreUrl(url, baseDir), baseDir), ORCH_SOCKET_NAME)
    let isSocket = false
    try {
      isSocket = lstatSync(socketPath).isSocket()
    } catch {
      // no server
    }
    if (!isSocket) {
      throw notFoundError(`no prov-orch serve runs on store ${describeStoreUrl(url)} (no socket ${socketPath})`, {
        location: socketPath,
        hint: 'start prov-orch serve in this workspace first (or name its store with --store)',
      })
    }
    const link = await mintLoginLink(socketPath, role)
    if (!link.url) throw failedError('the server did not say where it listens; cannot build a login link', { location: socketPath })
    emit({ schema: 'prov.orch.ui-login/v1', url: link.url, role: link.role, expires_at: link.expires_at })
    log.info(`the dashboard login link (role ${link.role}) works once, within ${Math.round(link.ttl_seconds / 60)} minutes`)
    if (args.open && hasDesktop()) {
      const opener = spawn('xdg-open', [link.url], { stdio: 'ignore', detached: true })
      opener.on('error', () => log.warn('could not run xdg-open; open the link yourself'))
      opener.unref()
    }
  },
})
