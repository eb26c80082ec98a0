import { failedError } from '@prov/core'
import { TAR_LIMITS } from './types'

/** One archive member as read from a stream: its body follows through `body()`. */
export interface TarMember {
  path: string
  type: 'file' | 'dir' | 'symlink' | 'hardlink'
  mode: number
  size: number
  linkname?: string
}

/** Counts shared by all the layers of one artifact. */
export interface TarCounts {
  entries: number
}

const BLOCK = 512

/** Exact reads over an async stream of chunks, without holding more than one chunk. */
class ChunkReader {
  private chunks: Buffer[] = []
  private buffered = 0
  private ended = false

  constructor(private readonly source: AsyncIterator<Buffer>) {}

  private async fill(n: number): Promise<boolean> {
    while (this.buffered < n && !this.ended) {
      const next = await this.source.next()
      if (next.done) this.ended = true
      else if (next.value.length) {
        this.chunks.push(next.value)
        this.buffered += next.value.length
      }
    }
    return this.buffered >= n
  }

  /** Up to `max` bytes (at least one), or undefined at the end. */
  async some(max: number): Promise<Buffer | undefined> {
    if (!(await this.fill(1))) return undefined
    const first = this.chunks[0]
    if (first.length <= max) {
      this.chunks.shift()
      this.buffered -= first.length
      return first
    }
    this.chunks[0] = first.subarray(max)
    this.buffered -= max
    return first.subarray(0, max)
  }

  /** Exactly `n` bytes, or undefined when the stream ends first. */
  async exactly(n: number): Promise<Buffer | undefined> {
    if (!(await this.fill(n))) return undefined
    const parts: Buffer[] = []
    let left = n
    while (left > 0) {
      const part = (await this.some(left)) as Buffer
      parts.push(part)
      left -= part.length
    }
    return parts.length === 1 ? parts[0] : Buffer.concat(parts)
  }

  /** `n` bytes as they come, as a body a consumer may stop reading at any point. */
  body(n: number, truncated: () => Error): Body {
    return new Body(n, (max) => this.some(max), truncated)
  }

  /** Reads (and drops) everything left, so upstream counting and digest checks see all of it. */
  async drain(): Promise<void> {
    this.chunks = []
    this.buffered = 0
    while (!this.ended) if ((await this.source.next()).done) this.ended = true
  }
}

/** The data of one member; whatever the consumer leaves unread is skipped with `skip()`. */
class Body implements AsyncIterable<Buffer> {
  constructor(
    private left: number,
    private readonly read: (max: number) => Promise<Buffer | undefined>,
    private readonly truncated: () => Error,
  ) {}

  private async next(): Promise<IteratorResult<Buffer, undefined>> {
    if (this.left <= 0) return { done: true, value: undefined }
    const part = await this.read(this.left)
    if (!part) throw this.truncated()
    this.left -= part.length
    return { done: false, value: part }
  }

  /** No `return()`: a consumer that stops early leaves the rest for `skip()`. */
  [Symbol.asyncIterator](): AsyncIterator<Buffer> {
    return { next: () => this.next() }
  }

  async skip(): Promise<void> {
    while (!(await this.next()).done) {
      // dropped
    }
  }
}

function readString(block: Buffer, offset: number, length: number): string {
  const slice = block.subarray(offset, offset + length)
  const end = slice.indexOf(0)
  return slice.subarray(0, end < 0 ? length : end).toString('utf8')
}

function readOctal(block: Buffer, offset: number, length: number, where: string): number {
  if (block[offset] & 0x80) throw failedError('tar header with a base-256 number: unsupported', { location: where })
  const text = readString(block, offset, length).trim()
  if (!text) return 0
  if (!/^[0-7]+$/.test(text)) throw failedError(`corrupt tar header (number '${text}')`, { location: where })
  return Number.parseInt(text, 8)
}

/** The header checksum, as unsigned bytes (POSIX) or signed ones (some historic writers). */
function checksumOk(block: Buffer, where: string): boolean {
  const stored = readOctal(block, 148, 8, where)
  let unsigned = 8 * 0x20
  let signed = 8 * 0x20
  for (let i = 0; i < BLOCK; i++) {
    if (i >= 148 && i < 156) continue
    unsigned += block[i]
    signed += block[i] > 127 ? block[i] - 256 : block[i]
  }
  return stored === unsigned || stored === signed
}

const USTAR = Buffer.from('ustar\0', 'latin1')

function parsePax(data: Buffer): Record<string, string> {
  const out: Record<string, string> = {}
  let offset = 0
  while (offset < data.length) {
    const space = data.indexOf(0x20, offset)
    if (space < 0) break
    const length = Number(data.subarray(offset, space).toString('ascii'))
    if (!Number.isInteger(length) || length <= 0 || offset + length > data.length) break
    const record = data.subarray(space + 1, offset + length - 1).toString('utf8')
    const eq = record.indexOf('=')
    if (eq > 0) out[record.slice(0, eq)] = record.slice(eq + 1)
    offset += length
  }
  return out
}

function checkName(name: string, kind: string, where: string): void {
  if (Buffer.byteLength(name) > TAR_LIMITS.pathBytes) {
    throw failedError(`tar entry ${kind} longer than ${TAR_LIMITS.pathBytes} bytes: refused`, { location: where })
  }
  for (const part of name.split('/')) {
    if (Buffer.byteLength(part) > TAR_LIMITS.nameBytes) {
      throw failedError(`tar entry ${kind} has a component longer than ${TAR_LIMITS.nameBytes} bytes: refused`, { location: where })
    }
  }
}

const TYPES: Record<string, TarMember['type']> = { '0': 'file', '7': 'file', '5': 'dir', '2': 'symlink', '1': 'hardlink' }

/**
 * Reads a tar stream member by member (ustar, pax and GNU long names), handing each to `onMember`
 * with its body; a body the callback does not read is skipped. Device files, FIFOs and unknown
 * types are refused, as are bad checksums, names past PATH_MAX/NAME_MAX and more members than
 * `TAR_LIMITS.entries` over `counts`. After the end-of-archive marker the rest of the stream is
 * read and dropped, so what counts or verifies the stream upstream sees every byte.
 */
export async function readTarStream(
  source: AsyncIterable<Buffer>,
  where: string,
  counts: TarCounts,
  onMember: (member: TarMember, body: AsyncIterable<Buffer>) => Promise<void>,
): Promise<void> {
  const reader = new ChunkReader(source[Symbol.asyncIterator]())
  const truncated = () => failedError('truncated tar archive', { location: where })
  let pax: Record<string, string> = {}
  let longName: string | undefined
  let longLink: string | undefined
  for (;;) {
    const block = await reader.exactly(BLOCK)
    // A stream that ends without the end-of-archive marker is taken as ended (as GNU tar does).
    if (!block) break
    if (block.every((b) => b === 0)) break
    if (!checksumOk(block, where)) throw failedError('corrupt tar header (checksum mismatch): refused', { location: where })
    const size = readOctal(block, 124, 12, where)
    const type = String.fromCharCode(block[156] || 48)
    const padded = Math.ceil(size / BLOCK) * BLOCK
    if (type === 'x' || type === 'g' || type === 'L' || type === 'K') {
      if (size > TAR_LIMITS.metaBytes) throw failedError(`tar extended header of ${size} bytes: refused`, { location: where })
      const data = (await reader.exactly(padded))?.subarray(0, size)
      if (!data) throw truncated()
      if (type === 'x') pax = { ...pax, ...parsePax(data) }
      else if (type === 'L') longName = readString(data, 0, data.length)
      else if (type === 'K') longLink = readString(data, 0, data.length)
      continue
    }
    if (++counts.entries > TAR_LIMITS.entries) throw failedError(`more than ${TAR_LIMITS.entries} tar entries: refused`, { location: where })
    const prefix = block.subarray(257, 263).equals(USTAR) ? readString(block, 345, 155) : ''
    const path = pax.path ?? longName ?? (prefix ? `${prefix}/${readString(block, 0, 100)}` : readString(block, 0, 100))
    const linkname = pax.linkpath ?? longLink ?? readString(block, 157, 100)
    pax = {}
    longName = undefined
    longLink = undefined
    checkName(path, 'path', where)
    checkName(linkname, 'link target', where)
    const kind = TYPES[type]
    if (!kind) throw failedError(`tar entry '${path}' has type '${type}' (device, FIFO or unknown): refused`, { location: where })
    const member: TarMember = { path, type: kind, mode: readOctal(block, 100, 8, where), size: kind === 'file' ? size : 0 }
    if (kind === 'symlink' || kind === 'hardlink') member.linkname = linkname
    const body = reader.body(member.size, truncated)
    await onMember(member, body)
    await body.skip()
    // The padding, and the data of non-file entries (which carry none worth reading).
    await reader.body(padded - member.size, truncated).skip()
  }
  await reader.drain()
}
