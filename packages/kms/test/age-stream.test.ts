// The native age v1 STREAM path (--format age, decryption of age files) against the real age
// CLI at the chunk boundaries, plus truncated, reordered and altered multi-chunk files.
import { spawnSync } from 'node:child_process'
import { createCipheriv, randomBytes } from 'node:crypto'
import { join } from 'node:path'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { encodeHeader } from '../src/age/format'
import { hkdf } from '../src/age/primitives'
import { X25519Recipient } from '../src/age/x25519'
import { expectOneErrorLine, kms, recipientOf, tempEnv } from './helpers'

const CHUNK = 64 * 1024
const SEALED = CHUNK + 16
const SIZES = [0, 1, CHUNK - 1, CHUNK, CHUNK + 1, 3 * CHUNK, 10 * 1024 * 1024 + 17]

describe('prov-kms age files: STREAM payload on node:crypto, interop with the age CLI', () => {
  const env = tempEnv('prov-kms-age-stream-')
  const identity = join(env.env.XDG_CONFIG_HOME as string, 'prov', 'kms', 'identity.txt')
  let recipient = ''
  const bin = join(__dirname, '../../../bin/prov-kms')
  const prov = (args: string[], input: Buffer) =>
    spawnSync(process.execPath, [bin, ...args], { input, env: { ...process.env, ...env.env } as NodeJS.ProcessEnv, maxBuffer: 1 << 26 })
  const age = (args: string[], input: Buffer) => spawnSync('age', args, { input, maxBuffer: 1 << 26 })

  beforeAll(async () => {
    const created = await kms(['keygen'], { env: env.env })
    expect(created.code, created.stderr).toBe(0)
    recipient = recipientOf(identity)
  })
  afterAll(() => env.cleanup())

  /** Offset of the payload (after the header and the 16-byte nonce) in a binary age file. */
  const payloadStart = (file: Buffer) => file.indexOf('\n', file.indexOf('\n--- ') + 1) + 1 + 16

  for (const size of SIZES) {
    it(`${size} bytes: prov-kms -> age -d and age -r -> prov-kms, binary and armored`, () => {
      const data = randomBytes(size)
      const binary = prov(['encrypt', '--format', 'age', '--binary', '-r', recipient], data)
      expect(binary.status, String(binary.stderr)).toBe(0)
      // One chunk per 64 KiB, a full-size final chunk when the size is a multiple (an empty one only for 0 bytes).
      const chunks = Math.max(1, Math.ceil(size / CHUNK))
      expect(binary.stdout.length - payloadStart(binary.stdout)).toBe(size + 16 * chunks)
      const opened = age(['-d', '-i', identity], binary.stdout)
      expect(opened.status, String(opened.stderr)).toBe(0)
      expect(Buffer.compare(opened.stdout, data)).toBe(0)

      const armored = prov(['encrypt', '--format', 'age', '-r', recipient], data)
      expect(armored.status, String(armored.stderr)).toBe(0)
      const fromArmor = age(['-d', '-i', identity], armored.stdout)
      expect(fromArmor.status, String(fromArmor.stderr)).toBe(0)
      expect(Buffer.compare(fromArmor.stdout, data)).toBe(0)
      // Same PEM layout as `age -a`: 64-column lines, the last one shorter or equal, then END.
      const ageArmored = age(['-a', '-r', recipient], data)
      for (const text of [armored.stdout.toString('latin1'), ageArmored.stdout.toString('latin1')]) {
        const lines = text.split('\n')
        expect(lines[0]).toBe('-----BEGIN AGE ENCRYPTED FILE-----')
        expect(lines.at(-2)).toBe('-----END AGE ENCRYPTED FILE-----')
        expect(lines.at(-1)).toBe('')
        const body = lines.slice(1, -2)
        for (const line of body.slice(0, -1)) expect(line).toMatch(/^[A-Za-z0-9+/]{64}$/)
        expect(body.at(-1)).toMatch(/^[A-Za-z0-9+/]{1,64}={0,2}$/)
      }

      for (const file of [age(['-r', recipient], data).stdout, ageArmored.stdout]) {
        const back = prov(['decrypt'], file)
        expect(back.status, String(back.stderr)).toBe(0)
        expect(Buffer.compare(back.stdout, data)).toBe(0)
      }
    }, 120_000)
  }

  it('truncated, reordered and altered multi-chunk age files are refused (exit 2 or 4, one line)', () => {
    const data = randomBytes(3 * CHUNK)
    const file = age(['-r', recipient], data).stdout
    const start = payloadStart(file)
    expect(file.length).toBe(start + 3 * SEALED)
    const decrypt = (input: Buffer) => {
      const result = prov(['decrypt'], input)
      return { code: result.status, stdout: result.stdout.toString('latin1'), stderr: result.stderr.toString() }
    }
    // The full-size final chunk dropped: two middle chunks end the file.
    const dropped = decrypt(file.subarray(0, start + 2 * SEALED))
    expectOneErrorLine(dropped, 2, /truncated/)
    // Cut inside a chunk, inside the nonce, inside the header.
    for (const cut of [file.length - 100, start + SEALED + 5, start - 8, 40]) expect([2, 4]).toContain(decrypt(file.subarray(0, cut)).code)
    // A flipped payload byte, swapped chunks, trailing data, a flipped header MAC.
    const flipped = Buffer.from(file)
    flipped[start + SEALED + 1000] ^= 1
    expectOneErrorLine(decrypt(flipped), 4, /chunk 1/)
    const swapped = Buffer.concat([
      file.subarray(0, start),
      file.subarray(start + SEALED, start + 2 * SEALED),
      file.subarray(start, start + SEALED),
      file.subarray(start + 2 * SEALED),
    ])
    expectOneErrorLine(decrypt(swapped), 4)
    expect([2, 4]).toContain(decrypt(Buffer.concat([file, Buffer.from('x')])).code)
    const macAt = file.indexOf('\n--- ') + 6
    const badMac = Buffer.from(file)
    badMac[macAt] = badMac[macAt] === 0x41 ? 0x42 : 0x41
    expectOneErrorLine(decrypt(badMac), 4, /MAC/)
    // Armor: a truncated block is exit 2.
    const armored = age(['-a', '-r', recipient], data).stdout.toString('latin1')
    expectOneErrorLine(decrypt(Buffer.from(armored.slice(0, armored.length - 40))), 2)
    // Armor: a stray character in a full line, a URL-safe character, a short line in the middle,
    // trailing data after END: exit 2; CRLF line ends and surrounding whitespace are accepted.
    const lineAt = armored.indexOf('\n', 2000) + 1
    for (const bad of [
      `${armored.slice(0, lineAt + 10)}!${armored.slice(lineAt + 11)}`,
      `${armored.slice(0, lineAt + 10)}-${armored.slice(lineAt + 11)}`,
      `${armored.slice(0, lineAt + 10)}\n${armored.slice(lineAt + 10)}`,
      `${armored}garbage\n`,
    ]) {
      expectOneErrorLine(decrypt(Buffer.from(bad)), 2, /armor/)
    }
    const crlf = decrypt(Buffer.from(`\n  ${armored.replace(/\n/g, '\r\n')}\n`))
    expect(crlf.code, crlf.stderr).toBe(0)
    expect(Buffer.compare(Buffer.from(crlf.stdout, 'latin1'), data)).toBe(0)
  }, 120_000)

  it('prov envelope text (prov:age:v1:) of several chunks: whitespace-wrapped decrypts; stray or misplaced characters are exit 2', () => {
    const data = randomBytes(3 * CHUNK + 5)
    const text = prov(['encrypt'], data).stdout.toString('latin1').trim()
    const body = text.slice('prov:age:v1:'.length)
    const wrapped = `prov:age:v1:${body.replace(/.{76}/g, '$&\n')}\n`
    const back = prov(['decrypt'], Buffer.from(wrapped))
    expect(back.status, String(back.stderr)).toBe(0)
    expect(Buffer.compare(back.stdout, data)).toBe(0)
    for (const bad of [`${text.slice(0, 5000)}!${text.slice(5001)}`, `${text.slice(0, 5000)}=${text.slice(5001)}`, `${text}==AAAA`]) {
      const refused = prov(['decrypt'], Buffer.from(bad))
      expect(refused.status, String(refused.stderr)).toBe(2)
      expect(String(refused.stderr)).toMatch(/base64/)
    }
  }, 60_000)

  it('an empty final chunk after a full chunk is refused (only an empty payload may have one)', () => {
    const fileKey = randomBytes(16)
    const header = encodeHeader((X25519Recipient.parse(recipient) as X25519Recipient).wrapFileKey(fileKey), fileKey)
    const nonce = randomBytes(16)
    const key = hkdf(fileKey, nonce, 'payload')
    const seal = (counter: number, last: boolean, plain: Buffer) => {
      const chunkNonce = Buffer.alloc(12)
      chunkNonce.writeUIntBE(counter, 5, 6)
      chunkNonce[11] = last ? 1 : 0
      const cipher = createCipheriv('chacha20-poly1305', key, chunkNonce, { authTagLength: 16 })
      return Buffer.concat([cipher.update(plain), cipher.final(), cipher.getAuthTag()])
    }
    const data = randomBytes(CHUNK)
    const crafted = Buffer.concat([header, nonce, seal(0, false, data), seal(1, true, Buffer.alloc(0))])
    const refused = prov(['decrypt'], crafted)
    expect(refused.status, String(refused.stderr)).toBe(2)
    expect(String(refused.stderr)).toMatch(/empty final chunk/)
    // The same file as the age CLI sees it: also refused.
    expect(age(['-d', '-i', identity], crafted).status).not.toBe(0)
    // And the well-formed variant opens in both.
    const good = Buffer.concat([header, nonce, seal(0, true, data)])
    expect(Buffer.compare(prov(['decrypt'], good).stdout, data)).toBe(0)
    expect(Buffer.compare(age(['-d', '-i', identity], good).stdout, data)).toBe(0)
  }, 60_000)
})
