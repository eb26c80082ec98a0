import { createHash } from 'node:crypto'
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { Readable } from 'node:stream'
import { ProvError } from '@prov/core'
import { afterAll, describe, expect, it } from 'vitest'
import { copyGraph, packageExtension, pushBuilt } from '../src/artifact'
import { LayoutTarget } from '../src/layout'
import type { Target } from '../src/target'
import { readVerified, verifyBytes } from '../src/verify'

const temp = mkdtempSync(join(tmpdir(), 'prov-oci-verify-'))
afterAll(() => rmSync(temp, { recursive: true, force: true }))

const sha = (b: Buffer) => `sha256:${createHash('sha256').update(b).digest('hex')}`
const bytes = Buffer.from('the bytes a descriptor names')
const chunks = (...parts: string[]) => Readable.from(parts.map((p) => Buffer.from(p)))

async function refusal(promise: Promise<unknown>): Promise<string> {
  try {
    await promise
  } catch (error) {
    expect(error).toBeInstanceOf(ProvError)
    expect((error as ProvError).code).toBe(1)
    return (error as ProvError).message
  }
  throw new Error('expected a refusal')
}

describe('the verifying reader', () => {
  const expected = { digest: sha(bytes), size: bytes.length, limit: 1024, what: 'blob x', where: 'test' }

  it('passes bytes that match, in any chunking, and reports their digest', async () => {
    const read = await readVerified(chunks('the bytes ', 'a descriptor', ' names'), expected)
    expect(read.bytes.equals(bytes)).toBe(true)
    expect(read.digest).toBe(sha(bytes))
  })

  it('cuts a stream off at the first byte past the descriptor size', async () => {
    let pulled = 0
    const endless = Readable.from(
      (function* () {
        for (;;) {
          pulled++
          yield Buffer.alloc(16, 0x61)
        }
      })(),
    )
    expect(await refusal(readVerified(endless, expected))).toMatch(/blob x is larger than its descriptor says \(28 bytes\): refused, nothing written/)
    expect(pulled).toBeLessThan(64)
  })

  it('refuses a short read, a wrong digest, and anything past the limit when the size is unknown', async () => {
    expect(await refusal(readVerified(chunks('the bytes'), expected))).toMatch(/blob x has 9 bytes, the descriptor says 28: refused/)
    const other = Buffer.from('other bytes of the same size!').subarray(0, bytes.length)
    expect(await refusal(readVerified(Readable.from([other]), expected))).toMatch(
      /digest mismatch: expected sha256:[0-9a-f]{64}, got sha256:[0-9a-f]{64}: refused/,
    )
    expect(await refusal(readVerified(Readable.from([Buffer.alloc(2048)]), { limit: 1024, what: 'answer', where: 'test' }))).toMatch(
      /answer of 2048 bytes exceeds the limit of 1024 bytes: refused/,
    )
  })

  it('gives bytes in memory the same checks', () => {
    expect(verifyBytes(bytes, expected)).toBe(sha(bytes))
    expect(() => verifyBytes(Buffer.from('x'), expected)).toThrow(/has 1 bytes, the descriptor says 28/)
    expect(() => verifyBytes(bytes, { ...expected, digest: 'md5:abc' })).toThrow(/unsupported digest algorithm/)
  })
})

describe('optional target capabilities', () => {
  it('copies through fetchBlob/pushBlob when the targets offer no streams, and still refuses corrupt bytes', async () => {
    const dir = join(temp, 'ext')
    mkdirSync(dir, { recursive: true })
    writeFileSync(join(dir, 'manifest.yaml'), 'name: plain\nkind: taskserv\nversion: 1.0.0\n')
    const built = packageExtension(dir)
    const source = new LayoutTarget(join(temp, 'plain-src'))
    await pushBuilt(source, built, 'v1')
    // Only the required methods: no openBlob, writeBlob, mount or publishReferrer.
    const bare = (target: LayoutTarget): Target => ({
      kind: target.kind,
      name: target.name,
      resolve: (r) => target.resolve(r),
      fetchManifest: (r) => target.fetchManifest(r),
      fetchBlob: (d) => target.fetchBlob(d),
      exists: (d) => target.exists(d),
      pushBlob: (d, b, o) => target.pushBlob(d, b, o),
      pushManifest: (d, b, t) => target.pushManifest(d, b, t),
      tags: () => target.tags(),
      delete: (r) => target.delete(r),
      referrers: (d, a) => target.referrers(d, a),
    })
    const destination = new LayoutTarget(join(temp, 'plain-dst'))
    await copyGraph(bare(source), bare(destination), 'v1', { tag: 'v1' })
    expect((await destination.resolve('v1')).digest).toBe(built.descriptor.digest)
    const layer = built.blobs[1].descriptor
    writeFileSync(source.blobPath(layer.digest), Buffer.from(built.blobs[1].bytes).fill(0, 10, 11))
    const other = new LayoutTarget(join(temp, 'plain-dst2'))
    await expect(copyGraph(bare(source), bare(other), 'v1')).rejects.toThrow(/digest mismatch/)
  })
})
