import { spawn, spawnSync } from 'node:child_process'
import { createHash, randomBytes } from 'node:crypto'
import { chmodSync, existsSync, readFileSync, writeFileSync } from 'node:fs'
import { join } from 'node:path'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { PROV_VERSION } from '../../core/src/version'
import { expectNoLeak, expectOneErrorLine, kms, modeOf, recipientOf, tempEnv } from './helpers'
import { KMS_VERSION_FOR_TEST } from './version-probe'

const SECRET = 'tr0ub4dor-and-3-horses'

describe('prov-kms keys and encrypt/decrypt (age)', () => {
  const env = tempEnv('prov-kms-crypt-')
  const identity = join(env.env.XDG_CONFIG_HOME as string, 'prov', 'kms', 'identity.txt')
  const results: Awaited<ReturnType<typeof kms>>[] = []
  const run = async (args: string[], input?: string | Buffer, extra: Record<string, string | undefined> = {}) => {
    const result = await kms(args, { env: { ...env.env, ...extra }, input, cwd: env.root })
    results.push(result)
    return result
  }

  beforeAll(async () => {
    const created = await run(['keygen'])
    expect(created.code, created.stderr).toBe(0)
  })
  afterAll(() => {
    expectNoLeak(results, [SECRET], [env.root])
    env.cleanup()
  })

  it('--version matches the core version', async () => {
    expect(KMS_VERSION_FOR_TEST).toBe(PROV_VERSION)
    const result = await run(['--version'])
    expect(result.stdout.trim()).toBe(PROV_VERSION)
  })

  it('keygen writes a 0600 identity outside a workspace and refuses to overwrite it', async () => {
    expect(modeOf(identity)).toBe(0o600)
    expect(readFileSync(identity, 'utf8')).toMatch(/^# created: .+\n# public key: age1[a-z0-9]+\nAGE-SECRET-KEY-1[A-Z0-9]+\n$/)
    const before = readFileSync(identity, 'utf8')
    const again = await run(['keygen'])
    expectOneErrorLine(again, 2, /refusing to overwrite/)
    expect(readFileSync(identity, 'utf8')).toBe(before)
    const other = await run(['keygen', '--backend', 'vault'])
    expectOneErrorLine(other, 2, /age keys only/)
  })

  it('echo test | encrypt | decrypt prints test; ciphertext has the prov:age:v1: prefix', async () => {
    const encrypted = await run(['encrypt'], 'test\n')
    expect(encrypted.code, encrypted.stderr).toBe(0)
    expect(encrypted.stdout).toMatch(/^prov:age:v1:[A-Za-z0-9+/=]+\n$/)
    const decrypted = await run(['decrypt'], encrypted.stdout)
    expect(decrypted.code, decrypted.stderr).toBe(0)
    expect(decrypted.stdout).toBe('test\n')
  })

  it('DATA as an argument, and a secret never reaches stderr', async () => {
    const encrypted = await run(['encrypt', SECRET])
    expect(encrypted.stdout).not.toContain(SECRET)
    const decrypted = await run(['decrypt', encrypted.stdout.trim()])
    expect(decrypted.stdout).toBe(SECRET)
  })

  it('binds the encryption context: same context decrypts (any order), another one is exit 4', async () => {
    const encrypted = await run(['encrypt', '--context', 'env=prod,service=api'], SECRET)
    const ok = await run(['decrypt', '--context', 'service=api', '--context', 'env=prod'], encrypted.stdout)
    expect(ok.code, ok.stderr).toBe(0)
    expect(ok.stdout).toBe(SECRET)
    const wrong = await run(['decrypt', '--context', 'env=dev,service=api'], encrypted.stdout)
    expectOneErrorLine(wrong, 4, /encryption context/)
    const missing = await run(['decrypt'], encrypted.stdout)
    expectOneErrorLine(missing, 4)
    const bad = await run(['encrypt', '--context', 'novalue'], SECRET)
    expectOneErrorLine(bad, 2, /--context/)
  })

  it('is binary-safe (non-UTF-8 bytes) in armored and --binary mode', async () => {
    const data = Buffer.concat([Buffer.from([0xff, 0xfe, 0x00, 0xc3, 0x28]), randomBytes(70_000)])
    const armored = spawnSync(process.execPath, [join(__dirname, '../../../bin/prov-kms'), 'encrypt'], {
      input: data,
      env: { ...process.env, ...env.env } as NodeJS.ProcessEnv,
    })
    expect(armored.status, String(armored.stderr)).toBe(0)
    const back = spawnSync(process.execPath, [join(__dirname, '../../../bin/prov-kms'), 'decrypt'], {
      input: armored.stdout,
      env: { ...process.env, ...env.env } as NodeJS.ProcessEnv,
    })
    expect(Buffer.compare(back.stdout, data)).toBe(0)
    const binary = spawnSync(process.execPath, [join(__dirname, '../../../bin/prov-kms'), 'encrypt', '--binary'], {
      input: data,
      env: { ...process.env, ...env.env } as NodeJS.ProcessEnv,
    })
    expect(binary.stdout.subarray(0, 12).toString()).toBe('prov:age:v1\n')
    const back2 = spawnSync(process.execPath, [join(__dirname, '../../../bin/prov-kms'), 'decrypt'], {
      input: binary.stdout,
      env: { ...process.env, ...env.env } as NodeJS.ProcessEnv,
    })
    expect(Buffer.compare(back2.stdout, data)).toBe(0)
  })

  // Its peak memory is measured by `npm run bench -- P6` (no memory assertions in tests).
  it('streams huge input (64 MiB) through encrypt | decrypt, byte for byte', async () => {
    const bin = join(__dirname, '../../../bin/prov-kms')
    const childEnv = { ...process.env, ...env.env } as NodeJS.ProcessEnv
    const enc = spawn(process.execPath, [bin, 'encrypt', '--binary'], { env: childEnv, stdio: ['pipe', 'pipe', 'inherit'] })
    const dec = spawn(process.execPath, [bin, 'decrypt'], { env: childEnv, stdio: ['pipe', 'pipe', 'inherit'] })
    enc.stdout.pipe(dec.stdin)
    const hash = createHash('sha256')
    let total = 0
    dec.stdout.on('data', (chunk: Buffer) => {
      hash.update(chunk)
      total += chunk.length
    })
    const size = 64 * 1024 * 1024
    const block = Buffer.alloc(1024 * 1024, 0x5a)
    for (let sent = 0; sent < size; sent += block.length) {
      if (!enc.stdin.write(block)) await new Promise((resolve) => enc.stdin.once('drain', resolve))
    }
    enc.stdin.end()
    await Promise.all([new Promise((resolve) => enc.on('close', resolve)), new Promise((resolve) => dec.on('close', resolve))])
    expect(enc.exitCode).toBe(0)
    expect(dec.exitCode).toBe(0)
    expect(total).toBe(size)
    const expected = createHash('sha256')
    for (let sent = 0; sent < size; sent += block.length) expected.update(block)
    expect(hash.digest('hex')).toBe(expected.digest('hex'))
  })

  it('truncated, corrupted and unknown ciphertexts are refused with the right exit code', async () => {
    const encrypted = (await run(['encrypt'], 'x'.repeat(200_000))).stdout.trim()
    const truncated = await run(['decrypt'], encrypted.slice(0, encrypted.length - 400))
    expect([2, 4]).toContain(truncated.code)
    expect(truncated.stderr.trim().split('\n')).toHaveLength(1)
    const cutAtChunk = await run(['decrypt'], encrypted.slice(0, 12 + Math.floor(((encrypted.length - 12) * 0.7) / 4) * 4))
    expect([2, 4]).toContain(cutAtChunk.code)
    const flipped = encrypted.slice(0, 600) + (encrypted[600] === 'A' ? 'B' : 'A') + encrypted.slice(601)
    const corrupted = await run(['decrypt'], flipped)
    expect(corrupted.code).toBe(4)
    const header = await run(['decrypt'], 'prov:age:v1:AAAA')
    expectOneErrorLine(header, 2, /truncated|corrupted/)
    const notBase64 = await run(['decrypt'], 'prov:age:v1:@@@@!!!')
    expectOneErrorLine(notBase64, 2, /base64/)
    const unknown = await run(['decrypt'], 'prov:rot13:v1:abc')
    expectOneErrorLine(unknown, 2, /unknown ciphertext prefix 'prov:rot13:v1:'/)
    const plain = await run(['decrypt'], 'hello')
    expectOneErrorLine(plain, 2, /not a prov-kms ciphertext/)
    const empty = await run(['decrypt'], '')
    expectOneErrorLine(empty, 2)
  })

  it('interoperates with the real age CLI both ways (--format age)', async () => {
    const recipient = recipientOf(identity)
    const armored = await run(['encrypt', '--format', 'age', '-r', recipient], SECRET)
    expect(armored.stdout).toMatch(/^-----BEGIN AGE ENCRYPTED FILE-----\n/)
    const ageOut = spawnSync('age', ['-d', '-i', identity], { input: armored.stdout })
    expect(ageOut.status, String(ageOut.stderr)).toBe(0)
    expect(ageOut.stdout.toString()).toBe(SECRET)
    const data = randomBytes(200_000)
    const binary = spawnSync(process.execPath, [join(__dirname, '../../../bin/prov-kms'), 'encrypt', '--format', 'age', '--binary'], {
      input: data,
      env: { ...process.env, ...env.env } as NodeJS.ProcessEnv,
    })
    expect(binary.stdout.subarray(0, 21).toString()).toBe('age-encryption.org/v1')
    const ageBinary = spawnSync('age', ['-d', '-i', identity], { input: binary.stdout, maxBuffer: 1 << 24 })
    expect(Buffer.compare(ageBinary.stdout, data)).toBe(0)
    // age -r -> prov-kms decrypt, armored and binary
    for (const flags of [['-a'], []]) {
      const fromAge = spawnSync('age', [...flags, '-r', recipient], { input: data })
      const back = spawnSync(process.execPath, [join(__dirname, '../../../bin/prov-kms'), 'decrypt'], {
        input: fromAge.stdout,
        env: { ...process.env, ...env.env } as NodeJS.ProcessEnv,
        maxBuffer: 1 << 24,
      })
      expect(back.status, String(back.stderr)).toBe(0)
      expect(Buffer.compare(back.stdout, data)).toBe(0)
    }
    const withContext = await run(['encrypt', '--format', 'age', '--context', 'a=b'], SECRET)
    expectOneErrorLine(withContext, 2, /context/)
  })

  it('a file encrypted for another key is exit 4 (wrong identity)', async () => {
    const other = tempEnv('prov-kms-other-')
    try {
      expect((await kms(['keygen'], { env: other.env })).code).toBe(0)
      const foreign = await kms(['encrypt', SECRET], { env: other.env })
      const wrong = await run(['decrypt'], foreign.stdout)
      expectOneErrorLine(wrong, 4, /wrong key|no identity/)
      const ageFile = spawnSync('age', ['-r', recipientOf(join(other.env.XDG_CONFIG_HOME as string, 'prov/kms/identity.txt'))], { input: SECRET })
      const wrongAge = await run(['decrypt'], ageFile.stdout)
      expectOneErrorLine(wrongAge, 4)
    } finally {
      other.cleanup()
    }
  })

  it('a missing identity is exit 5; a group/world-readable identity is refused with exit 4', async () => {
    const missing = await run(['encrypt', 'x'], undefined, { PROV_KMS_IDENTITY: join(env.root, 'nope.txt') })
    expectOneErrorLine(missing, 5, /no age identity/)
    const loose = join(env.root, 'loose.txt')
    writeFileSync(loose, readFileSync(identity))
    chmodSync(loose, 0o644)
    for (const args of [
      ['encrypt', 'x'],
      ['decrypt', 'prov:age:v1:AAAA'],
      ['keys', 'list'],
      ['datakey'],
      ['sops', 'decrypt', 'x.yaml'],
      ['secret', 'list'],
      ['scan', '.'],
    ]) {
      const refused = await run(args, undefined, { PROV_KMS_IDENTITY: loose })
      expectOneErrorLine(refused, 4, /readable by group or others/)
    }
    const status = await run(['status'], undefined, { PROV_KMS_IDENTITY: loose })
    expect(status.json().identity).toMatchObject({ healthy: false, mode: '0644' })
    const garbage = join(env.root, 'garbage.txt')
    writeFileSync(garbage, 'not a key\n', { mode: 0o600 })
    const bad = await run(['encrypt', 'x'], undefined, { PROV_KMS_IDENTITY: garbage })
    expectOneErrorLine(bad, 4, /no AGE-SECRET-KEY/)
  })

  it('datakey gives a key and a wrapped form that decrypt turns back into the key', async () => {
    const result = await run(['datakey', '--context', 'purpose=test'])
    expect(result.code, result.stderr).toBe(0)
    const record = result.json()
    expect(record.schema).toBe('prov.kms.datakey/v1')
    expect(Buffer.from(record.plaintext, 'base64')).toHaveLength(32)
    const unwrapped = spawnSync(process.execPath, [join(__dirname, '../../../bin/prov-kms'), 'decrypt', '--context', 'purpose=test'], {
      input: record.ciphertext,
      env: { ...process.env, ...env.env } as NodeJS.ProcessEnv,
    })
    expect(unwrapped.stdout.toString('base64')).toBe(record.plaintext)
  })

  it('status and keys list report the identity as JSON', async () => {
    const status = await run(['status'])
    expect(status.code, status.stderr).toBe(0)
    const record = status.json()
    expect(record).toMatchObject({ schema: 'prov.kms.status/v1', backend: 'age', healthy: true, identity: { healthy: true, mode: '0600' } })
    expect(record.identity.recipient).toBe(recipientOf(identity))
    const keys = await run(['keys', 'list'])
    expect(keys.json()).toEqual([expect.objectContaining({ status: 'active', recipient: recipientOf(identity) })])
    expect(keys.stdout).not.toContain('AGE-SECRET-KEY')
    expect(existsSync(identity)).toBe(true)
  })

  it('unknown flags, backends and formats are usage errors', async () => {
    expectOneErrorLine(await run(['encrypt', '--nope', 'x']), 2)
    expectOneErrorLine(await run(['encrypt', '--backend', 'rot13', 'x']), 2, /unknown backend/)
    expectOneErrorLine(await run(['encrypt', '--format', 'pgp', 'x']), 2, /unknown format/)
    expectOneErrorLine(await run(['sops', 'encrypt', '--input-type', 'xml', 'x.yaml']), 2, /invalid value for '--input-type': 'xml'.*one of yaml, json, dotenv/)
    expectOneErrorLine(await run(['encrypt', '-r', 'ssh-rsa AAAA', 'x']), 2, /not an age recipient/)
  })
})
