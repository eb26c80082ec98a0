/**
 * The workspace secret store (prov-kms `secret set|get|list|rm`) and its run-time resolution.
 * Each secret is one age file, `<workspace>/secrets/<name>.age`, encrypted to the workspace
 * identity (`.prov/kms/identity.txt`). Other binaries resolve `{"secret": "db/password"}`
 * references through `workspaceSecretResolver(workspace)`. age-encryption is imported lazily so
 * core stays light for commands that never touch a secret.
 */
import { existsSync, readdirSync, readFileSync, statSync } from 'node:fs'
import { join, relative, sep } from 'node:path'
import { deniedError, ExitCode, isProvError, notFoundError, usageError } from './errors'
import { expandHome, userConfigDir, workspacePaths } from './paths'
import { registerSecretValue } from './redact'
import type { SecretResolver } from './secrets'

/** Where the age identity of prov-kms lives: the workspace's, else the user's. */
export function kmsDir(workspacePath?: string): string {
  return workspacePath ? join(workspacePaths(workspacePath).state, 'kms') : join(userConfigDir(), 'kms')
}

/** The identity file: $PROV_KMS_IDENTITY, else `<kmsDir>/identity.txt`. */
export function kmsIdentityPath(workspacePath?: string, override?: string): string {
  const explicit = process.env.PROV_KMS_IDENTITY || override
  return explicit ? expandHome(explicit) : join(kmsDir(workspacePath), 'identity.txt')
}

/** Retired identities (kept after `keys rotate` so old ciphertexts still decrypt). */
export function kmsRetiredDir(workspacePath?: string, identityPath?: string): string {
  const standard = join(kmsDir(workspacePath), 'identity.txt')
  return identityPath && identityPath !== standard ? `${identityPath}.retired` : join(kmsDir(workspacePath), 'retired')
}

export interface AgeIdentity {
  /** `AGE-SECRET-KEY-1...` */
  secret: string
  path: string
}

/**
 * Reads the `AGE-SECRET-KEY-1` lines of an identity file. A missing file is exit 5; a file that
 * group or others can read is refused (exit 4): a key must be 0600.
 */
export function readIdentityFile(path: string): AgeIdentity[] {
  let mode: number
  try {
    mode = statSync(path).mode
  } catch {
    throw notFoundError(`no age identity at ${path}`, { hint: 'create one with prov-kms keygen' })
  }
  if (mode & 0o077) {
    throw deniedError(`identity ${path} is readable by group or others (mode ${(mode & 0o777).toString(8)}); refusing to use it`, {
      hint: `chmod 600 ${path}`,
    })
  }
  const secrets = readFileSync(path, 'utf8')
    .split('\n')
    .map((line) => line.trim())
    .filter((line) => line.startsWith('AGE-SECRET-KEY-'))
  if (!secrets.length) throw deniedError(`${path} holds no AGE-SECRET-KEY line`, { hint: 'prov-kms keygen writes a valid identity' })
  return secrets.map((secret) => ({ secret, path }))
}

/** The current identity plus every retired one (retired ones that are unsafe are skipped). */
export function readAllIdentities(workspacePath?: string, override?: string): AgeIdentity[] {
  const current = kmsIdentityPath(workspacePath, override)
  const identities = readIdentityFile(current)
  const retired = kmsRetiredDir(workspacePath, current)
  if (existsSync(retired)) {
    for (const name of readdirSync(retired).sort().reverse()) {
      try {
        identities.push(...readIdentityFile(join(retired, name)))
      } catch {
        // an unreadable retired key never blocks the current one
      }
    }
  }
  return identities
}

const secretNamePattern = /^[A-Za-z0-9_][A-Za-z0-9_.-]*(\/[A-Za-z0-9_][A-Za-z0-9_.-]*)*$/

/** Checks a secret name (`db/password`): path segments of letters, digits, `_ . -`; no `..`. */
export function validateSecretName(name: string): string {
  if (!secretNamePattern.test(name) || name.split('/').some((s) => s === '..' || s === '.') || name.length > 200) {
    throw usageError(`invalid secret name '${name}'`, { hint: 'use segments of letters, digits, _ . - separated by /, e.g. db/password' })
  }
  return name
}

/** `<workspace>/secrets/<name>.age` */
export function secretFilePath(workspacePath: string, name: string): string {
  return join(workspacePaths(workspacePath).secrets, `${validateSecretName(name)}.age`)
}

/** Names of the secrets in the store (sorted). */
export function listSecretNames(workspacePath: string): string[] {
  const root = workspacePaths(workspacePath).secrets
  const names: string[] = []
  const walk = (dir: string) => {
    if (!existsSync(dir)) return
    for (const entry of readdirSync(dir, { withFileTypes: true })) {
      const full = join(dir, entry.name)
      if (entry.isDirectory()) walk(full)
      else if (entry.isFile() && entry.name.endsWith('.age')) names.push(relative(root, full).slice(0, -4).split(sep).join('/'))
    }
  }
  walk(root)
  return names.sort()
}

/** Decrypts an age file (armored or binary) with the given identities; wrong key is exit 4. */
export async function decryptAgeFile(data: Uint8Array, identities: AgeIdentity[], source: string): Promise<Uint8Array> {
  const age = await import('age-encryption')
  const decrypter = new age.Decrypter()
  for (const identity of identities) decrypter.addIdentity(identity.secret)
  const text = Buffer.from(data.subarray(0, 40)).toString('latin1')
  let binary = data
  if (text.startsWith('-----BEGIN AGE ENCRYPTED FILE-----')) {
    try {
      binary = age.armor.decode(Buffer.from(data).toString('utf8'))
    } catch (error) {
      throw usageError(`${source} is not a valid armored age file: ${(error as Error).message}`, { location: source })
    }
  }
  try {
    return await decrypter.decrypt(binary)
  } catch (error) {
    const message = (error as Error).message
    if (/no identity matched/i.test(message)) {
      throw deniedError(`no identity can decrypt ${source}`, { location: source, hint: 'it was encrypted for another key; see prov-kms keys list' })
    }
    throw deniedError(`cannot decrypt ${source}: ${message}`, { location: source })
  }
}

export interface SecretResolverOptions {
  /** Identity file instead of the workspace's. */
  identityFile?: string
}

/**
 * The resolver other binaries use at run time: reads `<workspace>/secrets/<name>.age` with the
 * workspace identity, registers the value for log redaction, caches it for this process only.
 */
export function workspaceSecretResolver(workspace: string | { path: string }, options: SecretResolverOptions = {}): SecretResolver {
  const root = typeof workspace === 'string' ? workspace : workspace.path
  const cache = new Map<string, Promise<Uint8Array>>()
  let identities: AgeIdentity[] | undefined
  const bytes = (name: string): Promise<Uint8Array> => {
    let pending = cache.get(name)
    if (!pending) {
      pending = (async () => {
        const file = secretFilePath(root, name)
        if (!existsSync(file)) throw notFoundError(`no secret '${name}' in the workspace store`, { location: file, hint: `prov-kms secret set ${name}` })
        identities ??= readAllIdentities(root, options.identityFile)
        const plain = await decryptAgeFile(readFileSync(file), identities, file)
        registerSecretValue(Buffer.from(plain).toString('utf8'))
        return plain
      })()
      cache.set(name, pending)
      pending.catch(() => cache.delete(name))
    }
    return pending
  }
  return { bytes, get: async (name) => Buffer.from(await bytes(name)).toString('utf8') }
}

/** `db/password` -> `PROV_SECRET_DB_PASSWORD` (the name is validated first). */
export function envSecretName(name: string): string {
  return `PROV_SECRET_${validateSecretName(name)
    .replace(/[^A-Za-z0-9]/g, '_')
    .toUpperCase()}`
}

/** Resolver from the environment: `{"secret": "db/password"}` -> $PROV_SECRET_DB_PASSWORD. */
export function envSecretResolver(env: NodeJS.ProcessEnv = process.env): SecretResolver {
  const get = async (name: string): Promise<string> => {
    const key = envSecretName(name)
    const value = env[key]
    if (value === undefined) throw notFoundError(`secret '${name}' is not set`, { hint: `export ${key}` })
    registerSecretValue(value)
    return value
  }
  return { get, bytes: async (name) => Buffer.from(await get(name), 'utf8') }
}

/**
 * The resolver chosen by the `secrets.provider` config key: `workspace` (default) and `kms` read
 * the prov-kms store of the workspace and fall back to PROV_SECRET_<NAME> for a secret the store
 * does not hold (CI injects secrets that way); `env` reads only PROV_SECRET_<NAME> variables, and
 * so does every provider outside a workspace.
 */
export function secretResolverFor(provider: 'workspace' | 'kms' | 'env', workspacePath?: string, options: SecretResolverOptions = {}): SecretResolver {
  const env = envSecretResolver()
  if (provider === 'env' || !workspacePath) return env
  const store = workspaceSecretResolver(workspacePath, options)
  const storeThenEnv =
    <T>(read: (resolver: SecretResolver, name: string) => Promise<T>) =>
    async (name: string): Promise<T> => {
      try {
        return await read(store, name)
      } catch (error) {
        if (!isProvError(error) || error.code !== ExitCode.NOT_FOUND) throw error
        try {
          return await read(env, name)
        } catch (fallback) {
          if (!isProvError(fallback) || fallback.code !== ExitCode.NOT_FOUND) throw fallback
          throw notFoundError(`secret '${name}' is neither in the workspace store nor in $${envSecretName(name)}`, {
            location: error.location,
            hint: `store it with prov-kms secret set ${name}, or export ${envSecretName(name)}`,
          })
        }
      }
    }
  return { get: storeThenEnv((resolver, name) => resolver.get(name)), bytes: storeThenEnv((resolver, name) => resolver.bytes(name)) }
}
