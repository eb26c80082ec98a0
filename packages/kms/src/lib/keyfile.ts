/** age identity files: create (0600, never overwrite), describe, retire. */
import { chmodSync, closeSync, constants, existsSync, mkdirSync, openSync, readdirSync, readFileSync, renameSync, statSync, writeSync } from 'node:fs'
import { basename, dirname, join } from 'node:path'
import { deniedError, readIdentityFile, usageError } from '@prov/core'
import { recipientOfIdentity } from '../age/file'
import { generateX25519Identity } from '../age/x25519'

export interface KeyRecord {
  schema: 'prov.kms.key/v1'
  backend: 'age'
  status: 'active' | 'retired'
  recipient: string | null
  path: string
  created: string | null
  mode: string | null
  healthy: boolean
  problem?: string
}

/** Generates an X25519 identity and writes it exclusively (O_EXCL) with mode 0600. */
/** An identity is never overwritten (exit 2). */
export function assertNoIdentity(path: string): void {
  if (existsSync(path))
    throw usageError(`an identity already exists at ${path}; refusing to overwrite it`, { hint: 'prov-kms keys rotate replaces it and keeps the old one' })
}

export async function createIdentity(path: string): Promise<{ secret: string; recipient: string; created: string }> {
  assertNoIdentity(path)
  const secret = generateX25519Identity()
  const recipient = await recipientOfIdentity(secret)
  const created = new Date().toISOString()
  privateFolder(dirname(path))
  const fd = openSync(path, constants.O_WRONLY | constants.O_CREAT | constants.O_EXCL, 0o600)
  try {
    writeSync(fd, `# created: ${created}\n# public key: ${recipient}\n${secret}\n`)
  } finally {
    closeSync(fd)
  }
  chmodSync(path, 0o600)
  return { secret, recipient, created }
}

export async function describeIdentity(path: string, status: KeyRecord['status']): Promise<KeyRecord> {
  const base: KeyRecord = { schema: 'prov.kms.key/v1', backend: 'age', status, recipient: null, path, created: null, mode: null, healthy: false }
  if (!existsSync(path)) return { ...base, problem: 'missing' }
  base.mode = (statSync(path).mode & 0o777).toString(8).padStart(4, '0')
  try {
    const [identity] = readIdentityFile(path)
    base.recipient = await recipientOfIdentity(identity.secret)
    base.created = /# created: (\S+)/.exec(readFileSync(path, 'utf8'))?.[1] ?? null
    base.healthy = true
  } catch (error) {
    base.problem = (error as Error).message
  }
  return base
}

export function retiredIdentityFiles(retiredDir: string): string[] {
  if (!existsSync(retiredDir)) return []
  return readdirSync(retiredDir)
    .filter((n) => n.endsWith('.txt'))
    .sort()
    .map((n) => join(retiredDir, n))
}

/**
 * A folder for key files: created 0700. prov's own folders (`.../kms`, `.../retired`,
 * `*.retired`) are tightened to 0700 when group or others can enter them; a folder the user
 * chose (kms.identity_file) is left alone unless others can write to it (without the sticky
 * bit), where they could replace the key: that is refused.
 */
export function privateFolder(dir: string): void {
  mkdirSync(dir, { recursive: true, mode: 0o700 })
  const mode = statSync(dir).mode
  if (!(mode & 0o077)) return
  if (/(^|\/)(kms|retired|[^/]+\.retired)$/.test(dir)) chmodSync(dir, 0o700)
  else if (mode & 0o022 && !(mode & 0o1000)) {
    throw deniedError(`key folder ${dir} is writable by group or others (mode ${(mode & 0o777).toString(8)})`, { location: dir, hint: `chmod go-w ${dir}` })
  }
}

/** Moves the current identity into the retired folder (kept for old ciphertexts). */
export function retireIdentity(path: string, retiredDir: string): string {
  privateFolder(retiredDir)
  const target = join(retiredDir, `${basename(path, '.txt')}-${new Date().toISOString().replace(/[:.]/g, '-')}.txt`)
  renameSync(path, target)
  return target
}
