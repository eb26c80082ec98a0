import { spawnSync } from 'node:child_process'
import { join } from 'node:path'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { nuPath } from '../../../tests/helpers/tools'
import { expectNoLeak, expectOneErrorLine, kms, tempEnv } from './helpers'

const repo = join(import.meta.dirname, '../../..')
const bin = join(repo, 'bin/prov-kms')
const nu = nuPath()
const PASSWORDS = ['pw-alpha-0001', 'pw-bravo-0002', 'pw-charlie-003']

describe('prov-kms encrypt/decrypt --field (record streams)', () => {
  const env = tempEnv('prov-kms-fields-')
  const results: Awaited<ReturnType<typeof kms>>[] = []
  const run = async (args: string[], input?: string) => {
    const result = await kms(args, { env: env.env, input, cwd: env.root })
    results.push(result)
    return result
  }
  const records = PASSWORDS.map((password, i) => ({ schema: 'prov.server/v1', name: `web-${i}`, ssh: { user: 'root', password }, password }))
  const shellEnv = { ...process.env, ...env.env } as NodeJS.ProcessEnv

  beforeAll(async () => {
    expect((await run(['keygen'])).code).toBe(0)
  })
  afterAll(() => {
    expectNoLeak(results, PASSWORDS, [env.root])
    env.cleanup()
  })

  it('NDJSON in -> NDJSON out: one field (dotted path) encrypted, the rest passed through', async () => {
    const ndjson = records.map((r) => JSON.stringify(r)).join('\n')
    const encrypted = await run(['encrypt', '--field', 'ssh.password', '--field', 'password'], `${ndjson}\n`)
    expect(encrypted.code, encrypted.stderr).toBe(0)
    const lines = encrypted.lines()
    expect(lines).toHaveLength(3)
    for (const [i, line] of lines.entries()) {
      expect(line.name).toBe(`web-${i}`)
      expect(line.ssh.user).toBe('root')
      expect(line.ssh.password).toMatch(/^prov:age:v1:/)
      expect(line.password).toMatch(/^prov:age:v1:/)
    }
    for (const p of PASSWORDS) expect(encrypted.stdout).not.toContain(p)
    const decrypted = await run(['decrypt', '--field', 'ssh.password,password'], encrypted.stdout)
    expect(decrypted.code, decrypted.stderr).toBe(0)
    expect(decrypted.lines()).toEqual(records)
  })

  it('a JSON array stays an array, one pretty object stays one object; nulls and secret refs pass', async () => {
    const array = await run(
      ['encrypt', '--field', 'password'],
      JSON.stringify([...records, { name: 'x', password: null }, { name: 'y', password: { secret: 'db/pw' } }]),
    )
    const list = array.json()
    expect(Array.isArray(list)).toBe(true)
    expect(list[3].password).toBeNull()
    expect(list[4].password).toEqual({ secret: 'db/pw' })
    const back = await run(['decrypt', '--field', 'password'], array.stdout)
    expect(
      back
        .json()
        .slice(0, 3)
        .map((r: { password: string }) => r.password),
    ).toEqual(PASSWORDS)
    const single = await run(['encrypt', '--field', 'password'], JSON.stringify(records[0], null, 2))
    expect(single.json().password).toMatch(/^prov:age:v1:/)
    expect((await run(['decrypt', '--field', 'password'], single.stdout)).json()).toEqual(records[0])
  })

  it('a whole object field (--field ssh) is encrypted as one value and restored as an object', async () => {
    const encrypted = await run(['encrypt', '--field', 'ssh'], records.map((r) => JSON.stringify(r)).join('\n'))
    const lines = encrypted.lines()
    expect(lines.every((r: { ssh: string }) => typeof r.ssh === 'string' && r.ssh.startsWith('prov:age:v1:'))).toBe(true)
    expect(encrypted.stdout).not.toContain('"user"')
    const back = await run(['decrypt', '--field', 'ssh'], encrypted.stdout)
    expect(back.lines()).toEqual(records)
  })

  it('works in a bash pipeline with jq', () => {
    const script = `printf '%s\\n' '${JSON.stringify(records[0])}' '${JSON.stringify(records[1])}' | "${process.execPath}" "${bin}" encrypt --field password | "${process.execPath}" "${bin}" decrypt --field password | jq -r .password`
    const out = spawnSync('bash', ['-c', script], { env: shellEnv, encoding: 'utf8' })
    expect(out.status, out.stderr).toBe(0)
    expect(out.stdout.trim().split('\n')).toEqual(PASSWORDS.slice(0, 2))
  })

  it('works in a real nu pipeline (from json)', () => {
    const data = JSON.stringify(records)
    const script = `'${data}' | ^${process.execPath} ${bin} encrypt --field password | ^${process.execPath} ${bin} decrypt --field password | from json | get password | to json -r`
    const out = spawnSync(nu, ['--no-config-file', '-c', script], { env: shellEnv, encoding: 'utf8' })
    expect(out.status, out.stderr).toBe(0)
    expect(JSON.parse(out.stdout)).toEqual(PASSWORDS)
    const ssh = `'${data}' | from json | to json | ^${process.execPath} ${bin} encrypt --field ssh | from json | each {|r| $r.ssh | str starts-with 'prov:age:v1:'} | all {|x| $x} | to json -r`
    const out3 = spawnSync(nu, ['--no-config-file', '-c', ssh], { env: shellEnv, encoding: 'utf8' })
    expect(out3.status, out3.stderr).toBe(0)
    expect(out3.stdout.trim()).toBe('true')
    const onlyEncrypted = `'${data}' | ^${process.execPath} ${bin} encrypt --field password | from json | get password | str starts-with 'prov:age:v1:' | all {|x| $x} | to json -r`
    const out2 = spawnSync(nu, ['--no-config-file', '-c', onlyEncrypted], { env: shellEnv, encoding: 'utf8' })
    expect(out2.status, out2.stderr).toBe(0)
    expect(out2.stdout.trim()).toBe('true')
  })

  it('bad record input: malformed JSON, plain text, non-objects are exit 2; tampered fields exit 4', async () => {
    expectOneErrorLine(await run(['encrypt', '--field', 'password'], '{"password": "x"\n{broken'), 2, /stdin/)
    expectOneErrorLine(await run(['encrypt', '--field', 'password'], 'just some text'), 2, /JSON or NDJSON/)
    expectOneErrorLine(await run(['encrypt', '--field', 'password'], '[1, 2]'), 2, /not an object/)
    expectOneErrorLine(await run(['encrypt', '--field', 'a..b'], '{}'), 2, /bad field path/)
    const latin1 = await kms(['encrypt', '--field', 'password'], {
      env: env.env,
      input: Buffer.from([0x7b, 0x22, 0x70, 0x22, 0x3a, 0x22, 0xe9, 0x22, 0x7d, 0x0a]),
    })
    expectOneErrorLine(latin1, 2, /UTF-8/)
    expectOneErrorLine(await run(['encrypt', '--field', 'password', 'DATA'], '{}'), 2)
    const encrypted = (await run(['encrypt', '--field', 'password'], JSON.stringify(records[0]))).json()
    encrypted.password = encrypted.password.slice(0, -8) + (encrypted.password.endsWith('AAAAAAAA') ? 'BBBBBBBB' : 'AAAAAAAA')
    const tampered = await run(['decrypt', '--field', 'password'], JSON.stringify(encrypted))
    expect(tampered.code).toBe(4)
  })
})
