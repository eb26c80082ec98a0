import { randomBytes } from 'node:crypto'
import { readFileSync, writeFileSync } from 'node:fs'
import {
  addressProblem,
  configError,
  didYouMean,
  failedError,
  isSecretRef,
  mkdirContained,
  pinHostKey,
  registerSecretValue,
  type SecretRef,
  type ServerRecord,
  type ServerStatus,
  secretResolverFor,
  usageError,
  type Workspace,
} from '@prov/core'
import type { ProviderContext, ServerSpec } from '../types'

/** Settings every cloud provider reads from `providers.<name>` (docs/providers.md). */
export interface CloudProviderConfig {
  /** API base URL (tests and private clouds); the provider's public API otherwise. */
  endpoint?: string
  /** The credential: a `{secret: name}` reference, else the environment variable `credential_env` names. */
  token?: SecretRef
  credential_env?: string
  /** Default zone/location/region of servers that name none. */
  zone?: string
  /** What `create` waits for: the API saying running, or an SSH host key answering (default). */
  ready?: 'ssh' | 'running'
  /** Seconds `create` waits for `ready`. */
  ready_timeout?: number
  /** Seconds one API request may take. */
  request_timeout?: number
  /** Extra attempts after 429/5xx. */
  retries?: number
}

export const cloudDefaults = { ready: 'ssh', ready_timeout: 600, request_timeout: 30, retries: 4 } as const

/** Problems with the settings shared by every cloud provider (credentials are never values here). */
export function cloudConfigProblems(provider: string, config: Record<string, unknown>, extraKeys: readonly string[]): string[] {
  const problems: string[] = []
  const known = new Set(['endpoint', 'token', 'credential_env', 'zone', 'ready', 'ready_timeout', 'request_timeout', 'retries', ...extraKeys])
  for (const key of Object.keys(config))
    if (!known.has(key)) problems.push(`providers.${provider}.${key} is not a setting (known: ${[...known].sort().join(', ')})`)
  if (config.token !== undefined && !isSecretRef(config.token)) {
    problems.push(`providers.${provider}.token must be a {secret: NAME} reference: credentials are not written in configuration`)
  }
  if (config.endpoint !== undefined) {
    const endpoint = String(config.endpoint)
    let parsed: URL | undefined
    try {
      parsed = new URL(endpoint)
    } catch {
      parsed = undefined
    }
    if (!parsed || !/^https?:$/.test(parsed.protocol) || parsed.username || parsed.password) {
      problems.push(`providers.${provider}.endpoint must be an http(s) URL without credentials`)
    } else if (parsed.protocol === 'http:' && !['127.0.0.1', 'localhost', '[::1]'].includes(parsed.hostname)) {
      problems.push(`providers.${provider}.endpoint uses plain http to a remote host: the credential would travel unencrypted (use https)`)
    }
  }
  if (config.credential_env !== undefined && !/^[A-Z_][A-Z0-9_]*$/.test(String(config.credential_env))) {
    problems.push(`providers.${provider}.credential_env must be an environment variable name`)
  }
  if (config.ready !== undefined && config.ready !== 'ssh' && config.ready !== 'running') problems.push(`providers.${provider}.ready must be ssh or running`)
  for (const key of ['ready_timeout', 'request_timeout'] as const) {
    const value = config[key]
    if (value !== undefined && !(typeof value === 'number' && value > 0 && value <= 86_400))
      problems.push(`providers.${provider}.${key} must be seconds (1-86400)`)
  }
  if (config.retries !== undefined && !(Number.isInteger(config.retries) && (config.retries as number) >= 0 && (config.retries as number) <= 10)) {
    problems.push(`providers.${provider}.retries must be 0-10`)
  }
  return problems
}

/**
 * The API credential: from the secret store when `token: {secret: name}` is set, else from the
 * environment. It is registered for redaction, so no log or error line can show it.
 */
export async function cloudCredential(ctx: ProviderContext<CloudProviderConfig>, provider: string, defaultEnv: string): Promise<string> {
  const ref = ctx.config.token
  let value: string | undefined
  if (ref && isSecretRef(ref)) {
    value = await secretResolverFor(ctx.rootConfig.secrets.provider, ctx.workspace.path).get(ref.secret)
  } else {
    const name = ctx.config.credential_env ?? defaultEnv
    value = credentialFromEnv(name)
    if (!value) {
      throw configError(`no ${provider} API credential: ${name} is not set`, {
        location: `providers.${provider}`,
        hint: `export ${name}=..., or set providers.${provider}.token: {secret: NAME} (prov-kms secret set NAME)`,
      })
    }
  }
  value = value.trim()
  registerSecretValue(value)
  return value
}

/**
 * A credential held in an environment variable (trimmed), registered for redaction before anyone
 * can print it; undefined when the variable is unset or empty. For providers with more than one
 * way to authenticate, which pick the one whose variables are set.
 */
export function credentialFromEnv(name: string): string | undefined {
  const value = process.env[name]?.trim()
  if (!value) return undefined
  registerSecretValue(value)
  return value
}

/** Label/tag keys that carry prov's identity on every resource it creates. */
export const IDENTITY = { workspace: 'prov-workspace', server: 'prov-server' } as const

/**
 * Whether a resource's labels (tags) carry this workspace's identity, and the server's name when
 * given. Checked on every answer prov acts on, after the API's own filter: an endpoint that ignored
 * the filter, or a state file naming another resource, cannot make prov adopt, stop or delete
 * someone else's machine or key.
 */
export function carriesIdentity(labels: Readonly<Record<string, unknown>> | undefined | null, wsid: string, name?: string): boolean {
  if (typeof labels !== 'object' || labels === null) return false
  return labels[IDENTITY.workspace] === wsid && (name === undefined || labels[IDENTITY.server] === name)
}

/**
 * A stable random id of the workspace (`.prov/workspace-id`), so resources of two workspaces with
 * the same name never claim each other. Created once; a concurrent creator's id wins.
 */
export function workspaceId(workspace: Workspace): string {
  const dir = mkdirContained(workspace.path, '.prov')
  const file = `${dir}/workspace-id`
  const read = () => {
    const text = readFileSync(file, 'utf8').trim()
    if (!/^[a-f0-9]{16}$/.test(text))
      throw configError(`${file} does not hold a workspace id (16 hex digits)`, { hint: 'restore it from a backup: cloud resources are found by it' })
    return text
  }
  try {
    return read()
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code !== 'ENOENT') throw error
  }
  try {
    writeFileSync(file, `${randomBytes(8).toString('hex')}\n`, { flag: 'wx', mode: 0o644 })
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code !== 'EEXIST') throw error
  }
  return read()
}

/**
 * The status `list` reports for a server the cloud shows as `live`. A record still `creating` stays
 * so while the machine runs: its create was cut short (killed before the machine was ready and
 * its host key pinned), and the next plan creates it again, which adopts the machine and finishes.
 */
export function listedStatus(record: ServerRecord, live: ServerStatus): ServerStatus {
  return record.status === 'creating' && (live === 'running' || live === 'creating') ? 'creating' : live
}

/** The address an API reported, checked: it ends up on ssh command lines. */
export function checkedAddress(provider: string, value: unknown): string {
  if (typeof value !== 'string' || value === '') return ''
  const problem = addressProblem(value)
  if (problem) throw failedError(`the ${provider} API reported an unusable address: ${problem}`)
  return value
}

/** Polls `probe` until it returns a value, at most `timeoutSeconds`; the error says what was awaited. */
export async function pollUntil<T>(what: string, probe: () => Promise<T | undefined>, timeoutSeconds: number, intervalMs = 2000): Promise<T> {
  const deadline = Date.now() + timeoutSeconds * 1000
  for (;;) {
    const value = await probe()
    if (value !== undefined) return value
    if (Date.now() >= deadline) {
      throw failedError(`timed out after ${timeoutSeconds}s waiting for ${what}`, {
        hint: 'raise ready_timeout, or look at the server in the provider console',
      })
    }
    await new Promise((resolve) => setTimeout(resolve, intervalMs))
  }
}

/** Waits until the server's SSH host key answers, and pins it (the first key seen is trusted). */
export async function waitForSsh(ctx: ProviderContext<CloudProviderConfig>, name: string, address: string, port: number): Promise<void> {
  const timeout = ctx.config.ready_timeout ?? cloudDefaults.ready_timeout
  await pollUntil(
    `ssh on ${name} (${address}:${port})`,
    async () => {
      try {
        await pinHostKey(ctx.workspace, address, port, { timeoutMs: ctx.rootConfig.ssh.connect_timeout * 1000 })
        return true
      } catch {
        return undefined
      }
    },
    timeout,
    5000,
  )
}

/** Refuses a value the API does not offer (exit 2), naming the nearest and listing the valid ones. */
export function requireChoice(provider: string, what: string, value: string, choices: readonly string[], server?: string): void {
  if (choices.includes(value)) return
  const close = didYouMean(value, choices)
  const shown = choices.length > 40 ? `${choices.slice(0, 40).join(', ')}, ...` : choices.join(', ')
  throw usageError(`${server ? `server '${server}': ` : ''}${provider} has no ${what} '${value}'`, {
    hint: `${close ? `${close} ` : ''}valid: ${shown || '(none offered)'}`,
  })
}

/**
 * Calls a process makes once per key (catalog answers, shared resources): concurrent callers wait
 * for the same promise instead of repeating the call; a failed call is forgotten, so the next
 * caller asks again. `forget(prefix)` drops the answers whose keys start with it (after a delete).
 */
export class OnceCache {
  private readonly pending = new Map<string, Promise<unknown>>()

  get<T>(key: string, make: () => Promise<T>): Promise<T> {
    let found = this.pending.get(key) as Promise<T> | undefined
    if (!found) {
      found = make()
      this.pending.set(key, found)
      found.catch(() => this.pending.delete(key))
    }
    return found
  }

  forget(prefix: string): void {
    for (const key of this.pending.keys()) if (key.startsWith(prefix)) this.pending.delete(key)
  }
}

/** A field a cloud server must have (from the server or the provider's section), with an example for the message. */
export interface RequiredSpecField {
  field: 'plan' | 'image' | 'zone'
  /** The server's value, else the provider section's default. */
  value: string | null | undefined
  /** What a value looks like (`instance type such as t3.micro`). */
  example: string
}

/**
 * The problems every cloud provider finds with a declared server: a required field given neither
 * by the server nor by `providers.<name>`, a fixed address (the cloud assigns addresses), and a
 * label prov reserves for its own identity.
 */
export function cloudSpecProblems(provider: string, spec: ServerSpec, required: readonly RequiredSpecField[]): string[] {
  const problems: string[] = []
  for (const { field, value, example } of required) {
    if (!value) problems.push(`an ${provider} server needs ${field === 'image' ? 'an' : 'a'} ${field} (${example}), or providers.${provider}.${field}`)
  }
  if (spec.address) problems.push(`${provider} assigns addresses itself: remove address`)
  // prov's identity labels would be overwritten on the cloud while list showed the declared ones.
  for (const key of Object.values(IDENTITY)) {
    if (spec.labels && key in spec.labels) problems.push(`label '${key}' is prov's own (it names the workspace and server of what prov creates): remove it`)
  }
  return problems
}

/**
 * A record as `list` reports it from what the cloud holds for it: `unknown` when nothing was
 * found, else the live fields (`recordOf`) with the status `listedStatus` gives.
 */
export function listedRecord<T>(record: ServerRecord, found: T | undefined, recordOf: (record: ServerRecord, found: T) => ServerRecord): ServerRecord {
  if (found === undefined) return { ...record, status: 'unknown' }
  const live = recordOf(record, found)
  return { ...live, status: listedStatus(record, live.status) }
}
