import type { ProvConfig } from './schema'

/** Layer 1: built-in defaults. Every documented key has a value here. */
export const defaultConfig: ProvConfig = {
  workspace: { name: 'default' },
  core: { name: 'prov' },
  paths: {},
  debug: { enabled: false, log_level: 'info', check: false },
  output: { format: 'auto' },
  cache: { enabled: true, ttl: '1h' },
  providers: {
    default: 'local',
    local: { subnet: '10.213.0.0/24', bridge: 'provbr0', nat: true },
  },
  servers: { defaults: {} },
  ssh: { user: 'root', port: 22, connect_timeout: 10, retries: 3, idle_timeout: 30 },
  taskservs: { parallel: 20, timeout: 600, env: {} },
  secrets: { provider: 'workspace' },
  kms: {
    backend: 'age',
    recipients: [],
    vault: { address: 'http://127.0.0.1:8200', mount: 'transit', key: 'prov', token_env: 'VAULT_TOKEN' },
    aws: { region: 'us-east-1', key_id: 'alias/prov' },
  },
  oci: {
    registry: 'localhost:5000',
    namespace: 'prov',
    tls_enabled: true,
    require_signatures: false,
    trusted_keys: [],
    parallel: 4,
    chunk_size: 64 * 1024 * 1024,
  },
  dependencies: {},
  orchestrator: {
    enabled: true,
    host: '127.0.0.1',
    port: 9090,
    endpoint: 'http://127.0.0.1:9090',
    store: 'sqlite:.prov/orch.db',
    parallel_limit: 10,
    step_timeout: 3600,
    fallback_to_direct: true,
    timeout_seconds: 60,
    auth: { mode: 'none', key_file: '', audience: 'prov-orch', issuer: '' },
    rate_limit: 20,
    paths: {},
  },
  execution: {
    default_mode: 'auto',
    force_orchestrated: ['server.create', 'cluster.create', 'batch.*', 'workflow.*'],
    force_direct: ['*.list', '*.show', 'help', 'version'],
  },
}
