import { spawnSync } from 'node:child_process'
import { existsSync, mkdirSync, readFileSync, statSync, writeFileSync } from 'node:fs'
import { join } from 'node:path'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { redactString, resolveSecretRefs, workspaceSecretResolver } from '../../core/src/index'
import { expectNoLeak, expectOneErrorLine, recipientOf, recordingKms, tempWorkspace } from './helpers'

const DB_PASSWORD = 'Sup3r-s3cret-db-pass'
const API_TOKEN = 'tok_live_0123456789abcdef'

describe('prov-kms secret store, keys rotate and scan (workspace)', () => {
  let ws: Awaited<ReturnType<typeof tempWorkspace>>
  const { results, run } = recordingKms(() => ws)
  const identity = () => join(ws.path, '.prov/kms/identity.txt')

  beforeAll(async () => {
    ws = await tempWorkspace('kmsws')
    const created = await run(['keygen'])
    expect(created.code, created.stderr).toBe(0)
  })
  afterAll(() => {
    expectNoLeak(results, [DB_PASSWORD, API_TOKEN], [ws.root])
    ws.cleanup()
  })

  it('keygen in a workspace writes <workspace>/.prov/kms/identity.txt (0600)', () => {
    expect(statSync(identity()).mode & 0o777).toBe(0o600)
    expect(existsSync(join(ws.env.XDG_CONFIG_HOME as string, 'prov/kms/identity.txt'))).toBe(false)
  })

  it('secret set/get/list/rm', async () => {
    const set = await run(['secret', 'set', 'db/password', '-'], `${DB_PASSWORD}\n`)
    expect(set.code, set.stderr).toBe(0)
    expect(set.stdout).not.toContain(DB_PASSWORD)
    expect((await run(['secret', 'set', 'api/token', API_TOKEN])).code).toBe(0)
    const file = join(ws.path, 'secrets/db/password.age')
    expect(statSync(file).mode & 0o777).toBe(0o600)
    expect(readFileSync(file, 'utf8')).toMatch(/^-----BEGIN AGE ENCRYPTED FILE-----/)
    // the file is a plain age file: the age CLI opens it with the workspace identity
    expect(spawnSync('age', ['-d', '-i', identity(), file]).stdout.toString()).toBe(DB_PASSWORD)
    const got = await run(['secret', 'get', 'db/password'])
    expect(got.stdout).toBe(DB_PASSWORD)
    const list = await run(['secret', 'list'])
    expect(list.json().map((r: { name: string }) => r.name)).toEqual(['api/token', 'db/password'])
    expect(list.stdout).not.toContain(DB_PASSWORD)
    expectOneErrorLine(await run(['secret', 'get', 'db/nope']), 5, /no secret 'db\/nope'/)
    expectOneErrorLine(await run(['secret', 'set', '../escape', 'x']), 2, /invalid secret name/)
    expectOneErrorLine(await run(['secret', 'set', 'empty', '-'], ''), 2, /empty/)
    expect((await run(['secret', 'set', 'tmp/x', 'value-x'])).code).toBe(0)
    expect((await run(['secret', 'rm', 'tmp/x', '--yes'])).code).toBe(0)
    expect(existsSync(join(ws.path, 'secrets/tmp'))).toBe(false)
    expectOneErrorLine(await run(['secret', 'rm', 'tmp/x', '--yes']), 5)
  })

  it('secret set --file stores the file byte for byte (trailing newline kept); bad files change nothing', async () => {
    const pem = join(ws.root, 'tls.key')
    const content = '-----BEGIN TEST KEY-----\nAAAA\n-----END TEST KEY-----\n\n'
    writeFileSync(pem, content)
    const set = await run(['secret', 'set', 'tls/key', '--file', pem])
    expect(set.code, set.stderr).toBe(0)
    expect((await run(['secret', 'get', 'tls/key'])).stdout).toBe(content)
    expectOneErrorLine(await run(['secret', 'set', 'tls/other', 'value', '--file', pem]), 2, /not both/)
    expectOneErrorLine(await run(['secret', 'set', 'tls/other', '--file', join(ws.root, 'missing.key')]), 5, /no file/)
    expectOneErrorLine(await run(['secret', 'set', 'tls/other', '--file', ws.root]), 2, /not a regular file/)
    const big = join(ws.root, 'big.bin')
    writeFileSync(big, Buffer.alloc((1 << 20) + 1, 1))
    expectOneErrorLine(await run(['secret', 'set', 'tls/other', '--file', big]), 2, /larger than a secret/)
    expect(existsSync(join(ws.path, 'secrets/tls/other.age'))).toBe(false)
    expect((await run(['secret', 'rm', 'tls/key', '--yes'])).code).toBe(0)
  })

  it('core resolves {"secret": ...} references through the workspace store and redacts the values', async () => {
    const previous = process.env.PROV_KMS_IDENTITY
    delete process.env.PROV_KMS_IDENTITY
    try {
      const resolver = workspaceSecretResolver(ws.path)
      const resolved = await resolveSecretRefs({ env: { DB_PASSWORD: { secret: 'db/password' } }, list: [{ secret: 'api/token' }], plain: 1 }, resolver)
      expect(resolved).toEqual({ env: { DB_PASSWORD }, list: [API_TOKEN], plain: 1 })
      expect(redactString(`connecting with ${DB_PASSWORD}`)).not.toContain(DB_PASSWORD)
      await expect(resolver.get('missing/one')).rejects.toMatchObject({ code: 5 })
      await expect(resolver.get('../bad')).rejects.toMatchObject({ code: 2 })
    } finally {
      if (previous !== undefined) process.env.PROV_KMS_IDENTITY = previous
    }
  })

  it('keys rotate: new identity, secrets and SOPS files re-encrypted, old key kept as retired', async () => {
    const oldRecipient = recipientOf(identity())
    const sopsFile = join(ws.path, 'secrets', 'app.enc.yaml')
    mkdirSync(join(ws.path, 'secrets'), { recursive: true })
    writeFileSync(sopsFile, `password: ${DB_PASSWORD}\n`)
    expect((await run(['sops', 'encrypt', '--in-place', sopsFile])).code).toBe(0)
    const oldCiphertext = (await run(['encrypt', 'legacy-value'])).stdout
    const rotated = await run(['keys', 'rotate', '--yes'])
    expect(rotated.code, rotated.stderr).toBe(0)
    const records = rotated.json()
    const newRecipient = recipientOf(identity())
    expect(newRecipient).not.toBe(oldRecipient)
    expect(records.filter((r: { kind: string }) => r.kind === 'secret').map((r: { name: string }) => r.name)).toEqual(['api/token', 'db/password'])
    expect(records.filter((r: { kind: string }) => r.kind === 'sops').map((r: { file: string }) => r.file)).toEqual(['secrets/app.enc.yaml'])
    expect(readFileSync(sopsFile, 'utf8')).toContain(newRecipient)
    expect(readFileSync(sopsFile, 'utf8')).not.toContain(oldRecipient)
    // Only the new identity is needed for the store now:
    expect(spawnSync('age', ['-d', '-i', identity(), join(ws.path, 'secrets/db/password.age')]).stdout.toString()).toBe(DB_PASSWORD)
    expect((await run(['sops', 'decrypt', sopsFile])).stdout).toContain(DB_PASSWORD)
    // Old ciphertexts still open through the retired key.
    expect((await run(['decrypt'], oldCiphertext)).stdout).toBe('legacy-value')
    const keys = (await run(['keys', 'list'])).json()
    expect(keys.map((k: { status: string; recipient: string }) => [k.status, k.recipient])).toEqual([
      ['active', newRecipient],
      ['retired', oldRecipient],
    ])
    for (const k of keys) expect(statSync(k.path).mode & 0o777).toBe(0o600)
  })

  it('scan finds plain-text secrets (exit 6) and never prints their values; ignores encrypted ones', async () => {
    const dir = join(ws.root, 'scanme')
    mkdirSync(join(dir, 'config'), { recursive: true })
    writeFileSync(
      join(dir, 'config/app.yaml'),
      `db:\n  host: db.local\n  password: ${DB_PASSWORD}\n  password_ref: {secret: db/password}\napi_token: "{{env.API_TOKEN}}"\nenc: ENC[AES256_GCM,data:abc,iv:def,tag:ghi,type:str]\nkey_id: alias/prov\n`,
    )
    writeFileSync(join(dir, '.env'), `API_TOKEN=${API_TOKEN}\nDEBUG=true\nEMPTY_SECRET=\n`)
    writeFileSync(join(dir, 'config/settings.json'), JSON.stringify({ client_secret: 'prov:age:v1:AAAA', token: { secret: 'api/token' } }, null, 2))
    writeFileSync(join(dir, 'config/app.toml'), `[aws]\naccess_key = "${'AKIA'}IOSFODNN7EXAMPLE"\n`)
    writeFileSync(join(dir, 'notes.txt'), `ssh key:\n-----BEGIN OPENSSH PRIVATE KEY-----\nabc\n-----END OPENSSH PRIVATE KEY-----\nghp_${'a'.repeat(36)}\n`)
    const found = await run(['scan', dir])
    expect(found.code).toBe(6)
    const findings = found.json()
    const summary = findings.map((f: { file: string; line: number; kind: string }) => `${f.file}:${f.line}:${f.kind}`)
    expect(summary).toEqual([
      '.env:1:secret-field',
      'config/app.toml:2:aws-access-key-id',
      'config/app.yaml:3:secret-field',
      'notes.txt:2:private-key',
      'notes.txt:5:github-token',
    ])
    expect(found.stdout).not.toContain(DB_PASSWORD)
    expect(found.stdout).not.toContain(API_TOKEN)
    // The workspace itself is clean: secrets are encrypted, identities live under .prov.
    const clean = await run(['scan', ws.path])
    expect(clean.code, clean.stdout).toBe(0)
    expect(clean.json()).toEqual([])
    expectOneErrorLine(await run(['scan', join(ws.root, 'nope')]), 5)
  })
})
