// An independent reading of SOPS files for tests: values opened with node:crypto AES-256-GCM
// (32-byte IV, the key path `a:b:` as AAD) and the MAC recomputed the way sops does it (SHA-512
// over the cleartext values in document order, upper-case hex). No prov-kms code is used.
import { createDecipheriv, type createHash } from 'node:crypto'

export type Tree = Record<string, unknown>

export function openValue(text: string, key: Buffer, aad: string): string {
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
export function walk(node: unknown, path: string[], key: Buffer, mac: ReturnType<typeof createHash>, clear: (k: string) => boolean, inClear: boolean): unknown {
  if (Array.isArray(node)) return node.map((item) => walk(item, path, key, mac, clear, inClear))
  if (node && typeof node === 'object') {
    return Object.fromEntries(Object.entries(node as Tree).map(([k, v]) => [k, walk(v, [...path, k], key, mac, clear, inClear || clear(k))]))
  }
  // sops leaves empty strings as they are (nothing to encrypt; nothing for the MAC either).
  if (node === null || node === undefined || node === '') return node
  let value: unknown = node
  if (!inClear) {
    const type = /type:(\w+)\]$/.exec(String(node))?.[1]
    const plain = openValue(String(node), key, `${path.join(':')}:`)
    value = type === 'int' || type === 'float' ? Number(plain) : type === 'bool' ? plain === 'True' : plain
    mac.update(plain)
  } else mac.update(macBytes(value))
  return value
}
