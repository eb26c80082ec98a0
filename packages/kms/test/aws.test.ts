// prov-kms with AWS KMS: the same suite against moto_server (an independent emulator) and against
// our contract server (contract/aws-kms-server.ts, which verifies SigV4 signatures and can refuse
// or throttle on demand), plus the tests only the contract server can make.
import { readFileSync } from 'node:fs'
import { join } from 'node:path'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { type AwsKmsContract, startAwsKmsContract, TEST_CREDENTIALS } from './contract/aws-kms-server'
import { type MotoKms, startMoto } from './contract/moto'
import { expectNoLeak, expectOneErrorLine, kms, tempEnv } from './helpers'

/** The environment of prov-kms talking to an AWS KMS endpoint with the test credentials (no host AWS config). */
function awsEnvFor(base: Record<string, string | undefined>, endpoint: string): Record<string, string | undefined> {
  return {
    ...base,
    AWS_ACCESS_KEY_ID: TEST_CREDENTIALS.accessKeyId,
    AWS_SECRET_ACCESS_KEY: TEST_CREDENTIALS.secretAccessKey,
    AWS_REGION: 'us-east-1',
    AWS_CONFIG_FILE: '/dev/null',
    AWS_SHARED_CREDENTIALS_FILE: '/dev/null',
    PROV_KMS__AWS__ENDPOINT: endpoint,
    PROV_KMS_RETRIES: '3',
  }
}

const SECRET = 'remote-backend-secret-77'

interface Emulator {
  url: string
  close(): Promise<void>
}

function awsSuite(name: string, start: () => Promise<Emulator>) {
  describe(`prov-kms with AWS KMS (${name})`, () => {
    let server: Emulator
    const env = tempEnv(`prov-kms-aws-${name}-`)
    const results: Awaited<ReturnType<typeof kms>>[] = []
    const awsEnv = () => awsEnvFor(env.env, server.url)
    const run = async (args: string[], input?: string, extra: Record<string, string | undefined> = {}) => {
      const result = await kms(args, { env: { ...awsEnv(), ...extra }, input, cwd: env.root })
      results.push(result)
      return result
    }

    beforeAll(async () => {
      server = await start()
    })
    afterAll(async () => {
      await server?.close()
      expectNoLeak(results, [SECRET, TEST_CREDENTIALS.secretAccessKey], [env.root])
      env.cleanup()
    })

    it('envelope encryption with GenerateDataKey + EncryptionContext; decrypt picks AWS by the prefix; another context is exit 4', async () => {
      const big = `${SECRET}${'x'.repeat(100_000)}`
      const encrypted = await run(['encrypt', '--backend', 'awskms', '--context', 'env=prod,app=web'], big)
      expect(encrypted.code, encrypted.stderr).toBe(0)
      expect(encrypted.stdout).toMatch(/^prov:awskms:env1:/)
      const decrypted = await run(['decrypt', '--context', 'app=web,env=prod'], encrypted.stdout)
      expect(decrypted.code, decrypted.stderr).toBe(0)
      expect(decrypted.stdout).toBe(big)
      expectOneErrorLine(await run(['decrypt', '--context', 'env=dev,app=web'], encrypted.stdout), 4, /InvalidCiphertextException/)
    })

    it('small input goes to KMS Encrypt directly (prov:awskms:v1:), bound to the EncryptionContext', async () => {
      const encrypted = await run(['encrypt', '--backend', 'awskms', '--context', 'env=prod'], SECRET)
      expect(encrypted.code, encrypted.stderr).toBe(0)
      expect(encrypted.stdout).toMatch(/^prov:awskms:v1:[A-Za-z0-9+/=]+\n$/)
      expect((await run(['decrypt', '--context', 'env=prod'], encrypted.stdout)).stdout).toBe(SECRET)
      expectOneErrorLine(await run(['decrypt', '--context', 'env=dev'], encrypted.stdout), 4, /InvalidCiphertextException/)
      expectOneErrorLine(await run(['decrypt'], encrypted.stdout), 4, /InvalidCiphertextException/)
    })

    it('datakey (GenerateDataKey, 128 and 256 bits): decrypt gives back exactly the plaintext key', async () => {
      for (const bits of ['128', '256']) {
        const record = (await run(['datakey', '--backend', 'awskms', '--context', 'purpose=disk', '--bits', bits])).json()
        expect(record.ciphertext).toMatch(/^prov:awskms:v1:/)
        const key = Buffer.from(record.plaintext, 'base64')
        expect(key).toHaveLength(Number(bits) / 8)
        const out = join(env.root, `key-${bits}`)
        const unwrapped = await run(['decrypt', '--context', 'purpose=disk', '--output-file', out, record.ciphertext])
        expect(unwrapped.code, unwrapped.stderr).toBe(0)
        expect(readFileSync(out).equals(key)).toBe(true)
      }
      expectOneErrorLine(await run(['datakey', '--backend', 'awskms', '--bits', '512']), 2, /awskms data keys are 128 or 256 bits/)
    })

    it('field values are bound to field and record with AWS KMS too', async () => {
      const sealed = await run(['encrypt', '--backend', 'awskms', '--field', 'password'], '{"name":"a","password":"p-1"}\n{"name":"b","password":"p-2"}\n')
      expect(sealed.code, sealed.stderr).toBe(0)
      const [a, b] = sealed.lines()
      expect(a.password).toMatch(/^prov:awskms:env1:/)
      expect((await run(['decrypt', '--field', 'password'], sealed.stdout)).lines()).toEqual([
        { name: 'a', password: 'p-1' },
        { name: 'b', password: 'p-2' },
      ])
      const swapped = `${JSON.stringify({ ...a, password: b.password })}\n`
      expectOneErrorLine(await run(['decrypt', '--field', 'password'], swapped), 4, /record 'a' does not decrypt here/)
    })

    it('unknown key is exit 5; missing credentials exit 3 or 4; status probes the key; bad base64 is exit 2', async () => {
      expectOneErrorLine(await run(['encrypt', '--backend', 'awskms', SECRET], undefined, { PROV_KMS_AWS_KEY_ID: 'alias/missing' }), 5, /NotFoundException/)
      const noCreds = await run(['encrypt', '--backend', 'awskms', SECRET], undefined, {
        AWS_ACCESS_KEY_ID: undefined,
        AWS_SECRET_ACCESS_KEY: undefined,
        AWS_PROFILE: undefined,
        HOME: env.root,
        AWS_EC2_METADATA_DISABLED: 'true',
      })
      expect([3, 4]).toContain(noCreds.code)
      expect(noCreds.stderr).toMatch(/credentials|security token|signature/i)
      const status = await run(['status', '--probe', 'awskms'])
      expect(status.json().backends.awskms).toMatchObject({ reachable: true, key: 'alias/prov' })
      expectOneErrorLine(await run(['decrypt'], 'prov:awskms:v1:!!notbase64'), 2, /base64/)
    })
  })
}

awsSuite('moto_server', async () => {
  const moto: MotoKms = await startMoto()
  return moto
})

awsSuite('contract server', startAwsKmsContract)

describe('prov-kms with AWS KMS: what only the contract server can show', () => {
  let aws: AwsKmsContract
  const env = tempEnv('prov-kms-aws-contract-')
  const awsEnv = () => awsEnvFor(env.env, aws.url)
  const run = (args: string[], input?: string, extra: Record<string, string | undefined> = {}) =>
    kms(args, { env: { ...awsEnv(), ...extra }, input, cwd: env.root })

  beforeAll(async () => {
    aws = await startAwsKmsContract()
  })
  afterAll(async () => {
    await aws.close()
    env.cleanup()
  })

  it('requests are signed (SigV4 verified) and carry the EncryptionContext and key id', async () => {
    expect((await run(['encrypt', '--backend', 'awskms', '--context', 'env=prod,app=web'], 'x'.repeat(5000))).code).toBe(0)
    expect(aws.requests.find((r) => r.target === 'GenerateDataKey')?.body).toMatchObject({
      KeyId: 'alias/prov',
      KeySpec: 'AES_256',
      EncryptionContext: { env: 'prod', app: 'web' },
    })
    expect((await run(['encrypt', '--backend', 'awskms', '--context', 'env=prod', SECRET])).code).toBe(0)
    expect(aws.requests.some((r) => r.target === 'Encrypt' && (r.body.EncryptionContext as Record<string, string>)?.env === 'prod')).toBe(true)
    // The contract server checks the signature itself: the wrong secret is refused.
    expectOneErrorLine(
      await run(['encrypt', '--backend', 'awskms', SECRET], undefined, { AWS_SECRET_ACCESS_KEY: 'not-the-secret' }),
      4,
      /InvalidSignatureException/,
    )
    expectOneErrorLine(await run(['encrypt', '--backend', 'awskms', SECRET], undefined, { AWS_ACCESS_KEY_ID: 'AKIDUNKNOWN' }), 4, /UnrecognizedClientException/)
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
})
