import { configError, defineProvCommand, isLoopbackHost, usageError } from '@prov/core'
import { engineSettings, openStore, positiveInt, storeArg } from '../context'

const list = (value: string | undefined, fallback: string[]) =>
  value === undefined
    ? fallback
    : value
        .split(',')
        .map((s) => s.trim())
        .filter(Boolean)

export default defineProvCommand({
  meta: {
    name: 'serve',
    description:
      'REST API (+ an engine): the owner-only unix socket .prov/orch.sock, and TCP 127.0.0.1:9090 with the token in .prov/orch.token; any other address needs --auth jwt',
    examples: [
      'prov-orch serve',
      'prov-orch serve --host 0.0.0.0 --auth jwt --jwt-key /etc/prov/jwt.pem',
      'prov-orch serve --no-engine --store postgres://prov@db:5432/prov',
    ],
    mutating: true,
  },
  args: {
    host: { type: 'string', description: 'Address to bind (default config orchestrator.host, 127.0.0.1)' },
    port: { type: 'string', description: 'Port (default 9090; 0 = any free port)' },
    store: storeArg,
    auth: { type: 'enum', options: ['token', 'jwt'], description: 'TCP clients: token (the owner token file, loopback only) or jwt' },
    'jwt-key': { type: 'string', description: 'JWT key file: PEM public key (RS/ES/EdDSA) or a shared secret (HS*, >= 32 chars, mode 600)', valueHint: 'FILE' },
    audience: { type: 'string', description: 'Expected JWT audience (default prov-orch)' },
    issuer: { type: 'string', description: 'Expected JWT issuer (optional)' },
    'rate-limit': { type: 'string', description: 'Requests per second per client address (default 20, bursts of twice that)', valueHint: 'N' },
    cors: { type: 'string', description: 'Browser origins allowed to call the API, comma-separated (default none)', valueHint: 'ORIGIN' },
    'allow-host': { type: 'string', description: 'Host names to answer to besides loopback and the bound address, comma-separated', valueHint: 'NAME' },
    'max-body': { type: 'string', description: 'Largest request body in bytes (default 1048576)', valueHint: 'BYTES' },
    engine: { type: 'boolean', description: 'Also run workflow steps in this process (default true; --no-engine for an API-only node)', default: true },
    concurrency: { type: 'string', description: 'Steps at once in the engine (default 32)', valueHint: 'N' },
  },
  async run({ args, positionals, common, log }) {
    if (positionals.length) throw usageError(`unexpected argument '${positionals[0]}'`)
    if (common.check)
      throw usageError('serve does not support --check (it changes nothing until requests arrive)', { hint: 'prov-orch validate FILE checks a workflow' })
    const { loadCommandConfig } = await import('@prov/core/config')
    const loaded = await loadCommandConfig(common)
    const orch = loaded.config.orchestrator
    const host = args.host ?? orch.host
    const port = args.port === undefined ? orch.port : Number(args.port)
    if (!Number.isInteger(port) || port < 0 || port > 65535) throw usageError(`--port must be 0-65535, got '${args.port}'`, { location: '--port' })
    const authMode = (args.auth as 'token' | 'jwt' | undefined) ?? orch.auth.mode
    const mode = loaded.config.mode
    if (mode === 'multi-user' || mode === 'enterprise') {
      // Several people share this orchestrator: each must be someone (a JWT), and the store must outlive this host.
      if (authMode !== 'jwt') {
        throw configError(`mode ${mode} requires --auth jwt`, {
          location: 'mode',
          hint: 'add --auth jwt --jwt-key FILE (orchestrator.auth.mode: jwt), or prov mode set solo',
        })
      }
      const storeUrl = args.store ?? process.env.PROV_ORCH_STORE ?? orch.store
      if (!/^postgres(ql)?:\/\//.test(storeUrl)) {
        throw configError(`mode ${mode} requires a PostgreSQL store`, {
          location: 'mode',
          hint: 'set orchestrator.store (or --store) to postgres://user@host:5432/db, or prov mode set solo',
        })
      }
    }
    if (authMode !== 'jwt' && !isLoopbackHost(host)) {
      throw configError(`refusing to serve on ${host} without JWT authentication`, {
        location: '--host',
        hint: 'add --auth jwt --jwt-key FILE, or bind 127.0.0.1',
      })
    }
    const { loadJwtKey } = await import('../api/auth')
    let key: ReturnType<typeof loadJwtKey> | undefined
    if (authMode === 'jwt') {
      const keyFile = args['jwt-key'] ?? (process.env.PROV_ORCH_JWT_KEY_FILE || orch.auth.key_file || undefined)
      if (!keyFile) throw configError('--auth jwt needs a key', { location: '--jwt-key', hint: 'a PEM public key or a secret file (chmod 600)' })
      try {
        key = loadJwtKey(keyFile)
      } catch (error) {
        throw configError(`cannot use JWT key ${keyFile}: ${(error as Error).message}`, { location: '--jwt-key' })
      }
    }
    const rateLimit = positiveInt(args['rate-limit'], '--rate-limit', orch.rate_limit)
    const maxBody = positiveInt(args['max-body'], '--max-body', orch.max_body)
    const concurrency = positiveInt(args.concurrency, '--concurrency', common.parallel ?? 32)
    const store = await openStore(common, args.store, { loaded })
    const { listen, newOwnerToken } = await import('../api/listen')
    const { createApi } = await import('../api/app')
    const { Engine } = await import('../engine')
    const engine = args.engine ? new Engine(store, { ...(await engineSettings(common, loaded)), concurrency, onWarn: (m) => log.warn(m) }) : undefined
    if (engine) await store.acquireEngineLock(engine.owner)
    const token = authMode === 'token' ? newOwnerToken() : undefined
    let publicUrl: string | undefined
    const api = createApi(store, {
      auth: { mode: authMode, token, key, audience: args.audience ?? orch.auth.audience, issuer: args.issuer ?? (orch.auth.issuer || undefined) },
      rateLimit,
      host,
      allowedHosts: list(args['allow-host'], orch.allowed_hosts),
      cors: list(args.cors, orch.cors),
      maxBody,
      publicUrl: () => publicUrl,
    })
    const listener = await listen(api, { host, port, stateDir: store.stateDir, token, onWarn: (m) => log.warn(m) })
    const where = `http://${host.includes(':') ? `[${host}]` : host}:${listener.address.port}`
    // A browser cannot go to a wildcard address: login links name loopback, which the host guard always accepts.
    const browserHost = host === '0.0.0.0' ? '127.0.0.1' : host === '::' ? '[::1]' : host.includes(':') ? `[${host}]` : host
    publicUrl = `http://${browserHost}:${listener.address.port}`
    log.info(
      `prov-orch listening on ${where}${listener.socketPath ? ` and ${listener.socketPath}` : ''} (store ${store.location}; TCP clients need ${listener.tokenFile ? `the owner token in ${listener.tokenFile}` : 'a JWT'}; dashboard: ${publicUrl}/ui/, log in with prov-orch ui)`,
    )
    let stopping: Promise<void> | undefined
    const stop = () => {
      engine?.stop()
      stopping ??= listener.close()
    }
    process.once('SIGINT', stop)
    process.once('SIGTERM', stop)
    try {
      await Promise.all([engine?.run(), listener.closed])
    } finally {
      stop()
      await stopping
      await api.close().catch(() => {})
      await store.close()
    }
  },
})
