// A list stream to the Nushell engine with flow control: at most a window of records is in
// flight; past it the producing command is paused until the engine acknowledges.
import type { Message } from './protocol'
import type { NuValue } from './values'

/** What an output stream needs of the plugin: sending a message, and hearing that it ended. */
export interface StreamSink {
  send(message: Message): void
  streamEnded(id: number): void
}

/** Records in flight before the plugin waits for the engine's acknowledgements. */
const streamWindow = 32

/**
 * A list stream to the engine: at most `streamWindow` records wait for the engine's Ack; beyond
 * that, records queue here and the command's output is paused until the engine catches up.
 */
export class OutputStream {
  private unacked = 0
  private readonly queue: NuValue[] = []
  private ending = false
  ended = false
  dropped = false
  constructor(
    readonly id: number,
    private readonly plugin: StreamSink,
    private readonly flow: { pause(): void; resume(): void; stop(): void },
  ) {}

  push(value: NuValue): void {
    if (this.ended || this.dropped) return
    if (this.unacked < streamWindow) this.sendData(value)
    else {
      this.queue.push(value)
      this.flow.pause()
    }
  }

  private sendData(value: NuValue): void {
    this.unacked++
    this.plugin.send({ Data: [this.id, { List: value }] })
  }

  ack(): void {
    this.unacked = Math.max(0, this.unacked - 1)
    while (this.unacked < streamWindow && this.queue.length) this.sendData(this.queue.shift()!)
    if (!this.queue.length) {
      if (this.ending) this.end()
      else this.flow.resume()
    }
  }

  /** The engine wants no more: stop the command, forget what is queued, end the stream. */
  drop(): void {
    this.dropped = true
    this.queue.length = 0
    this.flow.stop()
    this.flow.resume()
    this.end()
  }

  /** Ends the stream once every queued record is sent. */
  end(): void {
    if (this.ended) return
    if (this.queue.length) {
      this.ending = true
      return
    }
    this.ended = true
    this.plugin.send({ End: this.id })
    this.plugin.streamEnded(this.id)
  }
}
