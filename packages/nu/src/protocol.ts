import type { Readable, Writable } from 'node:stream'

/**
 * The Nushell plugin protocol over stdio with the JSON encoding: the plugin announces `json`,
 * then both sides exchange one JSON message per line.
 */

/** The Nushell versions this plugin speaks the protocol of (0.x: one minor = one protocol version). */
export const supportedNu = { major: 0, minMinor: 108, maxMinor: 115 } as const

/** Set to 1 to talk to a Nushell outside the supported range anyway. */
export const anyVersionEnv = 'PROV_NU_ANY_VERSION'

export function supportedRange(): string {
  return `${supportedNu.major}.${supportedNu.minMinor} to ${supportedNu.major}.${supportedNu.maxMinor}`
}

/** Why this engine version is refused, or undefined when it is supported. */
export function versionProblem(version: string, env: NodeJS.ProcessEnv = process.env): string | undefined {
  const match = /^(\d+)\.(\d+)\.(\d+)/.exec(version)
  const supported = match && Number(match[1]) === supportedNu.major && Number(match[2]) >= supportedNu.minMinor && Number(match[2]) <= supportedNu.maxMinor
  if (supported || env[anyVersionEnv] === '1') return undefined
  return `Nushell ${version} is not supported by nu_plugin_prov (supported: Nushell ${supportedRange()})`
}

export type Message = Record<string, unknown> | string

/**
 * Cuts a text stream into lines. A line may arrive in thousands of chunks (one 16 MB value is one
 * message): the pieces wait in a list and only the new chunk is searched for the line end, so the
 * work stays linear in the size of the input.
 */
export class LineSplitter {
  private pieces: string[] = []
  constructor(private readonly onLine: (line: string) => void) {}

  push(chunk: string): void {
    let start = 0
    let newline = chunk.indexOf('\n')
    while (newline >= 0) {
      this.pieces.push(chunk.slice(start, newline))
      const line = this.pieces.length === 1 ? this.pieces[0] : this.pieces.join('')
      this.pieces = []
      this.onLine(line)
      start = newline + 1
      newline = chunk.indexOf('\n', start)
    }
    if (start < chunk.length) this.pieces.push(chunk.slice(start))
  }

  /** The last line, when the stream did not end with a newline. */
  end(): void {
    if (!this.pieces.length) return
    const line = this.pieces.join('')
    this.pieces = []
    if (line) this.onLine(line)
  }
}

/** Reads newline-separated JSON messages; the engine writes one per line. */
export class MessageReader {
  constructor(input: Readable, onMessage: (message: Message) => void, onEnd: () => void, onBadMessage: (line: string, error: Error) => void) {
    const lines = new LineSplitter((raw) => {
      const line = raw.trim()
      if (!line) return
      let message: Message | undefined
      try {
        message = JSON.parse(line) as Message
      } catch (error) {
        onBadMessage(line, error as Error)
      }
      if (message !== undefined) onMessage(message)
    })
    input.setEncoding('utf8')
    input.on('data', (chunk: string) => lines.push(chunk))
    input.on('end', onEnd)
    input.on('close', onEnd)
  }
}

/** Writes messages, one JSON document per line, after the encoding preamble. */
export class MessageWriter {
  private closed = false
  constructor(
    private readonly output: Writable,
    onClosed: () => void,
  ) {
    // The engine went away (it exits as soon as a script is done): nothing more can be sent.
    output.on('error', () => {
      if (this.closed) return
      this.closed = true
      onClosed()
    })
    output.write('\x04json')
  }

  send(message: Message): void {
    if (!this.closed) this.output.write(`${JSON.stringify(message)}\n`)
  }
}
