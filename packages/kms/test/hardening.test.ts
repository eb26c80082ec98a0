// Hostile input for prov-kms, one class per test: moved field ciphertexts, deep nesting on every
// structured input path, a secret store reached through symlinks, truncated streams, plain files
// in secrets/, and the modes of keys and stored secrets.
import { spawnSync } from 'node:child_process'
import { randomBytes } from 'node:crypto'
import { closeSync, existsSync, mkdirSync, openSync, readdirSync, readFileSync, renameSync, statSync, symlinkSync, writeFileSync } from 'node:fs'
import { join } from 'node:path'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { expectNoLeak, expectOneErrorLine, kms, kmsSession, modeOf, recipientOf, tempEnv, tempWorkspace } from './helpers'

const bin = join(import.meta.dirname, '../../../bin/prov-kms')
const PASSWORDS = ['pw-web0-alpha', 'pw-web1-bravo', 'other-web0-charlie']

describe('prov-kms --field ciphertexts are bound to their field and record', () => {
  const { env, results, run } = kmsSession('prov-kms-bind-')
  const records = [
    { name: 'web-0', password: PASSWORDS[0], other: PASSWORDS[2] },
    { name: 'web-1', password: PASSWORDS[1] },
  ]
  let encrypted: Array<Record<string, string>> = []
  const ndjson = (list: unknown[]) => `${list.map((r) => JSON.stringify(r)).join('\n')}\n`

  beforeAll(async () => {
    expect((await run(['keygen'])).code).toBe(0)
    const result = await run(['encrypt', '--field', 'password,other'], ndjson(records))
    expect(result.code, result.stderr).toBe(0)
    encrypted = result.lines()
  })
  afterAll(() => {
    expectNoLeak(results, PASSWORDS, [env.root])
    env.cleanup()
  })

  it('in place they decrypt; swapped between records, between fields, or renamed they fail with exit 4', async () => {
    const back = await run(['decrypt', '--field', 'password,other'], ndjson(encrypted))
    expect(back.code, back.stderr).toBe(0)
    expect(back.lines()).toEqual(records)

    const swappedRecords = [
      { ...encrypted[0], password: encrypted[1].password },
      { ...encrypted[1], password: encrypted[0].password },
    ]
    const refused = await run(['decrypt', '--field', 'password'], ndjson(swappedRecords))
    expectOneErrorLine(refused, 4, /field password of record 'web-0' does not decrypt here.*moved from another field or record/)
    expect(refused.stdout).toBe('')

    const swappedFields = [{ ...encrypted[0], password: encrypted[0].other, other: encrypted[0].password }]
    expectOneErrorLine(await run(['decrypt', '--field', 'password,other'], ndjson(swappedFields)), 4, /field password of record 'web-0'/)

    // The same record moved under another name, and a field renamed.
    expectOneErrorLine(await run(['decrypt', '--field', 'password'], ndjson([{ ...encrypted[0], name: 'web-9' }])), 4, /record 'web-9'/)
    const renamed = { name: 'web-0', pw: encrypted[0].password }
    expectOneErrorLine(await run(['decrypt', '--field', 'pw'], ndjson([renamed])), 4, /field pw of record 'web-0'/)
  })

  it('records without a name are bound to the field path; an id serves as identity too', async () => {
    const plain = [{ id: 7, secret: 'a-secret-1' }, { secret: 'a-secret-2' }]
    const sealed = (await run(['encrypt', '--field', 'secret'], ndjson(plain))).lines()
    expect((await run(['decrypt', '--field', 'secret'], ndjson(sealed))).lines()).toEqual(plain)
    const moved = [{ id: 8, secret: sealed[0].secret }]
    expectOneErrorLine(await run(['decrypt', '--field', 'secret'], ndjson(moved)), 4, /record '8'/)
    expectOneErrorLine(await run(['decrypt', '--field', 'secret'], ndjson([{ ...sealed[1], id: 1 }])), 4)
  })

  it('an unbound value (plain encrypt, as older prov-kms wrote fields) needs --allow-unbound, which still refuses moved bound values', async () => {
    const legacy = (await run(['encrypt', 'legacy-value-42'])).stdout.trim()
    const input = ndjson([{ name: 'web-0', password: legacy }])
    expectOneErrorLine(await run(['decrypt', '--field', 'password'], input), 4, /allow-unbound/)
    const allowed = await run(['decrypt', '--field', 'password', '--allow-unbound'], input)
    expect(allowed.code, allowed.stderr).toBe(0)
    expect(allowed.lines()).toEqual([{ name: 'web-0', password: 'legacy-value-42' }])
    expect(allowed.stderr).toMatch(/1 value\(s\) were not bound.*field password of record 'web-0'/)
    const swapped = ndjson([{ ...encrypted[0], password: encrypted[1].password }])
    expectOneErrorLine(await run(['decrypt', '--field', 'password', '--allow-unbound'], swapped), 4, /does not decrypt here/)
    expectOneErrorLine(await run(['decrypt', '--allow-unbound', legacy]), 2, /only applies to --field/)
  })

  it('prov: context keys are reserved; prototype keys and field paths are refused', async () => {
    expectOneErrorLine(await run(['encrypt', '--context', 'prov:field=password', 'x']), 2, /reserved/)
    expectOneErrorLine(await run(['encrypt', '--context', '__proto__=x', 'x']), 2, /not allowed/)
    expectOneErrorLine(await run(['encrypt', '--field', '__proto__.polluted'], '{"a":1}\n'), 2, /never a data field/)
    expectOneErrorLine(await run(['encrypt', '--field', 'password'], '{"__proto__":{"x":1},"password":"p"}\n'), 2, /__proto__/)
  })
})

describe('prov-kms refuses deeply nested input on every structured path (exit 2, one line)', () => {
  const { env, run, file } = kmsSession('prov-kms-deep-')
  const deep = 100_000
  const nestedArray = `${'['.repeat(deep)}${']'.repeat(deep)}`
  const nestedObject = `${'{"a":'.repeat(deep)}1${'}'.repeat(deep)}`

  beforeAll(async () => {
    expect((await run(['keygen'])).code).toBe(0)
  })
  afterAll(() => env.cleanup())

  it('--field records: NDJSON, a JSON array, one pretty object, encrypt and decrypt', async () => {
    for (const verb of ['encrypt', 'decrypt']) {
      const line = await run([verb, '--field', 'password'], `{"name":"x","password":"p","deep":${nestedArray}}\n`)
      expectOneErrorLine(line, 2, /stdin:1 is nested too deeply/)
      expect(line.stdout).toBe('')
      expectOneErrorLine(await run([verb, '--field', 'password'], `[{"password":"p","deep":${nestedObject}}]`), 2, /nested too deeply/)
      expectOneErrorLine(await run([verb, '--field', 'password'], `{\n"password": "p",\n"deep": ${nestedArray}\n}\n`), 2, /nested too deeply/)
    }
    // Second and later NDJSON records too, and a depth just over the limit.
    const shallow = '{"password":"p"}'
    const justOver = `{"password":"p","deep":${'['.repeat(100)}${']'.repeat(100)}}`
    expectOneErrorLine(await run(['encrypt', '--field', 'password'], `${shallow}\n${justOver}\n`), 2, /stdin:2 is nested too deeply/)
    const justUnder = `{"password":"p","deep":${'['.repeat(98)}${']'.repeat(98)}}`
    expect((await run(['encrypt', '--field', 'password'], `${justUnder}\n`)).code).toBe(0)
  })

  it('SOPS files: YAML (flow and block), JSON, dotenv metadata, and .sops.yaml', async () => {
    const yamlFlow = file('flow.yaml', `a: ${nestedArray}\n`)
    const yamlBlock = file('block.yaml', `a:\n  ${'- '.repeat(deep)}x\n`)
    const json = file('deep.json', `{"a": ${nestedObject}}`)
    for (const path of [yamlFlow, yamlBlock, json]) {
      for (const verb of ['encrypt', 'decrypt']) expectOneErrorLine(await run(['sops', verb, path]), 2, /is nested too deeply/)
    }
    const dotenv = file('deep.env', `A=1\nsops_age${'__map_x'.repeat(deep)}=1\nsops_mac=x\nsops_lastmodified=2020-01-01T00:00:00Z\n`)
    expectOneErrorLine(await run(['sops', 'decrypt', dotenv]), 2, /nested too deeply/)
    const sparse = file('sparse.env', 'A=1\nsops_age__list_99999999__map_enc=1\nsops_mac=x\nsops_lastmodified=2020-01-01T00:00:00Z\n')
    expectOneErrorLine(await run(['sops', 'decrypt', sparse]), 2, /bad sops metadata key/)
    const repo = join(env.root, 'repo')
    mkdirSync(repo)
    writeFileSync(join(repo, '.sops.yaml'), `creation_rules: ${nestedArray}\n`)
    writeFileSync(join(repo, 'app.yaml'), 'password: x\n')
    expectOneErrorLine(await run(['sops', 'encrypt', join(repo, 'app.yaml')]), 2, /\.sops\.yaml is nested too deeply/)
  })
})

describe('prov-kms secret store through symlinks, modes of keys and secrets, scan of secrets/', () => {
  let ws: Awaited<ReturnType<typeof tempWorkspace>>
  const run = (args: string[], input?: string) => kms(args, { env: ws.env, input, cwd: ws.root })
  const secrets = () => join(ws.path, 'secrets')

  beforeAll(async () => {
    ws = await tempWorkspace('kmsharden')
    expect((await run(['keygen'])).code).toBe(0)
  })
  afterAll(() => ws.cleanup())

  it('keys and secrets are 0600 in 0700 folders (secrets/ tightened, retired keys too)', async () => {
    expect((await run(['secret', 'set', 'db/password', 'pw-modes-1'])).code).toBe(0)
    expect(modeOf(join(ws.path, '.prov/kms'))).toBe(0o700)
    expect(modeOf(join(ws.path, '.prov/kms/identity.txt'))).toBe(0o600)
    expect(modeOf(secrets())).toBe(0o700)
    expect(modeOf(join(secrets(), 'db'))).toBe(0o700)
    expect(modeOf(join(secrets(), 'db/password.age'))).toBe(0o600)
    const rotated = await run(['keys', 'rotate', '--yes'])
    expect(rotated.code, rotated.stderr).toBe(0)
    const retired = join(ws.path, '.prov/kms/retired')
    expect(modeOf(retired)).toBe(0o700)
    for (const name of readdirSync(retired)) expect(modeOf(join(retired, name))).toBe(0o600)
    expect((await run(['secret', 'get', 'db/password'])).stdout).toBe('pw-modes-1')
  })

  it('a symlinked secrets folder, a link inside it, or a linked secret file is refused (exit 4) and nothing outside changes', async () => {
    const outside = join(ws.root, 'outside')
    mkdirSync(outside, { recursive: true })
    writeFileSync(join(outside, 'victim.age'), 'untouched\n')
    renameSync(secrets(), `${secrets()}.real`)
    symlinkSync(outside, secrets())
    try {
      for (const args of [
        ['secret', 'set', 'db/x', 'value-x'],
        ['secret', 'list'],
        ['secret', 'get', 'victim'],
        ['secret', 'rm', 'victim', '--yes'],
        ['keys', 'rotate', '--yes'],
      ]) {
        expectOneErrorLine(await run(args), 4, /refusing a path outside/)
      }
      expect(readdirSync(outside)).toEqual(['victim.age'])
      expect(readFileSync(join(outside, 'victim.age'), 'utf8')).toBe('untouched\n')
    } finally {
      const { rmSync } = await import('node:fs')
      rmSync(secrets())
      renameSync(`${secrets()}.real`, secrets())
    }
    symlinkSync(outside, join(secrets(), 'linked'))
    expectOneErrorLine(await run(['secret', 'set', 'linked/y', 'value-y']), 4, /outside the secret store/)
    symlinkSync(join(outside, 'victim.age'), join(secrets(), 'db', 'evil.age'))
    expectOneErrorLine(await run(['secret', 'set', 'db/evil', 'value-z']), 4, /outside the secret store/)
    expectOneErrorLine(await run(['secret', 'rm', 'db/evil', '--yes']), 4, /outside the secret store/)
    expect(readdirSync(outside)).toEqual(['victim.age'])
    expect(readFileSync(join(outside, 'victim.age'), 'utf8')).toBe('untouched\n')
    // Names that climb out are refused before any path is built.
    expectOneErrorLine(await run(['secret', 'set', '../escape', 'x']), 2, /invalid secret name/)
  })

  it('scan reports plain files and symlinks under secrets/, whatever their name; encrypted ones pass', async () => {
    const clean = await run(['scan'])
    // Only the links left by the previous test.
    expect(clean.json().map((f: { file: string; kind: string }) => `${f.file}:${f.kind}`)).toEqual([
      'secrets/db/evil.age:symlink-in-secrets',
      'secrets/linked:symlink-in-secrets',
    ])
    const { rmSync } = await import('node:fs')
    rmSync(join(secrets(), 'linked'))
    rmSync(join(secrets(), 'db', 'evil.age'))
    expect((await run(['scan'])).code).toBe(0)
    writeFileSync(join(secrets(), 'notes.txt'), 'the db password is hunter2\n')
    writeFileSync(join(secrets(), 'db', 'api.age'), 'not encrypted at all\n')
    writeFileSync(join(secrets(), 'blob.bin'), randomBytes(64))
    writeFileSync(join(secrets(), 'README.md'), '# secrets of this workspace\n')
    // A name that only looks like notes, and an age version line over plain text, are plain text.
    writeFileSync(join(secrets(), 'db', 'README.enc'), 'hunter2\n')
    writeFileSync(join(secrets(), 'db', 'x.age'), 'age-encryption.org/v1\nhunter2 plaintext\n')
    writeFileSync(join(secrets(), 'app.enc.yaml'), 'password: plain-for-now\n')
    expect((await run(['sops', 'encrypt', '--in-place', join(secrets(), 'app.enc.yaml')])).code).toBe(0)
    const found = await run(['scan'])
    expect(found.code).toBe(6)
    expect(found.json().map((f: { file: string; kind: string }) => `${f.file}:${f.kind}`)).toEqual([
      'secrets/blob.bin:plaintext-file',
      'secrets/db/api.age:plaintext-file',
      'secrets/db/README.enc:plaintext-file',
      'secrets/db/x.age:plaintext-file',
      'secrets/notes.txt:plaintext-file',
    ])
    expect(found.stdout).not.toContain('hunter2')
  })
})

describe('prov-kms decrypt of a truncated stream writes no plaintext it cannot authenticate', () => {
  const env = tempEnv('prov-kms-trunc-')
  const identity = join(env.env.XDG_CONFIG_HOME as string, 'prov', 'kms', 'identity.txt')
  const data = randomBytes(3 * 1024 * 1024 + 5)
  let truncated: Buffer
  let whole: Buffer
  const childEnv = () => ({ ...process.env, ...env.env }) as NodeJS.ProcessEnv
  /** Runs prov-kms with stdout going straight to a file opened with `flags` (what `>` and `>>` do). */
  const toFile = (args: string[], input: Buffer, path: string, flags: 'w' | 'a') => {
    const fd = openSync(path, flags)
    try {
      return spawnSync(process.execPath, [bin, ...args], { input, env: childEnv(), stdio: ['pipe', fd, 'pipe'] })
    } finally {
      closeSync(fd)
    }
  }

  beforeAll(async () => {
    expect((await kms(['keygen'], { env: env.env })).code).toBe(0)
    whole = spawnSync('age', ['-r', recipientOf(identity)], { input: data, maxBuffer: 1 << 26 }).stdout
    // Cut after 40 of 49 chunks, exactly between two chunks: every chunk left authenticates.
    const start = whole.indexOf('\n', whole.indexOf('\n--- ') + 1) + 1 + 16
    truncated = whole.subarray(0, start + 40 * (64 * 1024 + 16))
  })
  afterAll(() => env.cleanup())

  it('to a redirected file (> and >>): the file is cut back to what it held before; the age CLI leaves the prefix', () => {
    const fresh = join(env.root, 'fresh.bin')
    const result = toFile(['decrypt'], truncated, fresh, 'w')
    expect(result.status, String(result.stderr)).toBe(2)
    expect(String(result.stderr)).toMatch(/truncated/)
    expect(statSync(fresh).size).toBe(0)
    const appended = join(env.root, 'appended.bin')
    writeFileSync(appended, 'kept line\n')
    expect(toFile(['decrypt'], truncated, appended, 'a').status).toBe(2)
    expect(readFileSync(appended, 'utf8')).toBe('kept line\n')
    // For comparison, what the age CLI leaves behind (its authenticated chunks before the cut).
    const byAge = join(env.root, 'by-age.bin')
    const fd = openSync(byAge, 'w')
    try {
      expect(spawnSync('age', ['-d', '-i', identity], { input: truncated, stdio: ['pipe', fd, 'pipe'], maxBuffer: 1 << 26 }).status).not.toBe(0)
    } finally {
      closeSync(fd)
    }
    expect(statSync(byAge).size).toBeGreaterThan(0)
    // A whole file still goes through the same way.
    const ok = join(env.root, 'ok.bin')
    expect(toFile(['decrypt'], whole, ok, 'w').status).toBe(0)
    expect(readFileSync(ok).equals(data)).toBe(true)
  })

  it('--output-file replaces FILE only when the whole input authenticated; no temporary file stays', () => {
    const dir = join(env.root, 'out')
    mkdirSync(dir)
    const target = join(dir, 'restore.bin')
    writeFileSync(target, 'previous content\n', { mode: 0o640 })
    const prov = (args: string[], input: Buffer) => spawnSync(process.execPath, [bin, ...args], { input, env: childEnv(), maxBuffer: 1 << 26 })
    const failed = prov(['decrypt', '--output-file', target], truncated)
    expect(failed.status, String(failed.stderr)).toBe(2)
    expect(failed.stdout.length).toBe(0)
    expect(readFileSync(target, 'utf8')).toBe('previous content\n')
    const altered = Buffer.from(whole)
    altered[altered.length - 100] ^= 1
    expect(prov(['decrypt', '--output-file', target], altered).status).toBe(4)
    expect(readFileSync(target, 'utf8')).toBe('previous content\n')
    expect(readdirSync(dir)).toEqual(['restore.bin'])
    const ok = prov(['decrypt', '--output-file', target], whole)
    expect(ok.status, String(ok.stderr)).toBe(0)
    expect(ok.stdout.length).toBe(0)
    expect(readFileSync(target).equals(data)).toBe(true)
    expect(modeOf(target)).toBe(0o640)
    const fresh = join(dir, 'new.bin')
    expect(prov(['decrypt', '--output-file', fresh], whole).status).toBe(0)
    expect(modeOf(fresh)).toBe(0o600)
    // encrypt --output-file, then the same file decrypted onto itself.
    const sealed = join(dir, 'sealed.age')
    expect(prov(['encrypt', '--format', 'age', '--output-file', sealed], data).status).toBe(0)
    const inPlace = spawnSync('sh', ['-c', `"${process.execPath}" "${bin}" decrypt --output-file "${sealed}" < "${sealed}"`], { env: childEnv() })
    expect(inPlace.status, String(inPlace.stderr)).toBe(0)
    expect(readFileSync(sealed).equals(data)).toBe(true)
    expect(readdirSync(dir).sort()).toEqual(['new.bin', 'restore.bin', 'sealed.age'])
    const missing = prov(['decrypt', '--output-file', join(env.root, 'no/such/dir/x')], whole)
    expectOneErrorLine({ code: missing.status ?? -1, stderr: String(missing.stderr) }, 5, /no folder/)
    expect(existsSync(join(env.root, 'no'))).toBe(false)
  })
})
