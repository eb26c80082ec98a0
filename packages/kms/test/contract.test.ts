// The JSON contract for every prov-kms command that changes files: --check previews and changes
// nothing (every file under the test root hashed before and after), destructive commands refuse
// without --yes off a terminal, --out is honoured by `sops decrypt`, --identity picks the key.
import { createHash } from 'node:crypto'
import { readdirSync, readFileSync, statSync, writeFileSync } from 'node:fs'
import { join } from 'node:path'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { parse as parseYaml } from 'yaml'
import { runOnTerminal } from '../../../tests/helpers/cli'
import { expectNoLeak, expectOneErrorLine, kms, recordingKms, tempWorkspace } from './helpers'

const SECRET = 'contract-secret-value-31'

/** Path -> sha256 of every file under root (links and folders by name). */
function snapshot(root: string): Record<string, string> {
  const out: Record<string, string> = {}
  const walk = (dir: string) => {
    for (const entry of readdirSync(dir, { withFileTypes: true })) {
      const full = join(dir, entry.name)
      if (entry.isDirectory()) {
        out[`${full}/`] = (statSync(full).mode & 0o777).toString(8)
        walk(full)
      } else out[full] = entry.isFile() ? createHash('sha256').update(readFileSync(full)).digest('hex') : 'link'
    }
  }
  walk(root)
  return out
}

describe('prov-kms: --check previews, destructive commands confirm, --out and --identity', () => {
  let ws: Awaited<ReturnType<typeof tempWorkspace>>
  const { results, run } = recordingKms(() => ws)
  let sopsFile = ''
  let plainFile = ''

  beforeAll(async () => {
    ws = await tempWorkspace('kmscontract')
    expect((await run(['keygen'])).code).toBe(0)
    expect((await run(['secret', 'set', 'db/password', SECRET])).code).toBe(0)
    sopsFile = join(ws.path, 'secrets', 'app.enc.yaml')
    writeFileSync(sopsFile, `password: ${SECRET}\nport: 5432\n`)
    expect((await run(['sops', 'encrypt', '--in-place', sopsFile])).code).toBe(0)
    plainFile = join(ws.root, 'plain.yaml')
    writeFileSync(plainFile, `token: ${SECRET}\n`)
  })
  afterAll(() => {
    expectNoLeak(
      results.filter((r) => !r.stdout.includes('"password"') && !r.stdout.includes('password:')),
      [SECRET],
      [],
    )
    ws.cleanup()
  })

  it('--check on every command that changes files prints a plan (exit 0) and changes nothing', async () => {
    const cases: Array<[string[], string]> = [
      [['secret', 'set', 'db/password', 'other-value'], 'replace'],
      [['secret', 'set', 'new/one', 'other-value'], 'store'],
      [['secret', 'rm', 'db/password'], 'remove'],
      [['keys', 'rotate'], 'rotate'],
      [['sops', 'rotate', sopsFile], 'rotate'],
      [['sops', 'encrypt', '--in-place', plainFile], 'encrypt'],
      [['sops', 'decrypt', '--in-place', sopsFile], 'decrypt'],
      [['encrypt', '--output-file', join(ws.root, 'out.age'), SECRET], 'write'],
    ]
    for (const [args, action] of cases) {
      const before = snapshot(ws.root)
      const result = await run([...args, '--check'])
      expect(result.code, `${args.join(' ')}: ${result.stderr}`).toBe(0)
      const plan = result.json()
      expect(plan[0], args.join(' ')).toMatchObject({ schema: 'prov.kms.plan/v1', action, check: true })
      expect(snapshot(ws.root), args.join(' ')).toEqual(before)
    }
    const keygen = await run(['keygen', '--check'])
    expectOneErrorLine(keygen, 2, /already exists/)
    expectOneErrorLine(await run(['sops', 'edit', sopsFile, '--check']), 2, /not supported with --check/)
    // A preview of a missing secret is the same error as the real thing.
    expectOneErrorLine(await run(['secret', 'rm', 'no/such', '--check']), 5, /no secret 'no\/such'/)
  })

  it('destructive commands refuse without --yes off a terminal (exit 2, one line) and change nothing', async () => {
    for (const args of [
      ['secret', 'rm', 'db/password'],
      ['keys', 'rotate'],
      ['sops', 'rotate', sopsFile],
    ]) {
      const before = snapshot(ws.root)
      expectOneErrorLine(await run(args), 2, /refusing to .* without --yes/)
      expect(snapshot(ws.root), args.join(' ')).toEqual(before)
    }
    expect((await run(['secret', 'set', 'tmp/x', 'value-x'])).code).toBe(0)
    const removed = await run(['secret', 'rm', 'tmp/x', '--yes'])
    expect(removed.code, removed.stderr).toBe(0)
    expect(removed.json()).toMatchObject({ name: 'tmp/x', removed: true })
  })

  it('on a terminal a destructive command asks one question (its own, naming what changes); yes proceeds', async () => {
    expect((await run(['secret', 'set', 'tmp/asked', 'value-asked'])).code).toBe(0)
    const answered = await runOnTerminal('prov-kms', ['secret', 'rm', 'tmp/asked'], { env: ws.env, cwd: ws.root, input: 'y\n' })
    expect(answered.code, answered.stdout).toBe(0)
    expect(answered.stdout.match(/\[y\/N\]/g) ?? [], answered.stdout).toHaveLength(1)
    expect(answered.stdout).toContain("delete secret 'tmp/asked'")
    expectOneErrorLine(await run(['secret', 'get', 'tmp/asked']), 5, /no secret/)
  })

  it('sops decrypt prints the file format by default and honours --out, -o, --output and PROV_OUTPUT__FORMAT', async () => {
    const plain = await run(['sops', 'decrypt', sopsFile])
    expect(parseYaml(plain.stdout)).toEqual({ password: SECRET, port: 5432 })
    expect(plain.stdout).toMatch(/^password: /)
    for (const flag of ['--out', '-o', '--output']) {
      const json = await run(['sops', 'decrypt', sopsFile, flag, 'json'])
      expect(json.code, json.stderr).toBe(0)
      expect(JSON.parse(json.stdout), flag).toEqual({ password: SECRET, port: 5432 })
    }
    const ndjson = await run(['sops', 'decrypt', sopsFile, '--out', 'ndjson'])
    expect(ndjson.lines()).toEqual([{ password: SECRET, port: 5432 }])
    const fromEnv = await run(['sops', 'decrypt', sopsFile], undefined, { PROV_OUTPUT__FORMAT: 'json' })
    expect(JSON.parse(fromEnv.stdout)).toEqual({ password: SECRET, port: 5432 })
    const yaml = await run(['sops', 'decrypt', sopsFile, '--out', 'yaml'])
    expect(parseYaml(yaml.stdout)).toEqual({ password: SECRET, port: 5432 })
  })

  it('--identity FILE decrypts with that file only (like age -i); a missing file is exit 5', async () => {
    const workspaceKey = join(ws.path, '.prov/kms/identity.txt')
    const ciphertext = (await run(['encrypt', SECRET])).stdout
    const ok = await run(['decrypt', '--identity', workspaceKey], ciphertext)
    expect(ok.code, ok.stderr).toBe(0)
    expect(ok.stdout).toBe(SECRET)
    const otherKey = join(ws.root, 'other-key.txt')
    const made = await kms(['keygen'], { env: { ...ws.env, PROV_WORKSPACE: undefined, PROV_KMS_IDENTITY: otherKey }, cwd: ws.root })
    expect(made.code, made.stderr).toBe(0)
    expectOneErrorLine(await run(['decrypt', '--identity', otherKey], ciphertext), 4)
    expectOneErrorLine(await run(['sops', 'decrypt', '--identity', otherKey, sopsFile]), 4)
    expectOneErrorLine(await run(['decrypt', '--identity', join(ws.root, 'missing.txt')], ciphertext), 5, /no identity file/)
  })
})
