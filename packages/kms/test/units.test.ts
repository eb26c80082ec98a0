// In-process property tests of the parsers and formats (fast-check): random and truncated input
// gives a ProvError with a documented exit code, never a crash or wrong data.

import { hkdfSync, randomBytes } from 'node:crypto'
import { readFileSync } from 'node:fs'
import fc from 'fast-check'
import { describe, expect, it } from 'vitest'
import { isProvError } from '../../core/src/errors'
import { bech32Decode } from '../src/age/bech32'
import { ageKeys, openAgeBuffer, sealAgeBuffer } from '../src/age/file'
import { X25519Identity } from '../src/age/x25519'
import { classify } from '../src/backends/registry'
import { canonicalContext, parseContext } from '../src/lib/context'
import { chunkKey, openEnvelope, readWrappedKey, sealBuffer, sealEnvelope } from '../src/lib/envelope'
import { ByteReader, base64Decode, bufferSource } from '../src/lib/io'
import { decryptScalar, encryptScalar, formatFloat } from '../src/sops/cipher'
import { flattenMetadata, parseTree, unflattenMetadata } from '../src/sops/formats'
import { decryptTree, encryptTree, otherMetadataForNewKey } from '../src/sops/index'

const key = { key: Buffer.alloc(32, 7), wrapped: Buffer.from('wrapped-data-key') }

async function open(body: Buffer, aad: Buffer): Promise<Buffer> {
  const reader = new ByteReader(bufferSource(body))
  await readWrappedKey(reader)
  const parts: Buffer[] = []
  for await (const chunk of openEnvelope(reader, key.key, aad)) parts.push(Buffer.from(chunk))
  return Buffer.concat(parts)
}

async function seal(data: Buffer, aad: Buffer): Promise<Buffer> {
  const parts: Buffer[] = []
  for await (const chunk of sealEnvelope(bufferSource(data), key, aad)) parts.push(Buffer.from(chunk))
  return Buffer.concat(parts)
}

const contextArb = fc.dictionary(fc.stringMatching(/^[a-z][a-z0-9_]{0,8}$/), fc.stringMatching(/^[a-zA-Z0-9 ._-]{0,12}$/), { maxKeys: 4 })

describe('envelope', () => {
  it('round-trips any bytes with any context; streamed and whole-buffer sealing agree on format', async () => {
    await fc.assert(
      fc.asyncProperty(fc.uint8Array({ maxLength: 3000 }), contextArb, async (bytes, context) => {
        const aad = canonicalContext(context)
        const data = Buffer.from(bytes)
        expect(await open(await seal(data, aad), aad)).toEqual(data)
        expect(await open(sealBuffer(data, key, aad), aad)).toEqual(data)
      }),
      { numRuns: 60 },
    )
  })

  it('multi-chunk bodies: every truncation or bit flip is refused with exit 2 or 4', async () => {
    const data = Buffer.alloc(150_000, 3)
    const aad = canonicalContext({ env: 'prod' })
    const body = await seal(data, aad)
    await fc.assert(
      fc.asyncProperty(fc.integer({ min: 0, max: body.length - 1 }), fc.boolean(), async (at, truncate) => {
        const broken = truncate ? body.subarray(0, at) : Buffer.from(body.map((b, i) => (i === at ? b ^ 0x40 : b)))
        try {
          const out = await open(broken, aad)
          // Flipping a byte inside the wrapped key is not detected here (the backend checks it).
          expect(truncate ? false : at >= 4 && at < 4 + key.wrapped.length).toBe(true)
          expect(out).toEqual(data)
        } catch (error) {
          expect(isProvError(error), String(error)).toBe(true)
          expect([2, 4]).toContain((error as { code: number }).code)
        }
      }),
      { numRuns: 40 },
    )
  })

  it('the chunk key is HKDF-SHA256 (RFC 5869)', () => {
    const dataKey = Buffer.alloc(32, 5)
    const salt = Buffer.alloc(16, 6)
    expect(chunkKey(dataKey, salt)).toEqual(Buffer.from(hkdfSync('sha256', dataKey, salt, 'prov-kms/v1 payload', 32)))
  })

  it('another context is exit 4', async () => {
    const body = await seal(Buffer.from('x'), canonicalContext({ a: '1' }))
    await expect(open(body, canonicalContext({ a: '2' }))).rejects.toMatchObject({ code: 4 })
    await expect(open(body, canonicalContext({}))).rejects.toMatchObject({ code: 4 })
  })
})

describe('parsers', () => {
  it('parseContext: canonical form ignores order; junk is exit 2', () => {
    expect(canonicalContext(parseContext('b=2,a=1'))).toEqual(canonicalContext(parseContext(['a=1', 'b=2'])))
    fc.assert(
      fc.property(fc.string({ maxLength: 40 }), (text) => {
        try {
          parseContext(text)
        } catch (error) {
          expect((error as { code: number }).code).toBe(2)
        }
      }),
    )
  })

  it('classify: random text is a known kind or exit 2', () => {
    fc.assert(
      fc.property(fc.string({ maxLength: 80 }), (text) => {
        try {
          classify(Buffer.from(text))
        } catch (error) {
          expect((error as { code: number }).code).toBe(2)
        }
      }),
    )
    expect(classify(Buffer.from('vault:v12:abc'))).toMatchObject({ kind: 'direct', spec: { name: 'vault' } })
    expect(classify(Buffer.from('  prov:age:v1\nxyz'))).toMatchObject({ kind: 'envelope', binary: true, spec: { name: 'age' } })
    expect(classify(Buffer.from('age-encryption.org/v1\n'))).toMatchObject({ kind: 'file', spec: { name: 'age' } })
    expect(() => classify(Buffer.from('prov:age:v9:abc'))).toThrow(/unknown ciphertext prefix/)
  })

  it('base64Decode: random text decodes or is exit 2', async () => {
    await fc.assert(
      fc.asyncProperty(fc.string({ maxLength: 60 }), async (text) => {
        try {
          for await (const _ of base64Decode(bufferSource(Buffer.from(text)))) {
            // drain
          }
        } catch (error) {
          expect((error as { code: number }).code).toBe(2)
        }
      }),
    )
  })

  it('SOPS file parsers: random and truncated YAML/JSON/dotenv give exit 2 or a tree', async () => {
    const sample = 'a:\n  b: [1, 2]\n  c: "x"\nd: true\n'
    await fc.assert(
      fc.asyncProperty(
        fc.oneof(
          fc.string({ maxLength: 60 }),
          fc.integer({ min: 0, max: sample.length }).map((n) => sample.slice(0, n)),
        ),
        fc.constantFrom('yaml', 'json', 'dotenv'),
        async (text, format) => {
          try {
            const tree = await parseTree(text, format as 'yaml', 'input')
            expect(tree instanceof Map).toBe(true)
          } catch (error) {
            expect(isProvError(error), String(error)).toBe(true)
            expect((error as { code: number }).code).toBe(2)
          }
        },
      ),
      { numRuns: 150 },
    )
  })
})

describe('SOPS values and MAC', () => {
  it('formatFloat prints like Go strconv.FormatFloat(f, f, -1, 64)', () => {
    expect(formatFloat(3.14)).toBe('3.14')
    expect(formatFloat(1e21)).toBe('1000000000000000000000')
    expect(formatFloat(1.5e-7)).toBe('0.00000015')
    expect(formatFloat(-2.5)).toBe('-2.5')
    expect(formatFloat(100)).toBe('100')
    fc.assert(
      fc.property(fc.double({ noNaN: true, noDefaultInfinity: true }), (v) => {
        const text = formatFloat(v)
        expect(text).not.toMatch(/e/i)
        expect(Number(text) === v).toBe(true)
      }),
    )
  })

  it('values round-trip with their type and path; another path fails', () => {
    const k = Buffer.alloc(32, 9)
    for (const value of ['text', 42, 0.5, true, false, 'ünïcødé']) {
      expect(decryptScalar(encryptScalar(value, k, 'a:b:'), k, 'a:b:', 'a.b')).toEqual(value)
      expect(() => decryptScalar(encryptScalar(value, k, 'a:b:'), k, 'a:c:', 'a.c')).toThrow(/altered or moved/)
    }
  })

  it('encryptTree/decryptTree: same MAC both ways, rules respected', () => {
    const k = Buffer.alloc(32, 1)
    const tree = new Map<string, unknown>([
      ['a', 'x'],
      ['n', new Map<string, unknown>([['list', ['p', 2, true]]])],
      ['keep_unencrypted', 'visible'],
    ]) as never
    const enc = encryptTree(tree, k, { unencrypted_suffix: '_unencrypted' })
    expect((enc.tree as Map<string, unknown>).get('keep_unencrypted')).toBe('visible')
    const dec = decryptTree(enc.tree, k, { unencrypted_suffix: '_unencrypted' })
    expect(dec.mac).toBe(enc.mac)
    expect(dec.tree).toEqual(tree)
    const onlyA = encryptTree(tree, k, { encrypted_regex: '^a$', mac_only_encrypted: true })
    expect((onlyA.tree as Map<string, unknown>).get('n')).toEqual((tree as Map<string, unknown>).get('n'))
    expect(onlyA.mac).not.toBe(enc.mac)
  })

  it('dotenv metadata flattening round-trips', () => {
    const meta = new Map<string, unknown>([
      [
        'age',
        [
          new Map([
            ['recipient', 'age1x'],
            ['enc', 'E1'],
          ]),
          new Map([
            ['recipient', 'age1y'],
            ['enc', 'E2'],
          ]),
        ],
      ],
      ['lastmodified', '2024-01-01T00:00:00Z'],
      ['mac', 'M'],
    ]) as never
    const flat: Array<[string, string]> = []
    flattenMetadata(meta, '', flat)
    expect(flat.map(([k]) => k)).toEqual([
      'age__list_0__map_recipient',
      'age__list_0__map_enc',
      'age__list_1__map_recipient',
      'age__list_1__map_enc',
      'lastmodified',
      'mac',
    ])
    expect(unflattenMetadata(flat)).toEqual(meta)
  })
})

describe('age on node:crypto (the envelope key wrap) against age-encryption and the age CLI', () => {
  it('interoperates with age-encryption both ways and derives the same recipients', async () => {
    const age = await import('age-encryption')
    for (let i = 0; i < 5; i++) {
      const identity = await age.generateX25519Identity()
      const recipient = await age.identityToRecipient(identity)
      expect(X25519Identity.parse(identity)?.recipient.toString()).toBe(recipient)
      const key = randomBytes(32)
      const native = await sealAgeBuffer(key, [recipient], false)
      const decrypter = new age.Decrypter()
      decrypter.addIdentity(identity)
      expect(Buffer.from(await decrypter.decrypt(native))).toEqual(key)
      const encrypter = new age.Encrypter()
      encrypter.addRecipient(recipient)
      const fromLibrary = Buffer.from(await encrypter.encrypt(key))
      expect(await openAgeBuffer(fromLibrary, ageKeys([identity]))).toEqual(key)
      const other = await age.generateX25519Identity()
      await expect(openAgeBuffer(fromLibrary, ageKeys([other]))).rejects.toMatchObject({ code: 4, details: { reason: 'no-match' } })
      const tampered = Buffer.from(native)
      tampered[tampered.length - 1] ^= 1
      await expect(openAgeBuffer(tampered, ageKeys([identity]))).rejects.toMatchObject({ code: 4, details: { reason: 'payload' } })
    }
    expect(X25519Identity.parse('AGE-SECRET-KEY-1NOTVALID')).toBeUndefined()
    expect(bech32Decode('age1qqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqq')).toBeUndefined()
  })

  it('post-quantum hybrid recipients and identities go through age-encryption, the payload through src/age', async () => {
    const age = await import('age-encryption')
    const identity = await age.generateHybridIdentity()
    const recipient = await age.identityToRecipient(identity)
    const plain = randomBytes(70_000)
    const sealed = await sealAgeBuffer(plain, [recipient], true)
    expect(sealed.toString('latin1')).toMatch(/^-----BEGIN AGE ENCRYPTED FILE-----\n/)
    expect(await openAgeBuffer(sealed, ageKeys([identity]))).toEqual(plain)
    const x25519 = await age.generateX25519Identity()
    await expect(openAgeBuffer(sealed, ageKeys([x25519]))).rejects.toMatchObject({ code: 4, details: { reason: 'no-match' } })
    // A native identity that does not match falls through to the hybrid one.
    expect(await openAgeBuffer(sealed, ageKeys([x25519, identity]))).toEqual(plain)
  })

  it('the age CLI decrypts a natively wrapped key, and the other way round', async () => {
    const { spawnSync } = await import('node:child_process')
    const { mkdtempSync, writeFileSync, rmSync } = await import('node:fs')
    const { tmpdir } = await import('node:os')
    const { join } = await import('node:path')
    const dir = mkdtempSync(join(tmpdir(), 'prov-kms-x25519-'))
    try {
      spawnSync('age-keygen', ['-o', join(dir, 'key.txt')])
      const identity = readFileSync(join(dir, 'key.txt'), 'utf8')
        .split('\n')
        .find((l) => l.startsWith('AGE-SECRET-KEY-')) as string
      const recipient = X25519Identity.parse(identity)?.recipient.toString() as string
      const key = randomBytes(32)
      writeFileSync(join(dir, 'wrapped.age'), await sealAgeBuffer(key, [recipient], false))
      const out = spawnSync('age', ['-d', '-i', join(dir, 'key.txt'), join(dir, 'wrapped.age')])
      expect(out.status, String(out.stderr)).toBe(0)
      expect(out.stdout).toEqual(key)
      const fromCli = spawnSync('age', ['-r', recipient], { input: key })
      expect(await openAgeBuffer(fromCli.stdout, ageKeys([identity]))).toEqual(key)
    } finally {
      rmSync(dir, { recursive: true, force: true })
    }
  })
})

describe('SOPS metadata on a new data key', () => {
  it('drops key sources prov-kms cannot re-wrap and keeps the rest', () => {
    const { kept, dropped } = otherMetadataForNewKey({
      age: [],
      lastmodified: '2024-01-01T00:00:00Z',
      mac: '',
      version: '3.9.4',
      other: [
        [
          'kms',
          [
            new Map([
              ['arn', 'arn:aws:kms:x'],
              ['enc', 'stale'],
            ]),
          ],
        ],
        [
          'pgp',
          [
            new Map([
              ['fp', 'ABC'],
              ['enc', 'stale'],
            ]),
          ],
        ],
        ['custom_note', 'kept'],
      ],
    })
    expect(dropped).toEqual(['kms', 'pgp'])
    expect(kept).toEqual([['custom_note', 'kept']])
  })
})
