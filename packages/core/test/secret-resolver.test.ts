// The one secret resolver every binary uses (secretResolverFor): the workspace store first, then
// PROV_SECRET_<NAME>; only the environment with `secrets.provider: env` or outside a workspace.
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { Encrypter, generateIdentity, identityToRecipient } from 'age-encryption'
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest'
import { ExitCode, isProvError, secretResolverFor } from '../src/index'

const root = mkdtempSync(join(tmpdir(), 'prov-resolver-'))
afterAll(() => rmSync(root, { recursive: true, force: true }))
const saved = { ...process.env }
afterEach(() => {
  for (const key of Object.keys(process.env)) if (key.startsWith('PROV_SECRET_') && !(key in saved)) delete process.env[key]
})

async function failure(promise: Promise<unknown>): Promise<{ code: number; message: string }> {
  try {
    await promise
  } catch (error) {
    if (isProvError(error)) return { code: error.code, message: error.message }
    throw error
  }
  throw new Error('expected a failure')
}

describe('secretResolverFor', () => {
  beforeAll(async () => {
    const identity = await generateIdentity()
    mkdirSync(join(root, '.prov', 'kms'), { recursive: true })
    writeFileSync(join(root, '.prov', 'kms', 'identity.txt'), `${identity}\n`, { mode: 0o600 })
    const encrypter = new Encrypter()
    encrypter.addRecipient(await identityToRecipient(identity))
    mkdirSync(join(root, 'secrets', 'db'), { recursive: true })
    writeFileSync(join(root, 'secrets', 'db', 'password.age'), await encrypter.encrypt('from-the-store'))
  })

  it('workspace: the store wins over the environment', async () => {
    process.env.PROV_SECRET_DB_PASSWORD = 'from-the-env'
    expect(await secretResolverFor('workspace', root).get('db/password')).toBe('from-the-store')
  })

  it('workspace and kms: a secret the store does not hold comes from PROV_SECRET_<NAME>', async () => {
    process.env.PROV_SECRET_API_TOKEN = 'tok-env'
    expect(await secretResolverFor('workspace', root).get('api/token')).toBe('tok-env')
    expect(await secretResolverFor('kms', root).get('api/token')).toBe('tok-env')
  })

  it('neither in the store nor in the environment: not found, naming both places', async () => {
    const r = await failure(secretResolverFor('workspace', root).get('app/missing'))
    expect(r.code).toBe(ExitCode.NOT_FOUND)
    expect(r.message).toMatch(/'app\/missing' is neither in the workspace store nor in \$PROV_SECRET_APP_MISSING/)
  })

  it('env, or no workspace: only the environment', async () => {
    process.env.PROV_SECRET_DB_PASSWORD = 'from-the-env'
    expect(await secretResolverFor('env', root).get('db/password')).toBe('from-the-env')
    expect(await secretResolverFor('workspace').get('db/password')).toBe('from-the-env')
    const r = await failure(secretResolverFor('env', root).get('app/missing'))
    expect(r.code).toBe(ExitCode.NOT_FOUND)
    expect(r.message).toMatch(/secret 'app\/missing' is not set/)
  })

  it('an invalid name is refused before anything is read', async () => {
    const r = await failure(secretResolverFor('workspace', root).get('../../etc/passwd'))
    expect(r.code).toBe(ExitCode.USAGE)
    expect(r.message).toMatch(/invalid secret name/)
  })
})
