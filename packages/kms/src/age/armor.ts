/**
 * age's ASCII armor (strict PEM, RFC 7468), streamed. Encoding writes 64-column lines of padded
 * base64 between the BEGIN and END lines. Decoding accepts whitespace before BEGIN and after END
 * and CRLF line ends, and nothing else: inside the block every line but the last holds exactly
 * 64 characters of canonical base64, only the last may be shorter and carry `=` padding, and no
 * line may be empty or hold spaces.
 */
import type { ByteSource } from '../lib/io'
import { ageFailure } from './format'

export const ARMOR_BEGIN = '-----BEGIN AGE ENCRYPTED FILE-----'
export const ARMOR_END = '-----END AGE ENCRYPTED FILE-----'
/** Whitespace allowed around the block (as the age CLI allows: at most 1 KiB before it). */
const MAX_LEADING_WHITESPACE = 1024

export async function* armorEncode(source: AsyncIterable<Uint8Array>): ByteSource {
  yield Buffer.from(`${ARMOR_BEGIN}\n`)
  let carry = Buffer.alloc(0)
  for await (const chunk of source) {
    const data = carry.length ? Buffer.concat([carry, chunk]) : Buffer.from(chunk.buffer, chunk.byteOffset, chunk.length)
    const usable = data.length - (data.length % 48)
    if (usable) yield fullLines(data.subarray(0, usable))
    carry = Buffer.from(data.subarray(usable))
  }
  if (carry.length) yield Buffer.from(`${carry.toString('base64')}\n`)
  yield Buffer.from(`${ARMOR_END}\n`)
}

/** Full 64-column lines for a multiple of 48 bytes: one base64 pass, then a newline every 64. */
function fullLines(data: Buffer): Buffer {
  const text = Buffer.from(data.toString('base64'), 'latin1')
  const lines = text.length / 64
  const out = Buffer.allocUnsafe(lines * 65)
  for (let i = 0; i < lines; i++) {
    text.copy(out, i * 65, i * 64, i * 64 + 64)
    out[i * 65 + 64] = 10
  }
  return out
}

const isWhitespace = (byte: number) => byte === 0x20 || (byte >= 0x09 && byte <= 0x0d)
const bodyLine = /^[A-Za-z0-9+/]*={0,2}$/

function armorError(message: string) {
  return ageFailure('armor', `bad age armor: ${message}`)
}

/**
 * Runs of full 64-column lines from `pos`, decoded at once (a 10 MB file is ~200,000 lines);
 * undefined when a byte is out of place, so the caller checks line by line. Node's decoder skips
 * bytes outside the alphabet and stops at '=', so a stray byte shortens the result; '-' and '_'
 * (URL-safe base64, which it would accept) and CR are refused here.
 */
function decodeFullLines(data: Buffer, pos: number, end: number): { data: Buffer; next: number } | undefined {
  let next = pos
  while (next + 65 <= end && data[next + 64] === 10) next += 65
  if (next === pos) return undefined
  const block = data.subarray(pos, next)
  if (block.indexOf(0x2d) >= 0 || block.indexOf(0x5f) >= 0 || block.indexOf(13) >= 0) return undefined
  const decoded = Buffer.from(data.toString('latin1', pos, next), 'base64')
  return decoded.length === ((next - pos) / 65) * 48 ? { data: decoded, next } : undefined
}

export async function* armorDecode(source: ByteSource): ByteSource {
  // An object, not a local: the nested functions move it along.
  const at: { state: 'before' | 'body' | 'after' } = { state: 'before' }
  let finalSeen = false
  let leading = 0
  let pending: Buffer = Buffer.alloc(0)

  /** One line inside the block (without its line end); the decoded bytes. */
  const bodyLineBytes = (line: string): Buffer | undefined => {
    if (line === ARMOR_END) {
      at.state = 'after'
      return undefined
    }
    if (finalSeen) throw armorError('a line follows the last (short or padded) line')
    if (!line.length) throw armorError('empty line inside the block')
    if (line.length > 64) throw armorError('line longer than 64 columns')
    if (!bodyLine.test(line) || line.length % 4) throw armorError('invalid base64 line')
    const decoded = Buffer.from(line, 'base64')
    if (decoded.toString('base64') !== line) throw armorError('non-canonical base64')
    if (line.length < 64 || line.endsWith('=')) finalSeen = true
    return decoded
  }

  /** Handles the bytes data[0, end) (complete lines only, unless `last`). */
  function* consume(data: Buffer, end: number, last: boolean): Generator<Buffer> {
    let pos = 0
    while (pos < end) {
      if (at.state === 'before') {
        while (pos < end && isWhitespace(data[pos])) pos++
        leading += pos
        if (leading > MAX_LEADING_WHITESPACE) throw armorError('too much whitespace before the BEGIN line')
        if (pos >= end) return
      }
      if (at.state === 'after') {
        for (; pos < end; pos++) if (!isWhitespace(data[pos])) throw armorError('trailing data after the END line')
        return
      }
      if (at.state === 'body' && !finalSeen) {
        const block = decodeFullLines(data, pos, end)
        if (block) {
          yield block.data
          pos = block.next
          continue
        }
      }
      let newline = data.indexOf(10, pos)
      if (newline < 0 || newline >= end) {
        if (!last) return
        newline = end
      }
      let line = data.toString('latin1', pos, newline)
      if (line.endsWith('\r')) line = line.slice(0, -1)
      pos = newline + 1
      if (at.state === 'before') {
        if (line !== ARMOR_BEGIN) throw armorError('the first line is not the BEGIN line')
        at.state = 'body'
        continue
      }
      const decoded = bodyLineBytes(line)
      if (decoded?.length) yield decoded
    }
  }

  for await (const chunk of source) {
    const data = pending.length ? Buffer.concat([pending, chunk]) : Buffer.from(chunk.buffer, chunk.byteOffset, chunk.length)
    const end = at.state === 'after' ? data.length : data.lastIndexOf(10) + 1
    if (end > 0) yield* consume(data, end, false)
    pending = Buffer.from(data.subarray(end))
  }
  if (pending.length) yield* consume(pending, pending.length, true)
  if (at.state !== 'after') throw armorError(at.state === 'before' ? 'no BEGIN line' : 'the END line is missing (truncated)')
}
