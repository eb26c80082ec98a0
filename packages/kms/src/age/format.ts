/**
 * The age v1 header (age-encryption.org/v1), parsed strictly, in one place:
 *
 *   header = "age-encryption.org/v1\n" stanza+ "--- " b64(MAC) "\n"
 *   stanza = "-> " arg (" " arg)* "\n" body lines: canonical base64 wrapped at 64 columns, ending
 *            with a line shorter than 64 columns (possibly empty)
 *   MAC    = HMAC-SHA256(HKDF(file key, "", "header"), header up to and including "---")
 *
 * Every failure is a ProvError whose `details.reason` says which stage failed (the classes of the
 * C2SP age test vectors): a damaged file is exit 2, a file that is not for us or was altered is
 * exit 4.
 */
import { createHmac, timingSafeEqual } from 'node:crypto'
import { deniedError, type ProvError, usageError } from '@prov/core'
import { b64, decodeCanonicalBase64, hkdf } from './primitives'

export const VERSION_LINE = 'age-encryption.org/v1'
/** Headers beyond this are refused (an X25519 stanza is ~120 bytes, a hybrid one ~1.6 KiB). */
export const MAX_HEADER_SIZE = 1024 * 1024

/**
 * Which stage of reading an age file failed. `payload` is a chunk that does not authenticate
 * (exit 4); `truncated` and `malformed-payload` are payloads cut short or built wrong (exit 2).
 */
export type AgeFailure = 'armor' | 'header' | 'no-match' | 'hmac' | 'payload' | 'truncated' | 'malformed-payload'

export function ageFailure(reason: AgeFailure, message: string, hint?: string): ProvError {
  const options = { hint, details: { reason } }
  if (reason === 'armor' || reason === 'header') return usageError(`not a valid age file: ${message}`, options)
  if (reason === 'truncated' || reason === 'malformed-payload') return usageError(message, options)
  return deniedError(message, options)
}

/** One recipient stanza of a header: its arguments (the first names its type) and its body. */
export interface Stanza {
  args: string[]
  body: Buffer
}

export interface AgeHeader {
  stanzas: Stanza[]
  /** The header up to and including "---": what the MAC covers. */
  macInput: Buffer
  mac: Buffer
  /** The header as read, MAC line included. */
  raw: Buffer
  /** Bytes of the header including the MAC line's newline. */
  length: number
}

const argPattern = /^[\x21-\x7e]+$/

function canonical(text: string, what: string): Buffer {
  const data = decodeCanonicalBase64(text)
  if (!data) throw ageFailure('header', `bad base64 in the ${what}`)
  return data
}

/**
 * Parses the header at the start of `data`: the header, or undefined while more bytes are
 * needed (`complete` says the input has ended, so a partial header is a failure).
 */
export function parseHeader(data: Buffer, complete: boolean): AgeHeader | undefined {
  let pos = 0
  const nextLine = (): string | undefined => {
    const end = data.indexOf(10, pos)
    if (end < 0) {
      if (complete) throw ageFailure('header', data.length ? 'the header is truncated' : 'the file is empty')
      return undefined
    }
    const line = data.toString('latin1', pos, end)
    pos = end + 1
    return line
  }
  const version = nextLine()
  if (version === undefined) return undefined
  if (version !== VERSION_LINE) throw ageFailure('header', 'unsupported version line')
  const stanzas: Stanza[] = []
  for (;;) {
    const lineStart = pos
    const line = nextLine()
    if (line === undefined) return undefined
    if (line.startsWith('--- ')) {
      if (!stanzas.length) throw ageFailure('header', 'no recipient stanza')
      const mac = canonical(line.slice(4), 'header MAC')
      if (mac.length !== 32) throw ageFailure('header', 'bad header MAC length')
      return { stanzas, macInput: data.subarray(0, lineStart + 3), mac, raw: data.subarray(0, pos), length: pos }
    }
    if (!line.startsWith('-> ')) throw ageFailure('header', 'malformed header line')
    const args = line.slice(3).split(' ')
    if (args.some((arg) => !argPattern.test(arg))) throw ageFailure('header', 'malformed stanza arguments')
    let body = ''
    for (;;) {
      const bodyLine = nextLine()
      if (bodyLine === undefined) return undefined
      if (bodyLine.length > 64) throw ageFailure('header', 'stanza body line too long')
      body += bodyLine
      if (bodyLine.length < 64) break
    }
    stanzas.push({ args, body: canonical(body, 'stanza body') })
  }
}

/** The header text up to "---" for these stanzas (what the MAC covers). */
export function encodeHeaderNoMac(stanzas: Stanza[]): string {
  let header = `${VERSION_LINE}\n`
  for (const stanza of stanzas) {
    header += `-> ${stanza.args.join(' ')}\n`
    const body = b64(stanza.body)
    for (let i = 0; i < body.length; i += 64) header += `${body.slice(i, i + 64)}\n`
    if (body.length % 64 === 0) header += '\n'
  }
  return `${header}---`
}

export function headerMac(fileKey: Buffer, macInput: Buffer | string): Buffer {
  return createHmac('sha256', hkdf(fileKey, Buffer.alloc(0), 'header'))
    .update(macInput)
    .digest()
}

/** The whole header, MAC line included. */
export function encodeHeader(stanzas: Stanza[], fileKey: Buffer): Buffer {
  const noMac = encodeHeaderNoMac(stanzas)
  return Buffer.from(`${noMac} ${b64(headerMac(fileKey, noMac))}\n`, 'latin1')
}

export function verifyHeaderMac(header: AgeHeader, fileKey: Buffer): void {
  if (!timingSafeEqual(headerMac(fileKey, header.macInput), header.mac)) {
    throw ageFailure('hmac', 'age decryption failed: header MAC mismatch', 'the file was altered')
  }
}
