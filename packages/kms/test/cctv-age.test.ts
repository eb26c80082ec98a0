// Conformance of the age implementation (src/age) with the C2SP CCTV age test vectors
// (fixtures/cctv-age, copied unchanged with their licence), beside the interop tests against the
// age CLI (age-stream.test.ts). Each vector names the stage that must fail, if any, and the hash
// of all plaintext released before that: the released bytes are checked even when decryption fails.
import { spawnSync } from 'node:child_process'
import { createHash } from 'node:crypto'
import { chmodSync, readdirSync, readFileSync, writeFileSync } from 'node:fs'
import { join } from 'node:path'
import { inflateSync } from 'node:zlib'
import { afterAll, describe, expect, it } from 'vitest'
import { isProvError } from '../../core/src/errors'
import { armorDecode } from '../src/age/armor'
import { ageKeys, openAgeFile } from '../src/age/file'
import { type AgeFailure, parseHeader } from '../src/age/format'
import { chachaOpen } from '../src/age/primitives'
import { CHUNK_SIZE, chunkNonce, NONCE_SIZE, payloadKey } from '../src/age/stream'
import { ByteReader, bufferSource } from '../src/lib/io'
import { fixtures, tempEnv } from './helpers'

const bin = join(import.meta.dirname, '../../../bin/prov-kms')

const dir = join(fixtures, 'cctv-age', 'testdata')

interface Vector {
  name: string
  expect: string
  payload?: string
  fileKey?: string
  identities: string[]
  passphrases: string[]
  armored: boolean
  file: Buffer
}

function readVector(name: string): Vector {
  const raw = readFileSync(join(dir, name))
  const split = raw.indexOf('\n\n')
  const headers = raw.subarray(0, split).toString('utf8').split('\n')
  const values = (key: string) => headers.filter((line) => line.startsWith(`${key}: `)).map((line) => line.slice(key.length + 2))
  let file = raw.subarray(split + 2)
  if (values('compressed')[0] === 'zlib') file = inflateSync(file)
  return {
    name,
    expect: values('expect')[0],
    payload: values('payload')[0],
    fileKey: values('file key')[0],
    identities: values('identity'),
    passphrases: values('passphrase'),
    armored: values('armored')[0] === 'yes',
    file,
  }
}

/** Which failure reasons of src/age each vector class stands for. */
const reasonsFor: Record<string, AgeFailure[]> = {
  'header failure': ['header'],
  'armor failure': ['armor'],
  'no match': ['no-match'],
  'HMAC failure': ['hmac'],
  'payload failure': ['payload', 'truncated', 'malformed-payload'],
}

async function decryptVector(vector: Vector): Promise<{ released: Buffer; error?: unknown }> {
  const released: Buffer[] = []
  try {
    const source = vector.armored ? armorDecode(bufferSource(vector.file)) : bufferSource(vector.file)
    for await (const chunk of await openAgeFile(new ByteReader(source), ageKeys(vector.identities))) released.push(Buffer.from(chunk))
    return { released: Buffer.concat(released) }
  } catch (error) {
    return { released: Buffer.concat(released), error }
  }
}

/**
 * age releases a chunk as soon as it authenticates; prov-kms holds a chunk back until the next one
 * has started and releases nothing of a final chunk that is followed by more data, so a cut or
 * padded stream never passes for a complete one. Where the two differ, the difference must be
 * exactly the one chunk after what prov-kms released, and it must open with the vector's file key.
 */
function withheldChunk(vector: Vector, releasedLength: number): Buffer {
  expect(releasedLength % CHUNK_SIZE).toBe(0)
  const file = vector.armored ? armoredBytes(vector.file) : vector.file
  const header = parseHeader(file, true) as NonNullable<ReturnType<typeof parseHeader>>
  const nonce = file.subarray(header.length, header.length + NONCE_SIZE)
  const index = releasedLength / CHUNK_SIZE
  const start = header.length + NONCE_SIZE + index * (CHUNK_SIZE + 16)
  const sealed = file.subarray(start, start + CHUNK_SIZE + 16)
  const key = payloadKey(Buffer.from(vector.fileKey as string, 'hex'), nonce)
  const plain = chachaOpen(key, chunkNonce(index, false), sealed) ?? chachaOpen(key, chunkNonce(index, true), sealed)
  expect(plain, `${vector.name}: the chunk after the released ones does not open`).toBeDefined()
  return plain as Buffer
}

function armoredBytes(text: Buffer): Buffer {
  const lines = text.toString('latin1').trim().split(/\r?\n/)
  return Buffer.from(lines.slice(1, -1).join(''), 'base64')
}

const sha256 = (data: Buffer) => createHash('sha256').update(data).digest('hex')
const vectors = readdirSync(dir).sort().map(readVector)
// prov-kms takes no passphrases (its keys are age identities): scrypt vectors can only be refused.
const supported = vectors.filter((v) => !v.passphrases.length)
const passphraseOnly = vectors.filter((v) => v.passphrases.length)

describe('C2SP CCTV age test vectors', () => {
  it('the vendored set is complete and every class is represented', () => {
    expect(vectors.length).toBe(143)
    expect(new Set(supported.map((v) => v.expect))).toEqual(new Set(['success', ...Object.keys(reasonsFor)]))
    expect(supported.length).toBeGreaterThan(110)
  })

  for (const vector of supported) {
    it(`${vector.name}: ${vector.expect}`, async () => {
      const { released, error } = await decryptVector(vector)
      if (vector.expect === 'success') {
        expect(error, String(error)).toBeUndefined()
      } else {
        expect(isProvError(error), String(error)).toBe(true)
        const reason = (error as { details?: { reason?: string } }).details?.reason
        expect(reasonsFor[vector.expect], `${vector.name}: got '${reason}' (${(error as Error).message})`).toContain(reason)
      }
      // All plaintext released before a failure must be the vector's, or one chunk less (see below).
      if (!vector.payload) expect(released.length).toBe(0)
      else if (sha256(released) !== vector.payload) {
        expect(vector.expect).toBe('payload failure')
        expect(sha256(Buffer.concat([released, withheldChunk(vector, released.length)]))).toBe(vector.payload)
      }
    })
  }

  it(`passphrase (scrypt) vectors are refused cleanly: ${passphraseOnly.length} of them`, async () => {
    for (const vector of passphraseOnly) {
      const { released, error } = await decryptVector(vector)
      expect(isProvError(error), `${vector.name}: ${String(error)}`).toBe(true)
      expect([2, 4]).toContain((error as { code: number }).code)
      expect(released.length).toBe(0)
    }
  })
})

describe('C2SP CCTV age vectors through the prov-kms CLI', () => {
  const env = tempEnv('prov-kms-cctv-')
  afterAll(() => env.cleanup())
  const cases: Array<[string, number]> = [
    ['x25519', 0],
    ['armor_crlf', 0],
    ['armor_whitespace_outside', 0],
    ['stream_257_chunks_full', 0],
    ['hybrid', 0],
    ['x25519_no_match', 4],
    ['hmac_bad', 4],
    ['stream_bad_tag_second_chunk', 4],
    ['x25519_low_order', 2],
    ['stanza_long_line', 2],
    ['stream_no_final', 2],
    ['armor_garbage_trailing', 2],
    ['armor_whitespace_eol', 2],
  ]
  for (const [name, code] of cases) {
    it(`${name}: exit ${code}`, async () => {
      const vector = readVector(name)
      const identity = join(env.root, `${name}.key`)
      writeFileSync(identity, `${vector.identities.join('\n')}\n`)
      chmodSync(identity, 0o600)
      const result = spawnSync(process.execPath, [bin, 'decrypt'], {
        input: vector.file,
        env: { ...process.env, ...env.env, PROV_KMS_IDENTITY: identity } as NodeJS.ProcessEnv,
        maxBuffer: 1 << 26,
      })
      expect(result.status, String(result.stderr)).toBe(code)
      if (code === 0) expect(sha256(result.stdout)).toBe(vector.payload)
      else expect(String(result.stderr).trim().split('\n')).toEqual([expect.stringMatching(/^prov-kms: error: /)])
    })
  }
})
