import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { type AwsKmsContract, startAwsKmsContract } from './contract/aws-kms-server'
import { startVaultContract, type VaultContract } from './contract/vault-server'
import { expectNoLeak, expectOneErrorLine, kms, tempEnv } from './helpers'

const SECRET = 'remote-backend-secret-77'

describe('prov-kms with Vault Transit (contract server)', () => {
  let vault: VaultContract
  const env = tempEnv('prov-kms-vault-')
  const results: Awaited<ReturnType<typeof kms>>[] = []
  const vaultEnv = () => ({ ...env.env, VAULT_ADDR: vault.url, VAULT_TOKEN: vault.token, PROV_KMS_RETRY_BASE_MS: '5', PROV_KMS_RETRIES: '3' })
  const run = async (args: string[], input?: string, extra: Record<string, string | undefined> = {}) => {
    const result = await kms(args, { env: { ...vaultEnv(), ...extra }, input, cwd: env.root })
    results.push(result)
    return result
  }

  beforeAll(async () => {
    vault = await startVaultContract({ prov: { derived: true } })
  })
  afterAll(async () => {
    await vault.close()
    expectNoLeak(results, [SECRET, vault.token, vault.secretId], [env.root])
    env.cleanup()
  })

  it('encrypt writes vault:v1: ciphertext; decrypt picks Vault by the prefix; context is bound', async () => {
    const encrypted = await run(['encrypt', '--backend', 'vault', '--context', 'env=prod'], SECRET)
    expect(encrypted.code, encrypted.stderr).toBe(0)
    expect(encrypted.stdout).toMatch(/^vault:v1:[A-Za-z0-9+/=]+\n$/)
    const request = vault.requests.find((r) => r.path === '/v1/transit/encrypt/prov')
    expect(request?.body.plaintext).toBe(Buffer.from(SECRET).toString('base64'))
    expect(typeof request?.body.context).toBe('string')
    const decrypted = await run(['decrypt', '--context', 'env=prod'], encrypted.stdout)
    expect(decrypted.code, decrypted.stderr).toBe(0)
    expect(decrypted.stdout).toBe(SECRET)
    expectOneErrorLine(await run(['decrypt', '--context', 'env=dev'], encrypted.stdout), 4, /authentication failed/)
    expectOneErrorLine(await run(['decrypt', '--context', 'env=prod'], 'vault:v1:AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA'), 4)
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

  it('rewrap moves a ciphertext to the latest key version; datakey returns a wrapped key', async () => {
    const encrypted = (await run(['encrypt', '--backend', 'vault', '--context', 'a=1'], SECRET)).stdout
    vault.rotateKey('prov')
    const rewrapped = await run(['rewrap', '--context', 'a=1'], encrypted)
    expect(rewrapped.stdout).toMatch(/^vault:v2:/)
    expect((await run(['decrypt', '--context', 'a=1'], rewrapped.stdout)).stdout).toBe(SECRET)
    const datakey = await run(['datakey', '--backend', 'vault', '--context', 'a=1'])
    const record = datakey.json()
    expect(record.ciphertext).toMatch(/^vault:v2:/)
    expect(Buffer.from(record.plaintext, 'base64')).toHaveLength(32)
    expectOneErrorLine(await run(['rewrap'], 'prov:age:v1:AAAA'), 2, /Vault ciphertext/)
  })

  it('AppRole login instead of a token', async () => {
    const result = await run(['encrypt', '--backend', 'vault', '--context', 'x=y', SECRET], undefined, {
      VAULT_TOKEN: undefined,
      VAULT_ROLE_ID: vault.roleId,
      VAULT_SECRET_ID: vault.secretId,
    })
    expect(result.code, result.stderr).toBe(0)
    expect(vault.requests.some((r) => r.path === '/v1/auth/approle/login')).toBe(true)
    const badLogin = await run(['encrypt', '--backend', 'vault', SECRET], undefined, {
      VAULT_TOKEN: undefined,
      VAULT_ROLE_ID: vault.roleId,
      VAULT_SECRET_ID: 'wrong',
    })
    expectOneErrorLine(badLogin, 2, /AppRole login/)
    const none = await run(['encrypt', '--backend', 'vault', SECRET], undefined, { VAULT_TOKEN: undefined })
    expectOneErrorLine(none, 3, /no Vault credentials/)
  })

  it('permission denied (403) is exit 4; a wrong token too', async () => {
    vault.deny(true)
    try {
      expectOneErrorLine(await run(['encrypt', '--backend', 'vault', '--context', 'a=1', SECRET]), 4, /permission denied/)
    } finally {
      vault.deny(false)
    }
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
    const gaveUp = await run(['encrypt', '--backend', 'vault', '--context', 'a=1', SECRET])
    expectOneErrorLine(gaveUp, 1, /throttled or unavailable after 4 attempts/)
    vault.throttle(10, 503)
    expectOneErrorLine(await run(['encrypt', '--backend', 'vault', '--context', 'a=1', SECRET]), 1, /sealed/)
    vault.throttle(0)
  })

  it('status probes Vault; an unreachable Vault is reported, and encrypt fails clearly', async () => {
    const status = await run(['status', '--probe', 'vault'])
    expect(status.json().backends.vault).toMatchObject({ reachable: true, sealed: false, auth: 'token' })
    const down = await run(['status', '--probe', 'vault'], undefined, { VAULT_ADDR: 'http://127.0.0.1:9' })
    expect(down.json().backends.vault.reachable).toBe(false)
    expectOneErrorLine(
      await run(['encrypt', '--backend', 'vault', SECRET], undefined, { VAULT_ADDR: 'http://127.0.0.1:9', PROV_KMS_RETRIES: '0' }),
      1,
      /unreachable/,
    )
    expectOneErrorLine(await run(['encrypt', '--backend', 'vault', SECRET], undefined, { PROV_KMS__VAULT__KEY: 'nokey' }), 5, /not found/)
  })
})

describe('prov-kms with AWS KMS (contract server)', () => {
  let aws: AwsKmsContract
  const env = tempEnv('prov-kms-aws-')
  const results: Awaited<ReturnType<typeof kms>>[] = []
  const awsEnv = () => ({
    ...env.env,
    AWS_ACCESS_KEY_ID: 'AKIDEXAMPLETEST',
    AWS_SECRET_ACCESS_KEY: 'test-secret-access-key-value',
    AWS_REGION: 'us-east-1',
    AWS_CONFIG_FILE: '/dev/null',
    AWS_SHARED_CREDENTIALS_FILE: '/dev/null',
    PROV_KMS__AWS__ENDPOINT: aws.url,
    PROV_KMS_RETRIES: '3',
  })
  const run = async (args: string[], input?: string, extra: Record<string, string | undefined> = {}) => {
    const result = await kms(args, { env: { ...awsEnv(), ...extra }, input, cwd: env.root })
    results.push(result)
    return result
  }

  beforeAll(async () => {
    aws = await startAwsKmsContract()
  })
  afterAll(async () => {
    await aws.close()
    expectNoLeak(results, [SECRET, 'test-secret-access-key-value'], [env.root])
    env.cleanup()
  })

  it('envelope encryption with GenerateDataKey + EncryptionContext; decrypt picks AWS by the prefix', async () => {
    const big = `${SECRET}${'x'.repeat(100_000)}`
    const encrypted = await run(['encrypt', '--backend', 'awskms', '--context', 'env=prod,app=web'], big)
    expect(encrypted.code, encrypted.stderr).toBe(0)
    expect(encrypted.stdout).toMatch(/^prov:awskms:env1:/)
    const call = aws.requests.find((r) => r.target === 'GenerateDataKey')
    expect(call?.body).toMatchObject({ KeyId: 'alias/prov', KeySpec: 'AES_256', EncryptionContext: { env: 'prod', app: 'web' } })
    const decrypted = await run(['decrypt', '--context', 'app=web,env=prod'], encrypted.stdout)
    expect(decrypted.code, decrypted.stderr).toBe(0)
    expect(decrypted.stdout).toBe(big)
    expectOneErrorLine(await run(['decrypt', '--context', 'env=dev,app=web'], encrypted.stdout), 4, /InvalidCiphertextException/)
  })

  it('small input goes to KMS Encrypt directly (prov:awskms:v1:), with the EncryptionContext', async () => {
    const encrypted = await run(['encrypt', '--backend', 'awskms', '--context', 'env=prod'], SECRET)
    expect(encrypted.code, encrypted.stderr).toBe(0)
    expect(encrypted.stdout).toMatch(/^prov:awskms:v1:[A-Za-z0-9+/=]+\n$/)
    expect(aws.requests.some((r) => r.target === 'Encrypt' && (r.body.EncryptionContext as Record<string, string>)?.env === 'prod')).toBe(true)
    expect((await run(['decrypt', '--context', 'env=prod'], encrypted.stdout)).stdout).toBe(SECRET)
    expectOneErrorLine(await run(['decrypt', '--context', 'env=dev'], encrypted.stdout), 4, /InvalidCiphertextException/)
  })

  it('datakey (GenerateDataKey) gives a KMS blob that decrypt (Decrypt) unwraps', async () => {
    const record = (await run(['datakey', '--backend', 'awskms', '--context', 'purpose=disk'])).json()
    expect(record.ciphertext).toMatch(/^prov:awskms:v1:/)
    const unwrapped = await kms(['decrypt', '--context', 'purpose=disk', record.ciphertext], { env: awsEnv() })
    expect(Buffer.from(unwrapped.stdout, 'latin1').length).toBeGreaterThan(0)
    expect(aws.requests.some((r) => r.target === 'Decrypt' && (r.body.EncryptionContext as Record<string, string>)?.purpose === 'disk')).toBe(true)
  })

  it('AccessDeniedException is exit 4; ThrottlingException is retried with backoff, then a clear error', async () => {
    aws.deny(true)
    try {
      expectOneErrorLine(await run(['encrypt', '--backend', 'awskms', SECRET]), 4, /AccessDeniedException/)
    } finally {
      aws.deny(false)
    }
    aws.throttle(2)
    const before = aws.requests.length
    const recovered = await run(['encrypt', '--backend', 'awskms', SECRET])
    expect(recovered.code, recovered.stderr).toBe(0)
    expect(aws.requests.length - before).toBe(3)
    aws.throttle(20)
    expectOneErrorLine(await run(['encrypt', '--backend', 'awskms', SECRET]), 1, /ThrottlingException.*attempts/)
    aws.throttle(0)
  })

  it('unknown key is exit 5; missing credentials exit 3; status probes the key', async () => {
    expectOneErrorLine(await run(['encrypt', '--backend', 'awskms', SECRET], undefined, { PROV_KMS_AWS_KEY_ID: 'alias/missing' }), 5, /NotFoundException/)
    const noCreds = await run(['encrypt', '--backend', 'awskms', SECRET], undefined, {
      AWS_ACCESS_KEY_ID: undefined,
      AWS_SECRET_ACCESS_KEY: undefined,
      AWS_PROFILE: undefined,
      HOME: env.root,
      AWS_EC2_METADATA_DISABLED: 'true',
    })
    expect([3, 4]).toContain(noCreds.code)
    const status = await run(['status', '--probe', 'awskms'])
    expect(status.json().backends.awskms).toMatchObject({ reachable: true, key: 'alias/prov' })
    expectOneErrorLine(await run(['decrypt'], 'prov:awskms:v1:!!notbase64'), 2, /base64/)
  })
})
