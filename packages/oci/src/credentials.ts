import { existsSync, readFileSync, statSync } from 'node:fs'
import { homedir } from 'node:os'
import { join } from 'node:path'
import { configError, readJsonFile, registerSecretValue, updateJsonFile, userConfigDir } from '@prov/core'

export interface Credential {
  username: string
  password: string
}

interface CredentialFile {
  schema: 'prov.oci.credentials/v1'
  auths: Record<string, { auth: string }>
}

/** `$XDG_CONFIG_HOME/prov/oci-credentials.json`, mode 0600. */
export function credentialsFile(): string {
  return process.env.PROV_OCI_CREDENTIALS || join(userConfigDir(), 'oci-credentials.json')
}

function decode(auth: string): Credential | undefined {
  const text = Buffer.from(auth, 'base64').toString('utf8')
  const colon = text.indexOf(':')
  if (colon < 0) return undefined
  const credential = { username: text.slice(0, colon), password: text.slice(colon + 1) }
  registerSecretValue(credential.password)
  registerSecretValue(auth)
  return credential
}

/** prov's own store first, then the docker config (read-only), then PROV_OCI_USERNAME/PASSWORD. */
export function findCredential(registry: string): Credential | undefined {
  const file = credentialsFile()
  if (existsSync(file)) {
    if ((statSync(file).mode & 0o077) !== 0) {
      throw configError(`credentials file ${file} is readable by others: refused`, { location: file, hint: `chmod 600 ${file}` })
    }
    const stored = readJsonFile<CredentialFile>(file, { schema: 'prov.oci.credentials/v1', auths: {} }).auths?.[registry]
    if (stored) return decode(stored.auth)
  }
  const dockerConfig = join(process.env.DOCKER_CONFIG || join(homedir(), '.docker'), 'config.json')
  if (existsSync(dockerConfig)) {
    try {
      const auths = (JSON.parse(readFileSync(dockerConfig, 'utf8')) as { auths?: Record<string, { auth?: string }> }).auths ?? {}
      const entry = auths[registry] ?? auths[`https://${registry}`] ?? auths[`http://${registry}`]
      if (entry?.auth) return decode(entry.auth)
    } catch {
      // an unreadable docker config is not ours to judge
    }
  }
  if (process.env.PROV_OCI_USERNAME && process.env.PROV_OCI_PASSWORD) {
    registerSecretValue(process.env.PROV_OCI_PASSWORD)
    return { username: process.env.PROV_OCI_USERNAME, password: process.env.PROV_OCI_PASSWORD }
  }
  return undefined
}

export async function storeCredential(registry: string, credential: Credential): Promise<void> {
  const auth = Buffer.from(`${credential.username}:${credential.password}`).toString('base64')
  registerSecretValue(auth)
  await updateJsonFile<CredentialFile>(
    credentialsFile(),
    { schema: 'prov.oci.credentials/v1', auths: {} },
    (current) => ({ schema: 'prov.oci.credentials/v1', auths: { ...(current.auths ?? {}), [registry]: { auth } } }),
    { mode: 0o600 },
  )
}

/** Whether prov's own store holds a credential for `registry` (read only). */
export function hasStoredCredential(registry: string): boolean {
  const file = credentialsFile()
  if (!existsSync(file)) return false
  return registry in (readJsonFile<CredentialFile>(file, { schema: 'prov.oci.credentials/v1', auths: {} }).auths ?? {})
}

export async function removeCredential(registry: string): Promise<boolean> {
  let removed = false
  if (!existsSync(credentialsFile())) return false
  await updateJsonFile<CredentialFile>(
    credentialsFile(),
    { schema: 'prov.oci.credentials/v1', auths: {} },
    (current) => {
      const auths = { ...(current.auths ?? {}) }
      removed = registry in auths
      delete auths[registry]
      return { schema: 'prov.oci.credentials/v1', auths }
    },
    { mode: 0o600 },
  )
  return removed
}
