// prov-kms with HashiCorp Vault Transit, against a stand-in that follows Vault's documented API
// strictly (contract/vault-server.ts): the first test proves the stand-in refuses what real Vault
// refuses, so the client tests after it can fail for the right reasons.
import { readFileSync } from 'node:fs'
import { join } from 'node:path'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { canonicalContext } from '../src/lib/context'
import { startVaultContract, transitPolicy, type VaultContract } from './contract/vault-server'
import { expectNoLeak, expectOneErrorLine, kms, tempEnv } from './helpers'

const SECRET = 'remote-backend-secret-77'

describe('prov-kms with Vault Transit (strict stand-in)', () => {
  let vault: VaultContract
  const env = tempEnv('prov-kms-vault-')
  const results: Awaited<ReturnType<typeof kms>>[] = []
  const vaultEnv = () => ({ ...env.env, VAULT_ADDR: vault.url, VAULT_TOKEN: vault.token, PROV_KMS_RETRY_BASE_MS: '5', PROV_KMS_RETRIES: '3' })
  const run = async (args: string[], input?: string, extra: Record<string, string | undefined> = {}) => {
    const result = await kms(args, { env: { ...vaultEnv(), ...extra }, input, cwd: env.root })
    results.push(result)
    return result
  }
  const post = (path: string, body: unknown, headers: Record<string, string> = { 'x-vault-token': vault.token }) =>
    fetch(`${vault.url}/v1/${path}`, { method: 'POST', headers, body: typeof body === 'string' ? body : JSON.stringify(body) })

  beforeAll(async () => {
    vault = await startVaultContract({ prov: { derived: true } })
  })
  afterAll(async () => {
    await vault.close()
    expectNoLeak(results, [SECRET, vault.token, vault.secretId], [env.root])
    env.cleanup()
  })

  it('the stand-in refuses what Vault refuses: non-base64 context or plaintext, no or a foreign token, bad JSON', async () => {
    const plaintext = Buffer.from('x').toString('base64')
    const rawContext = await post('transit/encrypt/prov', { plaintext, context: '[["env","prod"]]' })
    expect(rawContext.status).toBe(400)
    expect(await rawContext.json()).toEqual({ errors: ['failed to base64-decode context'] })
    const rawPlain = await post('transit/encrypt/prov', { plaintext: 'not base64!', context: 'W10=' })
    expect(rawPlain.status).toBe(400)
    expect(((await rawPlain.json()) as { errors: string[] }).errors[0]).toMatch(/^illegal base64 data at input byte/)
    const noContext = await post('transit/encrypt/prov', { plaintext })
    expect(((await noContext.json()) as { errors: string[] }).errors[0]).toMatch(/missing 'context' for key derivation/)
    expect((await post('transit/encrypt/prov', { plaintext }, {})).status).toBe(403)
    const bearer = await post('transit/encrypt/prov', { plaintext, context: 'W10=' }, { authorization: `Bearer ${vault.token}` })
    expect(bearer.status).toBe(200)
    const badJson = await post('transit/encrypt/prov', '{"plaintext":')
    expect(((await badJson.json()) as { errors: string[] }).errors[0]).toMatch(/^failed to parse JSON input/)
    const limited = vault.createToken({ 'transit/encrypt/prov': ['update'] })
    expect((await post('transit/decrypt/prov', { ciphertext: 'vault:v1:AAAA', context: 'W10=' }, { 'x-vault-token': limited })).status).toBe(403)
  })

  it('encrypt writes vault:v1: ciphertext with the context as canonical base64; decrypt picks Vault by the prefix; context is bound', async () => {
    const before = vault.requests.length
    const encrypted = await run(['encrypt', '--backend', 'vault', '--context', 'env=prod'], SECRET)
    expect(encrypted.code, encrypted.stderr).toBe(0)
    expect(encrypted.stdout).toMatch(/^vault:v1:[A-Za-z0-9+/=]+\n$/)
    const request = vault.requests.slice(before).find((r) => r.path === '/v1/transit/encrypt/prov')
    expect(request?.body.plaintext).toBe(Buffer.from(SECRET).toString('base64'))
    expect(Buffer.from(String(request?.body.context), 'base64')).toEqual(canonicalContext({ env: 'prod' }))
    expect(request?.headers['x-vault-token']).toBe(vault.token)
    const decrypted = await run(['decrypt', '--context', 'env=prod'], encrypted.stdout)
    expect(decrypted.code, decrypted.stderr).toBe(0)
    expect(decrypted.stdout).toBe(SECRET)
    expectOneErrorLine(await run(['decrypt', '--context', 'env=dev'], encrypted.stdout), 4, /message authentication failed/)
    expectOneErrorLine(await run(['decrypt', '--context', 'env=prod'], 'vault:v1:AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA'), 4, /authentication failed/)
    expectOneErrorLine(await run(['decrypt', '--context', 'env=prod'], 'vault:v9:AAAA'), 4, /version is too new/)
    // record streams through Vault too
    const fields = await run(
      ['encrypt', '--backend', 'vault', '--field', 'password', '--context', 'env=prod'],
      '{"password":"p-1234"}\n{"password":"p-5678"}\n',
    )
    expect(fields.lines().every((r: { password: string }) => r.password.startsWith('vault:v1:'))).toBe(true)
    expect((await run(['decrypt', '--field', 'password', '--context', 'env=prod'], fields.stdout)).lines()).toEqual([
      { password: 'p-1234' },
      { password: 'p-5678' },
    ])
    // Bound to field and record through Vault's context too: swapped values are refused.
    const named = await run(
      ['encrypt', '--backend', 'vault', '--field', 'password', '--context', 'env=prod'],
      '{"name":"a","password":"p-1234"}\n{"name":"b","password":"p-5678"}\n',
    )
    const [a, b] = named.lines()
    const swapped = `${JSON.stringify({ ...a, password: b.password })}\n${JSON.stringify({ ...b, password: a.password })}\n`
    expectOneErrorLine(await run(['decrypt', '--field', 'password', '--context', 'env=prod'], swapped), 4, /record 'a' does not decrypt here/)
  })

  it('rewrap moves a ciphertext to the latest key version; datakey returns a key that decrypt gives back exactly', async () => {
    const encrypted = (await run(['encrypt', '--backend', 'vault', '--context', 'a=1'], SECRET)).stdout
    vault.rotateKey('prov')
    const rewrapped = await run(['rewrap', '--context', 'a=1'], encrypted)
    expect(rewrapped.stdout).toMatch(/^vault:v2:/)
    expect((await run(['decrypt', '--context', 'a=1'], rewrapped.stdout)).stdout).toBe(SECRET)
    for (const bits of ['128', '256', '512']) {
      const record = (await run(['datakey', '--backend', 'vault', '--context', 'a=1', '--bits', bits])).json()
      expect(record.ciphertext).toMatch(/^vault:v2:/)
      const key = Buffer.from(record.plaintext, 'base64')
      expect(key).toHaveLength(Number(bits) / 8)
      const out = join(env.root, `key-${bits}`)
      const unwrapped = await run(['decrypt', '--context', 'a=1', '--output-file', out, record.ciphertext])
      expect(unwrapped.code, unwrapped.stderr).toBe(0)
      expect(readFileSync(out).equals(key)).toBe(true)
    }
    expectOneErrorLine(await run(['rewrap'], 'prov:age:v1:AAAA'), 2, /Vault ciphertext/)
  })

  it('AppRole login instead of a token; its policy allows only prov-kms operations on its key', async () => {
    const approle = { VAULT_TOKEN: undefined, VAULT_ROLE_ID: vault.roleId, VAULT_SECRET_ID: vault.secretId }
    const result = await run(['encrypt', '--backend', 'vault', '--context', 'x=y', SECRET], undefined, approle)
    expect(result.code, result.stderr).toBe(0)
    expect(vault.requests.some((r) => r.path === '/v1/auth/approle/login')).toBe(true)
    // A key outside the policy: encrypt to a missing key needs `create`, which the role lacks.
    expectOneErrorLine(
      await run(['encrypt', '--backend', 'vault', '--context', 'x=y', SECRET], undefined, { ...approle, PROV_KMS__VAULT__KEY: 'other' }),
      4,
      /permission denied/,
    )
    const badLogin = await run(['encrypt', '--backend', 'vault', SECRET], undefined, { ...approle, VAULT_SECRET_ID: 'wrong' })
    expectOneErrorLine(badLogin, 2, /AppRole login.*invalid role or secret ID/)
    const none = await run(['encrypt', '--backend', 'vault', SECRET], undefined, { VAULT_TOKEN: undefined })
    expectOneErrorLine(none, 3, /no Vault credentials/)
  })

  it('per-path permissions: a token that may encrypt but not decrypt gets exit 4 on decrypt; a foreign token too', async () => {
    const limited = vault.createToken({ 'transit/encrypt/prov': ['update'] })
    const encrypted = await run(['encrypt', '--backend', 'vault', '--context', 'a=1', SECRET], undefined, { VAULT_TOKEN: limited })
    expect(encrypted.code, encrypted.stderr).toBe(0)
    expectOneErrorLine(
      await run(['decrypt', '--context', 'a=1'], encrypted.stdout, { VAULT_TOKEN: limited }),
      4,
      /Vault decrypt: 1 error occurred: \* permission denied/,
    )
    const policy = transitPolicy('prov')
    const full = vault.createToken(policy)
    expect((await run(['decrypt', '--context', 'a=1'], encrypted.stdout, { VAULT_TOKEN: full })).stdout).toBe(SECRET)
    expectOneErrorLine(
      await run(['encrypt', '--backend', 'vault', '--context', 'a=1', SECRET], undefined, { VAULT_TOKEN: 'hvs.wrong-token-000000000000' }),
      4,
      /permission denied/,
    )
  })

  it('throttling (429) and sealed (503) are retried with backoff, then a clear error', async () => {
    vault.throttle(2, 429)
    const before = vault.requests.length
    const recovered = await run(['encrypt', '--backend', 'vault', '--context', 'a=1', SECRET])
    expect(recovered.code, recovered.stderr).toBe(0)
    expect(vault.requests.length - before).toBe(3)
    vault.throttle(10, 429)
    expectOneErrorLine(
      await run(['encrypt', '--backend', 'vault', '--context', 'a=1', SECRET]),
      1,
      /throttled or unavailable after 4 attempts.*rate limit quota exceeded/,
    )
    vault.throttle(0)
    vault.setHealth('sealed')
    try {
      expectOneErrorLine(await run(['encrypt', '--backend', 'vault', '--context', 'a=1', SECRET]), 1, /Vault is sealed/)
    } finally {
      vault.setHealth('active')
    }
  })

  it('status reports sys/health as Vault answers it (200, 429 standby, 473, 501, 503); a missing key is exit 5; unreachable is reported', async () => {
    const cases: Array<[Parameters<VaultContract['setHealth']>[0], Record<string, unknown>]> = [
      ['active', { status: 200, sealed: false, standby: false, initialized: true }],
      ['standby', { status: 429, sealed: false, standby: true }],
      ['perf-standby', { status: 473, standby: true }],
      ['dr-secondary', { status: 472, standby: true }],
      ['uninitialized', { status: 501, initialized: false }],
      ['sealed', { status: 503, sealed: true }],
    ]
    try {
      for (const [mode, expected] of cases) {
        vault.setHealth(mode)
        const status = await run(['status', '--probe', 'vault'])
        expect(status.json().backends.vault, mode).toMatchObject({ reachable: true, auth: 'token', ...expected })
      }
    } finally {
      vault.setHealth('active')
    }
    const down = await run(['status', '--probe', 'vault'], undefined, { VAULT_ADDR: 'http://127.0.0.1:9' })
    expect(down.json().backends.vault.reachable).toBe(false)
    expectOneErrorLine(
      await run(['encrypt', '--backend', 'vault', SECRET], undefined, { VAULT_ADDR: 'http://127.0.0.1:9', PROV_KMS_RETRIES: '0' }),
      1,
      /unreachable/,
    )
    expectOneErrorLine(await run(['decrypt', '--context', 'a=1', 'vault:v1:AAAA'], undefined, { PROV_KMS__VAULT__KEY: 'nokey' }), 5, /encryption key not found/)
  })
})
