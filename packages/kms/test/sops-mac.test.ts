// An independent check of the SOPS files prov-kms writes: the data key is unwrapped by the age
// CLI, every value is opened with node:crypto AES-256-GCM (32-byte IV, the key path `a:b:` as
// AAD), and the MAC is recomputed here the way sops does it (SHA-512 over the cleartext values in
// document order, upper-case hex, encrypted with `lastmodified` as AAD). None of prov-kms's own
// SOPS code is used, so a MAC prov-kms computes wrongly for itself on both sides is caught.
import { spawnSync } from 'node:child_process'
import { createHash } from 'node:crypto'
import { readFileSync, writeFileSync } from 'node:fs'
import { join } from 'node:path'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { parse as parseYaml } from 'yaml'
import { kms, tempEnv } from './helpers'
import { openValue, type Tree, walk } from './sops-check'

describe('SOPS files written by prov-kms, checked without prov-kms', () => {
  const env = tempEnv('prov-kms-sops-mac-')
  const identity = join(env.env.XDG_CONFIG_HOME as string, 'prov/kms/identity.txt')
  const run = (args: string[]) => kms(args, { env: env.env, cwd: env.root })

  beforeAll(async () => {
    expect((await run(['keygen'])).code).toBe(0)
  })
  afterAll(() => env.cleanup())

  it('values and MAC of a YAML file (nested maps, lists, numbers, booleans, an _unencrypted key) verify independently', async () => {
    const plain = {
      db: { user_unencrypted: 'admin', password: 'mac-check-pw-1', port: 5432, ratio: 0.25, tls: true },
      hosts: ['a', 'b', 'c'],
      nested: { deeper: { token: 'mac-check-token-2' } },
    }
    const source = join(env.root, 'app.yaml')
    writeFileSync(source, JSON.stringify(plain))
    const encrypted = await run(['sops', 'encrypt', '--input-type', 'yaml', source])
    expect(encrypted.code, encrypted.stderr).toBe(0)
    const doc = parseYaml(encrypted.stdout) as Tree & { sops: { age: Array<{ enc: string }>; lastmodified: string; mac: string } }
    const { sops, ...tree } = doc
    // The data key, unwrapped by the age CLI.
    const unwrapped = spawnSync('age', ['-d', '-i', identity], { input: sops.age[0].enc })
    expect(unwrapped.status, unwrapped.stderr.toString()).toBe(0)
    const dataKey = unwrapped.stdout
    expect(dataKey).toHaveLength(32)
    const mac = createHash('sha512')
    const opened = walk(tree, [], dataKey, mac, (k) => k.endsWith('_unencrypted'), false)
    expect(opened).toEqual(plain)
    expect(tree.db).toMatchObject({ user_unencrypted: 'admin' })
    const expected = mac.digest('hex').toUpperCase()
    expect(openValue(sops.mac, dataKey, sops.lastmodified)).toBe(expected)
    // And one value changed breaks the recomputed MAC here too (the check can fail).
    const altered = structuredClone(tree) as { db: Tree }
    altered.db.user_unencrypted = 'root'
    const otherMac = createHash('sha512')
    walk(altered, [], dataKey, otherMac, (k) => k.endsWith('_unencrypted'), false)
    expect(otherMac.digest('hex').toUpperCase()).not.toBe(expected)
    expect(readFileSync(source, 'utf8')).toBe(JSON.stringify(plain))
  })
})
