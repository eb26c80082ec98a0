/**
 * Server-Sent Events as the orchestrator sends them: events end with a blank line, and an
 * event's `data:` lines joined by newlines are its payload. Text in, payloads out, as the
 * stream arrives; no Node or DOM API, so the dashboard bundles the same decoder.
 */
export class SseDecoder {
  private buffer = ''
  /** A chunk ended with CR: it may be the first half of a CRLF. */
  private carriageReturn = false

  /** Adds received text; returns the payload of every event it completed (events with no data are skipped). */
  push(text: string): string[] {
    let received = this.carriageReturn ? `\r${text}` : text
    this.carriageReturn = received.endsWith('\r')
    if (this.carriageReturn) received = received.slice(0, -1)
    this.buffer += received.replace(/\r\n?/g, '\n')
    const payloads: string[] = []
    let end = this.buffer.indexOf('\n\n')
    while (end >= 0) {
      const data = this.buffer
        .slice(0, end)
        .split('\n')
        .filter((line) => line.startsWith('data:'))
        .map((line) => line.slice(5).replace(/^ /, ''))
        .join('\n')
      if (data) payloads.push(data)
      this.buffer = this.buffer.slice(end + 2)
      end = this.buffer.indexOf('\n\n')
    }
    return payloads
  }
}
