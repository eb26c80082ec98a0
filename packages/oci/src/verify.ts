import { createHash, type Hash } from 'node:crypto'
import { type Readable, Transform, type TransformCallback } from 'node:stream'
import { failedError, ProvError } from '@prov/core'

export interface Expected {
  /** `sha256:<hex>`: the bytes must hash to it. Unknown (a manifest fetched by tag): only hashed. */
  digest?: string
  /** Exact size in bytes when known (a descriptor's size). */
  size?: number
  /** Upper bound when the size is unknown; the size, when known, must not exceed it either. */
  limit: number
  /** What is read, for messages: `blob sha256:…`, `manifest of reg/repo:tag`. */
  what: string
  /** Where it comes from (URL, file), for the error location. */
  where: string
}

/**
 * The checks of one read: counts and hashes what passes, refuses as soon as it goes past the
 * expected size or the limit, and at the end refuses a short read or a digest that does not match.
 */
export class Verifier {
  private readonly hash: Hash = createHash('sha256')
  private count = 0

  constructor(readonly expected: Expected) {
    if (expected.digest !== undefined && !expected.digest.startsWith('sha256:')) {
      throw failedError(`unsupported digest algorithm in ${expected.digest}`, { location: expected.where, hint: 'prov-oci verifies sha256 digests' })
    }
    if (expected.size !== undefined && expected.size > expected.limit) throw tooLarge(expected, expected.size)
  }

  /** Bytes seen so far. */
  get bytes(): number {
    return this.count
  }

  update(chunk: Uint8Array): void {
    this.count += chunk.length
    const { size, limit } = this.expected
    if (size !== undefined && this.count > size) throw largerThanDescriptor(this.expected)
    if (this.count > limit) throw tooLarge(this.expected, this.count)
    this.hash.update(chunk)
  }

  /** Checks the whole; returns its `sha256:<hex>`. */
  finish(): string {
    const { size, digest, what, where } = this.expected
    if (size !== undefined && this.count !== size) {
      throw failedError(`${what} has ${this.count} bytes, the descriptor says ${size}: refused, nothing written`, { location: where })
    }
    const computed = `sha256:${this.hash.digest('hex')}`
    if (digest !== undefined && computed !== digest) {
      throw failedError(`digest mismatch: expected ${digest}, got ${computed}: refused, nothing written`, { location: where })
    }
    return computed
  }
}

/**
 * The one reader every byte from a registry, a layout or the cache goes through (as oras-go's
 * `content.NewVerifyReader`): a Verifier in a Transform. The stream is cut off at the first byte
 * too many, and ends with an error instead of its end when the whole does not verify, so a
 * consumer that writes sees the error before it renames anything into place.
 */
export class VerifyReader extends Transform {
  private readonly verifier: Verifier
  private computed: string | undefined

  constructor(expected: Expected) {
    super()
    this.verifier = new Verifier(expected)
  }

  /** Bytes seen so far. */
  get bytes(): number {
    return this.verifier.bytes
  }

  /** `sha256:<hex>` of everything read (after the end). */
  get digest(): string {
    if (!this.computed) throw new Error('VerifyReader: digest read before the end of the stream')
    return this.computed
  }

  override _transform(chunk: Buffer, _encoding: BufferEncoding, done: TransformCallback): void {
    try {
      this.verifier.update(chunk)
      done(null, chunk)
    } catch (error) {
      done(error as Error)
    }
  }

  override _flush(done: TransformCallback): void {
    try {
      this.computed = this.verifier.finish()
      done()
    } catch (error) {
      done(error as Error)
    }
  }
}

function largerThanDescriptor(expected: Expected): ProvError {
  return failedError(`${expected.what} is larger than its descriptor says (${expected.size} bytes): refused, nothing written`, {
    location: expected.where,
  })
}

function tooLarge(expected: Expected, bytes: number): ProvError {
  return failedError(`${expected.what} of ${bytes} bytes exceeds the limit of ${expected.limit} bytes: refused, nothing written`, {
    location: expected.where,
  })
}

/**
 * `source` through a VerifyReader: the reader ends with the source's error (a network or disk
 * failure, said so) or with the verification's, and closing it early closes the source.
 */
export function verifiedStream(source: Readable, expected: Expected): VerifyReader {
  const reader = new VerifyReader(expected)
  source.on('error', (error) => {
    reader.destroy(
      error instanceof ProvError
        ? error
        : failedError(`reading ${expected.what} broke off: ${error.message}`, { location: expected.where, cause: error, details: { network: true } }),
    )
  })
  reader.on('close', () => source.destroy())
  source.pipe(reader)
  return reader
}

/** A whole stream in one buffer (a verified one: see verifiedStream). */
export async function collect(stream: Readable): Promise<Buffer> {
  const chunks: Buffer[] = []
  for await (const chunk of stream) chunks.push(chunk as Buffer)
  return chunks.length === 1 ? chunks[0] : Buffer.concat(chunks)
}

/** A whole stream, verified, in one buffer (manifests, configs, JSON answers: bounded by `expected.limit`). */
export async function readVerified(source: Readable, expected: Expected): Promise<{ bytes: Buffer; digest: string }> {
  const reader = verifiedStream(source, expected)
  const bytes = await collect(reader)
  return { bytes, digest: reader.digest }
}

/** The same checks over bytes already in memory (built here, or read whole); returns the digest. */
export function verifyBytes(bytes: Uint8Array, expected: Omit<Expected, 'limit'> & { limit?: number }): string {
  const verifier = new Verifier({ ...expected, limit: expected.limit ?? Math.max(bytes.length, expected.size ?? 0) })
  verifier.update(bytes)
  return verifier.finish()
}
