import { chmodSync, copyFileSync, existsSync, mkdirSync, readdirSync, readFileSync, statSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { decryptSops } from 'sops-age'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { parse as parseYaml } from 'yaml'
import { expectNoLeak, expectOneErrorLine, fixtures, kms, recipientOf, tempEnv } from './helpers'

const SECRETS = ['hunter2-database-pw', 'sk-test-api-token-42']
const sopsFixtures = join(fixtures, 'sops')

describe('prov-kms sops (SOPS-compatible files)', () => {
  const env = tempEnv('prov-kms-sops-')
  const identity = join(env.env.XDG_CONFIG_HOME as string, 'prov/kms/identity.txt')
  let secretKey = ''
  const results: Awaited<ReturnType<typeof kms>>[] = []
  const run = async (args: string[], extra: Record<string, string | undefined> = {}, input?: string) => {
    const result = await kms(args, { env: { ...env.env, ...extra }, cwd: env.root, input })
    results.push(result)
    return result
  }
  const file = (name: string, text: string) => {
    const path = join(env.root, name)
    writeFileSync(path, text)
    return path
  }

  beforeAll(async () => {
    expect((await run(['keygen'])).code).toBe(0)
    secretKey = readFileSync(identity, 'utf8')
      .split('\n')
      .find((l) => l.startsWith('AGE-SECRET-KEY-')) as string
  })
  afterAll(() => {
    expectNoLeak(results, SECRETS, [env.root])
    env.cleanup()
  })

  it('decrypts files written by the real sops (YAML, JSON, dotenv), verifying their MAC', async () => {
    const key = join(env.root, 'sops-key.txt')
    copyFileSync(join(sopsFixtures, 'key.txt'), key)
    chmodSync(key, 0o600) // a fresh clone does not keep the fixture's 0600
    const extra = { SOPS_AGE_KEY_FILE: key }
    const yaml = await run(['sops', 'decrypt', join(sopsFixtures, 'secret.enc.yaml')], extra)
    expect(yaml.code, yaml.stderr).toBe(0)
    expect(parseYaml(yaml.stdout)).toEqual({
      secret: 'this is a secret',
      string: 'string',
      int: 7,
      float: 3.14,
      boolean: true,
      complex: { value: 'this is a secret', array: ['one', 'two', 'three'] },
    })
    const json = await run(['sops', 'decrypt', join(sopsFixtures, 'secret.enc.json')], extra)
    expect(json.code, json.stderr).toBe(0)
    expect(json.json()).toMatchObject({ secret: 'this is a secret', int: 7, float: 3.14, boolean: true })
    const dotenv = await run(['sops', 'decrypt', join(sopsFixtures, 'secret.enc.env')], extra)
    expect(dotenv.code, dotenv.stderr).toBe(0)
    expect(dotenv.stdout).toBe('secret=this is a secret\nanother_secret=7\n')
  })

  it('writes YAML, JSON and dotenv files that the independent sops-age implementation decrypts', async () => {
    const plain = {
      db: { user_unencrypted: 'admin', password: SECRETS[0], port: 5432, ratio: 0.25, tls: true },
      api: { token: SECRETS[1] },
      hosts: ['a', 'b'],
      empty: '',
      nothing: null,
    }
    const cases: Array<[string, string, 'yaml' | 'json' | 'env']> = [
      [
        'plain.yaml',
        `db:\n  user_unencrypted: admin\n  password: ${SECRETS[0]}\n  port: 5432\n  ratio: 0.25\n  tls: true\napi:\n  token: ${SECRETS[1]}\nhosts:\n  - a\n  - b\nempty: ""\nnothing: null\n`,
        'yaml',
      ],
      ['plain.json', JSON.stringify(plain, null, 2), 'json'],
      ['plain.env', `DB_PASSWORD=${SECRETS[0]}\nAPI_TOKEN=${SECRETS[1]}\nMULTI=line1\\nline2\n`, 'env'],
    ]
    for (const [name, text, type] of cases) {
      const path = file(name, text)
      const encrypted = await run(['sops', 'encrypt', path])
      expect(encrypted.code, encrypted.stderr).toBe(0)
      for (const s of SECRETS) expect(encrypted.stdout).not.toContain(s)
      expect(encrypted.stdout).toContain('ENC[AES256_GCM,data:')
      expect(encrypted.stdout).toContain(recipientOf(identity))
      const oracle = await decryptSops(encrypted.stdout, { secretKey, fileType: type })
      if (type === 'env') expect(oracle).toEqual({ DB_PASSWORD: SECRETS[0], API_TOKEN: SECRETS[1], MULTI: 'line1\nline2' })
      else expect(oracle).toEqual(plain)
      // and back through prov-kms (MAC checked)
      const encPath = file(`enc.${name}`, encrypted.stdout)
      const decrypted = await run(['sops', 'decrypt', encPath])
      expect(decrypted.code, decrypted.stderr).toBe(0)
      if (type === 'yaml') expect(parseYaml(decrypted.stdout)).toEqual(plain)
      if (type === 'json') expect(decrypted.json()).toEqual(plain)
    }
    const yamlOut = readFileSync(join(env.root, 'enc.plain.yaml'), 'utf8')
    expect(yamlOut).toContain('user_unencrypted: admin')
    expect(yamlOut).toMatch(/lastmodified: "?\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ/)
    expect(yamlOut).toMatch(/mac: ENC\[AES256_GCM,/)
  })

  it('encrypt --out json (or yaml) writes the SOPS file in that format, like sops --output-type', async () => {
    const path = file('out-type.yaml', `db:\n  password: ${SECRETS[0]}\n  port: 5432\n`)
    const asJson = await run(['sops', 'encrypt', path, '--out', 'json'])
    expect(asJson.code, asJson.stderr).toBe(0)
    const document = asJson.json() as { db: { password: string }; sops: { mac: string } }
    expect(document.db.password).toMatch(/^ENC\[AES256_GCM,data:/)
    expect(document.sops.mac).toMatch(/^ENC\[AES256_GCM,/)
    expect(await decryptSops(asJson.stdout, { secretKey, fileType: 'json' })).toEqual({ db: { password: SECRETS[0], port: 5432 } })
    const back = await run(['sops', 'decrypt', file('out-type.enc.json', asJson.stdout)])
    expect(back.json()).toEqual({ db: { password: SECRETS[0], port: 5432 } })
    const fromJson = await run(['sops', 'encrypt', file('out-type.json', JSON.stringify({ token: SECRETS[1] })), '--out', 'yaml'])
    expect(fromJson.code, fromJson.stderr).toBe(0)
    expect(await decryptSops(fromJson.stdout, { secretKey, fileType: 'yaml' })).toEqual({ token: SECRETS[1] })
  })

  it('tampering with one value, removing one, or the MAC makes decrypt fail with exit 4', async () => {
    const path = file('tamper.yaml', `a: ${SECRETS[0]}\nb: two\nc: three\n`)
    const encrypted = (await run(['sops', 'encrypt', path])).stdout
    const swapped = encrypted.replace(/^a: (ENC\[[^\n]+)\nb: (ENC\[[^\n]+)$/m, 'a: $2\nb: $1')
    expect(swapped).not.toBe(encrypted)
    expectOneErrorLine(await run(['sops', 'decrypt', file('t1.yaml', swapped)]), 4, /altered|integrity/)
    const removed = encrypted.replace(/^c: ENC\[[^\n]+\n/m, '')
    expectOneErrorLine(await run(['sops', 'decrypt', file('t2.yaml', removed)]), 4, /MAC mismatch/)
    const plainInserted = encrypted.replace(/^c: ENC\[[^\n]+$/m, 'c: three')
    expectOneErrorLine(await run(['sops', 'decrypt', file('t3.yaml', plainInserted)]), 2)
    const data = /^b: ENC\[AES256_GCM,data:([^,]+),/m.exec(encrypted)?.[1] as string
    const flipped = encrypted.replace(`data:${data},`, `data:${Buffer.from(Buffer.from(data, 'base64').map((x) => x ^ 1)).toString('base64')},`)
    expectOneErrorLine(await run(['sops', 'decrypt', file('t4.yaml', flipped)]), 4)
    const lastmod = encrypted.replace(/lastmodified: "?([0-9T:-]+)Z"?/, 'lastmodified: "2001-01-01T00:00:00Z"')
    expectOneErrorLine(await run(['sops', 'decrypt', file('t5.yaml', lastmod)]), 4, /MAC/)
    const fixture = readFileSync(join(sopsFixtures, 'secret.enc.yaml'), 'utf8').replace(
      /^string: .*$/m,
      'string: ENC[AES256_GCM,data:LNzAFGse,iv:g4HM7I6aFegw57M+BOiVAV5WncBM6MHW2UECAnFkjRo=,tag:PTFT1DrCt9SiLlspc14oBQ==,type:int]',
    )
    const key = join(env.root, 'sops-key.txt')
    expect((await run(['sops', 'decrypt', file('t6.yaml', fixture)], { SOPS_AGE_KEY_FILE: key })).code).not.toBe(0)
  })

  it('no matching recipient is exit 4 with the recipients named', async () => {
    const path = file('foreign.yaml', `token: ${SECRETS[1]}\n`)
    const foreign = await run(['sops', 'encrypt', path, '--age', 'age1je6kjhzuhdjy3fqptpttxjh5k8q46vygzlgtpuq3030c947pc5tqz9dqvr'])
    expect(foreign.code, foreign.stderr).toBe(0)
    const refused = await run(['sops', 'decrypt', file('foreign.enc.yaml', foreign.stdout)])
    expectOneErrorLine(refused, 4, /no matching recipient.*age1je6kjhzuhdjy3fqptpttxjh5k8q46vygzlgtpuq3030c947pc5tqz9dqvr/)
  })

  it('honours encrypted_regex / unencrypted_suffix and .sops.yaml creation rules', async () => {
    const sub = join(env.root, 'repo', 'secrets')
    mkdirSync(sub, { recursive: true })
    const other = 'age1je6kjhzuhdjy3fqptpttxjh5k8q46vygzlgtpuq3030c947pc5tqz9dqvr'
    writeFileSync(
      join(env.root, 'repo', '.sops.yaml'),
      `creation_rules:\n  - path_regex: secrets/.*\\.enc\\.yaml$\n    encrypted_regex: ^(password|token)$\n    age: >-\n      ${recipientOf(identity)},\n      ${other}\n  - path_regex: .*\n    age: ${other}\n`,
    )
    const path = join(sub, 'app.enc.yaml')
    writeFileSync(path, `name: app\npassword: ${SECRETS[0]}\nnested:\n  token: ${SECRETS[1]}\n  host: db.local\n`)
    const encrypted = await run(['sops', 'encrypt', '--in-place', path])
    expect(encrypted.code, encrypted.stderr).toBe(0)
    const text = readFileSync(path, 'utf8')
    expect(text).toContain('name: app')
    expect(text).toContain('host: db.local')
    expect(text).toMatch(/password: ENC\[/)
    expect(text).toMatch(/token: ENC\[/)
    expect(text).toContain('encrypted_regex: ^(password|token)$')
    expect(text).toContain(other)
    expect(await decryptSops(text, { secretKey, fileType: 'yaml' })).toEqual({ name: 'app', password: SECRETS[0], nested: { token: SECRETS[1], host: db() } })
    const back = await run(['sops', 'decrypt', path])
    expect(parseYaml(back.stdout).nested.token).toBe(SECRETS[1])
    const flagged = file('flags.yaml', `keep_unencrypted: visible\nsecret: ${SECRETS[0]}\n`)
    const out = await run(['sops', 'encrypt', flagged, '--unencrypted-suffix', '_unencrypted'])
    expect(out.stdout).toContain('keep_unencrypted: visible')
    // second rule: matches everything else in the repo, encrypted only for the other key
    const elsewhere = join(env.root, 'repo', 'other.yaml')
    writeFileSync(elsewhere, `a: ${SECRETS[0]}\n`)
    const forOther = await run(['sops', 'encrypt', elsewhere])
    expect(forOther.stdout).toContain(other)
    expect(forOther.stdout).not.toContain(recipientOf(identity))
    writeFileSync(join(env.root, 'repo', '.sops.yaml'), 'creation_rules: [: bad')
    expectOneErrorLine(await run(['sops', 'encrypt', elsewhere]), 2, /sops\.yaml/)
  })

  it('edit opens $EDITOR on a temp file in a 0700 folder, re-encrypts on save, wipes the temp file', async () => {
    const path = file('edit.yaml', `password: ${SECRETS[0]}\n`)
    expect((await run(['sops', 'encrypt', '--in-place', path])).code).toBe(0)
    const before = readFileSync(path, 'utf8')
    const log = join(env.root, 'editor.log')
    const editor = join(env.root, 'editor.sh')
    writeFileSync(
      editor,
      `#!/bin/sh\nset -e\nd=$(dirname "$1")\nstat -c '%a' "$d" > "${log}"\nstat -c '%a' "$1" >> "${log}"\necho "$1" >> "${log}"\nsed -i 's/^password: .*/password: changed-by-editor/' "$1"\necho 'added: new-value' >> "$1"\n`,
      { mode: 0o700 },
    )
    const edited = await run(['sops', 'edit', path], { EDITOR: editor })
    expect(edited.code, edited.stderr).toBe(0)
    const [dirMode, fileMode, tempPath] = readFileSync(log, 'utf8').trim().split('\n')
    expect(dirMode).toBe('700')
    expect(fileMode).toBe('600')
    expect(existsSync(tempPath)).toBe(false)
    expect(readdirSync(tmpdir()).filter((n) => tempPath.includes(n))).toEqual([])
    const after = readFileSync(path, 'utf8')
    expect(after).not.toBe(before)
    expect(after).not.toContain('changed-by-editor')
    // The data key and recipients are kept.
    expect(/recipient: (\S+)/.exec(after)?.[1]).toBe(/recipient: (\S+)/.exec(before)?.[1])
    expect(await decryptSops(after, { secretKey, fileType: 'yaml' })).toEqual({ password: 'changed-by-editor', added: 'new-value' })
    // An editor that changes nothing leaves the file alone; a failing editor too.
    const noop = join(env.root, 'noop.sh')
    writeFileSync(noop, '#!/bin/sh\nexit 0\n', { mode: 0o700 })
    expect((await run(['sops', 'edit', path], { EDITOR: noop })).code).toBe(0)
    expect(readFileSync(path, 'utf8')).toBe(after)
    const failing = join(env.root, 'fail.sh')
    writeFileSync(failing, '#!/bin/sh\nexit 3\n', { mode: 0o700 })
    expectOneErrorLine(await run(['sops', 'edit', path], { EDITOR: failing }), 1, /editor/)
    expect(readFileSync(path, 'utf8')).toBe(after)
  })

  it('rotate makes a new data key and can add/remove recipients', async () => {
    const path = file('rotate.json', JSON.stringify({ token: SECRETS[1] }))
    expect((await run(['sops', 'encrypt', '--in-place', path])).code).toBe(0)
    const before = JSON.parse(readFileSync(path, 'utf8'))
    const other = 'age1je6kjhzuhdjy3fqptpttxjh5k8q46vygzlgtpuq3030c947pc5tqz9dqvr'
    const rotated = await run(['sops', 'rotate', path, '--add-age', other, '--yes'])
    expect(rotated.code, rotated.stderr).toBe(0)
    const after = JSON.parse(readFileSync(path, 'utf8'))
    expect(after.token).not.toBe(before.token)
    expect(after.sops.age.map((a: { recipient: string }) => a.recipient)).toEqual([recipientOf(identity), other])
    expect(await decryptSops(JSON.stringify(after), { secretKey, fileType: 'json' })).toEqual({ token: SECRETS[1] })
    expect(statSync(path).mode & 0o777).toBe(0o644)
  })

  it('bad input: missing file, unknown type, malformed YAML/JSON, already encrypted, not encrypted', async () => {
    expectOneErrorLine(await run(['sops', 'decrypt', join(env.root, 'missing.yaml')]), 5)
    expectOneErrorLine(await run(['sops', 'encrypt', file('x.txt', 'a: 1\n')]), 2, /format/)
    expectOneErrorLine(await run(['sops', 'encrypt', file('bad.yaml', 'a: [1\n')]), 2, /not valid YAML/)
    expectOneErrorLine(await run(['sops', 'encrypt', file('bad.json', '{"a": ')]), 2, /not valid JSON/)
    expectOneErrorLine(await run(['sops', 'encrypt', file('bad.env', 'NOEQUALS\n')]), 2, /dotenv/)
    expectOneErrorLine(await run(['sops', 'encrypt', file('list.yaml', '- a\n- b\n')]), 2, /mapping/)
    const enc = (await run(['sops', 'encrypt', file('once.yaml', 'a: b\n')])).stdout
    expectOneErrorLine(await run(['sops', 'encrypt', file('twice.yaml', enc)]), 2, /already encrypted/)
    expectOneErrorLine(await run(['sops', 'decrypt', file('plain2.yaml', 'a: b\n')]), 2, /not encrypted/)
    writeFileSync(join(env.root, 'latin1.yaml'), Buffer.from([0x61, 0x3a, 0x20, 0xe9, 0x0a]))
    expectOneErrorLine(await run(['sops', 'encrypt', join(env.root, 'latin1.yaml')]), 2, /UTF-8/)
  })
})

function db(): string {
  return 'db.local'
}
