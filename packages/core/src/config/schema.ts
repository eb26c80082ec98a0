import { z } from 'zod'
import { MODES } from './modes'

/**
 * The configuration schema. Sections are strict (an unknown key is an error with the nearest
 * valid name) except where users add their own names (providers.<name>, paths, dependencies).
 * Built-in values live in `defaults.ts` so `config show --explain` can say they came from there.
 */
const port = z.number().int().min(1).max(65535)
const logLevel = z.enum(['error', 'warn', 'info', 'debug', 'trace'])
const duration = z.union([z.number().nonnegative(), z.string().regex(/^\d+(ms|s|m|h)$/)])

export const sshConfigSchema = z.strictObject({
  /** Default login user on targets. */
  user: z.string().min(1),
  port,
  /** Seconds to wait for a TCP/SSH handshake. */
  connect_timeout: z.number().positive(),
  /** Connection attempts before giving up (with exponential backoff). */
  retries: z.number().int().min(0).max(20),
  /** Private key to use instead of the workspace key (.prov/ssh/id_ed25519). */
  key_path: z.string().optional(),
  /** Seconds of idle time after which pooled connections close. */
  idle_timeout: z.number().positive(),
})

export const configSchema = z.strictObject({
  /** A preset over storage, auth and policy (docs/modes.md); its values are a layer above the defaults. */
  mode: z.enum(MODES),
  workspace: z.strictObject({
    name: z.string(),
    description: z.string().optional(),
  }),
  core: z.strictObject({
    name: z.string(),
    version: z.string().optional(),
  }),
  paths: z.record(z.string(), z.string()),
  debug: z.strictObject({
    enabled: z.boolean(),
    log_level: logLevel,
    check: z.boolean(),
    metadata: z.boolean().optional(),
  }),
  output: z.strictObject({
    format: z.enum(['auto', 'json', 'ndjson', 'yaml', 'table', 'wide']),
  }),
  limits: z.strictObject({
    /** Largest input read whole into memory: piped records, plan and workflow files (bytes). */
    input_bytes: z.number().int().min(1024),
  }),
  cache: z.strictObject({
    enabled: z.boolean(),
    ttl: duration,
  }),
  providers: z.looseObject({
    /** Provider used when a server names none. */
    default: z.string(),
    local: z.strictObject({
      /** Dedicated subnet of local sandbox servers (the bridge takes .1). */
      subnet: z.string().regex(/^\d+\.\d+\.\d+\.\d+\/\d+$/, 'a CIDR such as 10.213.0.0/24'),
      /** Linux bridge name; namespaces and veth names are derived from it, hence short and plain. */
      bridge: z.string().regex(/^[A-Za-z0-9_-]{1,12}$/, '1-12 letters, digits, - or _'),
      /** NAT sandbox traffic to the outside (package mirrors). */
      nat: z.boolean(),
    }),
  }),
  servers: z.strictObject({
    /** Values every server inherits unless it sets its own. */
    defaults: z.record(z.string(), z.unknown()),
  }),
  ssh: sshConfigSchema,
  taskservs: z.strictObject({
    /** Hosts worked on at once. */
    parallel: z.number().int().min(1),
    /** Seconds a script may run before it is killed. */
    timeout: z.number().positive(),
    /** Environment passed to every script (values may be {secret: name} references). */
    env: z.record(z.string(), z.unknown()),
  }),
  secrets: z.strictObject({
    /** Where `{secret: name}` references are looked up. */
    provider: z.enum(['workspace', 'kms', 'env']),
    kms: z.record(z.string(), z.unknown()).optional(),
  }),
  kms: z.strictObject({
    backend: z.enum(['age', 'vault', 'awskms']),
    /** age identity file (default: the workspace's .prov/kms/identity.txt, else the user's). */
    identity_file: z.string().optional(),
    recipients: z.array(z.string()),
    vault: z.strictObject({
      address: z.string(),
      mount: z.string(),
      key: z.string(),
      token_env: z.string(),
      role_id: z.string().optional(),
      secret_id_env: z.string().optional(),
    }),
    aws: z.strictObject({
      region: z.string(),
      key_id: z.string(),
      endpoint: z.string().optional(),
    }),
  }),
  oci: z.strictObject({
    /** Default registry for short references (host[:port]). */
    registry: z.string(),
    /** Namespace under the registry for extensions. */
    namespace: z.string(),
    tls_enabled: z.boolean(),
    require_signatures: z.boolean(),
    /** Public keys trusted for signatures (PEM files). */
    trusted_keys: z.array(z.string()),
    /** Blobs transferred at once. */
    parallel: z.number().int().min(1).max(64),
    /** Blobs larger than this are uploaded in PATCH chunks (bytes). */
    chunk_size: z.number().int().min(1024),
    /** What the layers of one artifact (or a bundle) may unpack to, in bytes; more is refused. */
    max_unpacked_size: z.number().int().min(1024),
    /** Content-addressed cache (default <workspace>/.prov/cache/oci, or the user cache). */
    cache_dir: z.string().optional(),
  }),
  dependencies: z.record(z.string(), z.unknown()),
  orchestrator: z.strictObject({
    enabled: z.boolean(),
    host: z.string(),
    port,
    endpoint: z.string(),
    /** `sqlite:<path>` (default `.prov/orch.db`) or `postgres://...`. */
    store: z.string(),
    parallel_limit: z.number().int().min(1),
    step_timeout: z.number().positive(),
    fallback_to_direct: z.boolean(),
    /** Client timeout when handing work to a running orchestrator (--via-orch). */
    timeout_seconds: z.number().positive(),
    /** REST auth of `prov-orch serve` on TCP: token (the owner's 0600 .prov/orch.token, loopback only) or jwt (key file: PEM public key or a 600 secret). */
    auth: z.strictObject({
      mode: z.enum(['token', 'jwt']),
      key_file: z.string(),
      audience: z.string(),
      issuer: z.string(),
    }),
    /** REST requests per second per client (bursts of twice that); above -> 429. */
    rate_limit: z.number().int().min(1),
    /** Origins (scheme://host:port) a browser may call the API from; none by default (no CORS headers). */
    cors: z.array(z.string()),
    /** Host names the API answers to besides loopback and the bound address (DNS rebinding guard). */
    allowed_hosts: z.array(z.string()),
    /** Largest request body in bytes (above -> 413). */
    max_body: z.number().int().min(1024),
    /** Default cap of a step's stdout in bytes (a workflow may set max_output). */
    max_step_output: z.number().int().min(1),
    paths: z.record(z.string(), z.string()),
  }),
  execution: z.strictObject({
    default_mode: z.enum(['direct', 'orchestrated', 'auto']),
    force_orchestrated: z.array(z.string()),
    force_direct: z.array(z.string()),
  }),
})

export type ProvConfig = z.infer<typeof configSchema>
