// An independent check of the SOPS files prov-kms writes: the data key is unwrapped by the age
// CLI, every value is opened with node:crypto AES-256-GCM (32-byte IV, the key path `a:b:` as
// AAD), and the MAC is recomputed here the way sops does it (SHA-512 over the cleartext values in
// document order, upper-case hex, encrypted with `lastmodified` as AAD). None of prov-kms's own
// SOPS code is used, so a MAC prov-kms computes wrongly for itself on both sides is caught.
import { spawnSync } from 'node:child_process'
import { createDecipheriv, createHash } from 'node:crypto'
import { readFileSync, writeFileSync } from 'node:fs'
import { join } from 'node:path'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { parse as parseYaml } from 'yaml'
import { kms, tempEnv } from './helpers'

type Tree = Record<string, unknown>

function openValue(text: string, key: Buffer, aad: string): string {
  const match = /^ENC\[AES256_GCM,data:([^,]*),iv:([^,]+),tag:([^,]+),type:(str|int|float|bool)\]$/.exec(text)
  if (!match) throw new Error(`not a sops value: ${text}`)
  const [, data, iv, tag] = match
  const decipher = createDecipheriv('aes-256-gcm', key, Buffer.from(iv, 'base64'))
  decipher.setAAD(Buffer.from(aad, 'utf8'))
  decipher.setAuthTag(Buffer.from(tag, 'base64'))
  return Buffer.concat([decipher.update(Buffer.from(data, 'base64')), decipher.final()]).toString('utf8')
}

/** sops' byte form of a cleartext value for the MAC (Go: strconv, and "True"/"False" for booleans). */
function macBytes(value: unknown): string {
  if (typeof value === 'boolean') return value ? 'True' : 'False'
  return String(value)
}

/**
 * Walks the tree like sops: maps by key (the key joins the path), lists keep the parent's path;
 * returns the cleartext tree and feeds the MAC. `clear(key)` says which keys stay unencrypted.
 */
function walk(node: unknown, path: string[], key: Buffer, mac: ReturnType<typeof createHash>, clear: (k: string) => boolean, inClear: boolean): unknown {
  if (Array.isArray(node)) return node.map((item) => walk(item, path, key, mac, clear, inClear))
  if (node && typeof node === 'object') {
    return Object.fromEntries(Object.entries(node as Tree).map(([k, v]) => [k, walk(v, [...path, k], key, mac, clear, inClear || clear(k))]))
  }
  if (node === null || node === undefined) return node
  let value: unknown = node
  if (!inClear) {
    const type = /type:(\w+)\]$/.exec(String(node))?.[1]
    const plain = openValue(String(node), key, `${path.join(':')}:`)
    value = type === 'int' || type === 'float' ? Number(plain) : type === 'bool' ? plain === 'True' : plain
    mac.update(plain)
  } else mac.update(macBytes(value))
  return value
}

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
