import { configError, defineProvCommand, usageError } from '@prov/core'
import { openStore, positiveInt, storeArg } from '../context'

const LOOPBACK = /^(127\.\d+\.\d+\.\d+|::1|localhost)$/

export default defineProvCommand({
  meta: { name: 'serve', description: 'REST API (+ an engine) on 127.0.0.1:9090; any other address needs --auth jwt' },
  args: {
    host: { type: 'string', description: 'Address to bind (default config orchestrator.host, 127.0.0.1)' },
    port: { type: 'string', description: 'Port (default 9090; 0 = any free port)' },
    store: storeArg,
    auth: { type: 'string', description: 'none (loopback only) or jwt' },
    'jwt-key': { type: 'string', description: 'JWT key file: PEM public key (RS/ES/EdDSA) or a shared secret (HS*, >= 32 chars, mode 600)', valueHint: 'FILE' },
    audience: { type: 'string', description: 'Expected JWT audience (default prov-orch)' },
    issuer: { type: 'string', description: 'Expected JWT issuer (optional)' },
    'rate-limit': { type: 'string', description: 'Requests per second per client (default 20, bursts of twice that)', valueHint: 'N' },
    engine: { type: 'boolean', description: 'Also run workflow steps in this process (default true; --no-engine for an API-only node)', default: true },
    concurrency: { type: 'string', description: 'Steps at once in the engine (default 32)', valueHint: 'N' },
  },
  async run({ args, positionals, common, log }) {
    if (positionals.length) throw usageError(`unexpected argument '${positionals[0]}'`)
    const { loadCommandConfig } = await import('@prov/core/config')
    const { config } = await loadCommandConfig(common)
    const host = args.host ?? config.orchestrator.host
    const port = args.port === undefined ? config.orchestrator.port : Number(args.port)
    if (!Number.isInteger(port) || port < 0 || port > 65535) throw usageError(`--port must be 0-65535, got '${args.port}'`, { location: '--port' })
    const authMode = args.auth ?? config.orchestrator.auth.mode
    if (authMode !== 'none' && authMode !== 'jwt') throw usageError(`unknown --auth '${authMode}'`, { location: '--auth', hint: 'use none or jwt' })
    if (authMode === 'none' && !LOOPBACK.test(host)) {
      throw configError(`refusing to serve on ${host} without authentication`, { location: '--host', hint: 'add --auth jwt --jwt-key FILE, or bind 127.0.0.1' })
    }
    const { createApi, loadJwtKey } = await import('../server')
    let key: ReturnType<typeof loadJwtKey> | undefined
    if (authMode === 'jwt') {
      const keyFile = args['jwt-key'] ?? (process.env.PROV_ORCH_JWT_KEY_FILE || config.orchestrator.auth.key_file || undefined)
      if (!keyFile) throw configError('--auth jwt needs a key', { location: '--jwt-key', hint: 'a PEM public key or a secret file (chmod 600)' })
      try {
        key = loadJwtKey(keyFile)
      } catch (error) {
        throw configError(`cannot use JWT key ${keyFile}: ${(error as Error).message}`, { location: '--jwt-key' })
      }
    }
    const rateLimit = positiveInt(args['rate-limit'], '--rate-limit', config.orchestrator.rate_limit)
    const concurrency = positiveInt(args.concurrency, '--concurrency', common.parallel ?? 32)
    const store = await openStore(common, args.store)
    const { Engine } = await import('../engine')
    const engine = args.engine ? new Engine(store, { concurrency, onWarn: (m) => log.warn(m) }) : undefined
    if (engine) await store.acquireEngineLock(engine.owner)
    const app = createApi(store, {
      auth: {
        mode: authMode,
        key,
        audience: args.audience ?? config.orchestrator.auth.audience,
        issuer: args.issuer ?? (config.orchestrator.auth.issuer || undefined),
      },
      rateLimit,
    })
    const { serve } = await import('@hono/node-server')
    const server = await new Promise<ReturnType<typeof serve>>((resolve, reject) => {
      const s = serve({ fetch: app.fetch, hostname: host, port }, () => resolve(s))
      s.once('error', (error: NodeJS.ErrnoException) =>
        reject(configError(`cannot listen on ${host}:${port}: ${error.code ?? error.message}`, { location: '--port' })),
      )
    })
    const address = server.address()
    const actualPort = typeof address === 'object' && address ? address.port : port
    log.info(`prov-orch listening on http://${host.includes(':') ? `[${host}]` : host}:${actualPort} (store ${store.db.location}, auth ${authMode})`)
    const stop = () => {
      engine?.stop()
      server.close()
      // Event streams would keep the server open until their workflows end.
      ;(server as { closeAllConnections?: () => void }).closeAllConnections?.()
    }
    process.once('SIGINT', stop)
    process.once('SIGTERM', stop)
    const running = engine?.run()
    await Promise.all([running, new Promise((r) => server.once('close', r))]).catch((error) => {
      server.close()
      throw error
    })
    await store.close()
  },
})
