// Files from the getsops/sops repository's own tests and examples (fixtures/getsops, MPL-2.0,
// licence kept). They are encrypted for sops' published functional-test PGP key, which prov-kms
// does not read, so the test unwraps each file's data key with gpg and that key's published
// secret half, wraps it again for a test age recipient with the age CLI and adds that recipient to
// the file's metadata. The values and the MAC stay exactly as sops wrote them (the MAC does not
// cover the key list): prov-kms must decrypt them and verify sops' MAC, and agree value for value
// with an independent reading (sops-check.ts).
import { spawnSync } from 'node:child_process'
import { createHash } from 'node:crypto'
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs'
import { join } from 'node:path'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { parse as parseYaml } from 'yaml'
import { fixtures, kms, recipientOf, tempEnv } from './helpers'
import { openValue, type Tree, walk } from './sops-check'

const upstream = join(fixtures, 'getsops')
const FUNCTIONAL_TEST_KEY = 'FBC7B9E2A4F9289AC0C1D4843D16CEE4A27381B4'

function required(result: ReturnType<typeof spawnSync>, what: string): Buffer {
  if (result.error || result.status !== 0) throw new Error(`${what} failed: ${result.error?.message ?? result.stderr?.toString()}`)
  return result.stdout as Buffer
}

describe('prov-kms sops decrypt of getsops/sops test files', () => {
  const env = tempEnv('prov-kms-sops-upstream-')
  const gnupg = join(env.root, 'gnupg')
  const identity = join(env.env.XDG_CONFIG_HOME as string, 'prov/kms/identity.txt')
  let recipient = ''
  const run = (args: string[]) => kms(args, { env: env.env, cwd: env.root })

  /** The file with an age entry for our recipient added to its sops metadata, and the data key. */
  const withAgeRecipient = (name: string): { text: string; dataKey: Buffer } => {
    const text = readFileSync(join(upstream, name), 'utf8')
    const format = name.endsWith('.json') ? 'json' : name.endsWith('.env') ? 'dotenv' : 'yaml'
    const metadata: Record<string, string> =
      format === 'dotenv'
        ? Object.fromEntries(
            text.split('\n').flatMap((l) => (l.startsWith('sops_pgp__list_0__map_') ? [[l.slice(22, l.indexOf('=')), l.slice(l.indexOf('=') + 1)]] : [])),
          )
        : (((format === 'json' ? JSON.parse(text) : parseYaml(text)).sops.pgp as Array<Record<string, string>>).find((p) => p.fp === FUNCTIONAL_TEST_KEY) ?? {})
    expect(metadata.fp, name).toBe(FUNCTIONAL_TEST_KEY)
    const armored = format === 'dotenv' ? metadata.enc.replace(/\\n/g, '\n') : metadata.enc
    const dataKey = required(
      spawnSync('gpg', ['--batch', '--quiet', '--decrypt'], { input: armored, env: { ...process.env, GNUPGHOME: gnupg } }),
      'gpg --decrypt',
    )
    expect(dataKey).toHaveLength(32)
    const wrapped = required(spawnSync('age', ['-a', '-r', recipient], { input: dataKey }), 'age -r')
      .toString('utf8')
      .trim()
    if (format === 'json')
      return { dataKey, text: text.replace(/"sops": \{/, `"sops": {\n\t\t"age": [${JSON.stringify({ recipient, enc: `${wrapped}\n` })}],`) }
    if (format === 'dotenv') {
      const escaped = `${wrapped}\n`.replace(/\n/g, '\\n')
      return { dataKey, text: `${text.trimEnd()}\nsops_age__list_0__map_recipient=${recipient}\nsops_age__list_0__map_enc=${escaped}\n` }
    }
    const lines = text.split('\n')
    const at = lines.indexOf('sops:')
    const indent = /^\s*/.exec(lines[at + 1])?.[0] ?? '    '
    const entry = [
      `${indent}age:`,
      `${indent}    - recipient: ${recipient}`,
      `${indent}      enc: |`,
      ...wrapped.split('\n').map((l) => `${indent}        ${l}`),
    ]
    const kept = lines.filter((l) => l !== `${indent}age: []`)
    kept.splice(kept.indexOf('sops:') + 1, 0, ...entry)
    return { dataKey, text: kept.join('\n') }
  }

  beforeAll(async () => {
    expect((await run(['keygen'])).code).toBe(0)
    recipient = recipientOf(identity)
    mkdirSync(gnupg, { mode: 0o700 })
    required(
      spawnSync('gpg', ['--batch', '--quiet', '--import', join(upstream, 'sops_functional_tests_key.asc')], { env: { ...process.env, GNUPGHOME: gnupg } }),
      'gpg --import',
    )
  })
  afterAll(() => {
    spawnSync('gpgconf', ['--kill', 'all'], { env: { ...process.env, GNUPGHOME: gnupg } })
    env.cleanup()
  })

  it.each([
    ['example.yaml', 'yaml'],
    ['comments.enc.yaml', 'yaml'],
    ['format.enc.yaml', 'yaml'],
    ['example.json', 'json'],
    ['format.enc.json', 'json'],
  ])('%s: decrypted with sops MAC verified, equal to an independent reading', async (name, type) => {
    const { text, dataKey } = withAgeRecipient(name)
    const path = join(env.root, name)
    writeFileSync(path, text)
    const decrypted = await run(['sops', 'decrypt', path, '--out', 'json'])
    expect(decrypted.code, decrypted.stderr).toBe(0)
    const doc = (type === 'json' ? JSON.parse(text) : parseYaml(text)) as Tree & { sops: { lastmodified: string; mac: string; unencrypted_suffix?: string } }
    const { sops, ...tree } = doc
    const suffix = sops.unencrypted_suffix ?? '_unencrypted'
    const mac = createHash('sha512')
    const independent = walk(tree, [], dataKey, mac, (k) => k.endsWith(suffix), false)
    expect(decrypted.json()).toEqual(independent)
    // sops' own MAC, recomputed independently, matches: the reading above is the one sops made.
    expect(openValue(sops.mac, dataKey, sops.lastmodified)).toBe(mac.digest('hex').toUpperCase())
    // An altered value is refused (exit 4), so the verification above is real.
    const tampered = text.replace(
      /((?:: |")ENC\[AES256_GCM,data:)([A-Za-z0-9+/]{4})/,
      (_, lead: string, head: string) => `${lead}${head === 'AAAA' ? 'BBBB' : 'AAAA'}`,
    )
    expect(tampered).not.toBe(text)
    writeFileSync(path, tampered)
    const refused = await run(['sops', 'decrypt', path])
    expect(refused.code, refused.stderr).toBe(4)
  })

  it('comments.enc.yaml decrypts to the cleartext file the sops tests start from; format.enc.env (dotenv) too', async () => {
    const { text } = withAgeRecipient('comments.enc.yaml')
    const path = join(env.root, 'comments-check.enc.yaml')
    writeFileSync(path, text)
    const decrypted = await run(['sops', 'decrypt', path])
    expect(decrypted.code, decrypted.stderr).toBe(0)
    expect(parseYaml(decrypted.stdout)).toEqual(parseYaml(readFileSync(join(upstream, 'comments.yaml'), 'utf8')))
    const dotenv = withAgeRecipient('format.enc.env')
    const envPath = join(env.root, 'format.enc.env')
    writeFileSync(envPath, dotenv.text)
    const opened = await run(['sops', 'decrypt', envPath])
    expect(opened.code, opened.stderr).toBe(0)
    const value = /^foo =(ENC\[.*\])$/m.exec(dotenv.text)?.[1] as string
    expect(opened.stdout).toBe(`foo =${openValue(value, dotenv.dataKey, 'foo :')}\n`)
  })
})
