/** The last lines of an item's output (stdout and stderr interleaved as they arrive), redacted. */
import { redactString } from '@prov/core'
import { RESULT_MARK } from './program'

export type Stream = 'stdout' | 'stderr'

export class OutputTail {
  private lines: string[] = []
  private partial: Record<Stream, string> = { stdout: '', stderr: '' }
  constructor(
    private readonly keep: number,
    private readonly onLine: (stream: Stream, line: string) => void,
  ) {}
  push(stream: Stream, chunk: string): void {
    const text = this.partial[stream] + chunk
    const parts = text.split('\n')
    this.partial[stream] = parts.pop() ?? ''
    for (const line of parts) this.add(stream, line)
  }
  flush(): void {
    for (const stream of ['stdout', 'stderr'] as const) {
      if (this.partial[stream]) this.add(stream, this.partial[stream])
      this.partial[stream] = ''
    }
  }
  private add(stream: Stream, raw: string): void {
    if (raw.startsWith(RESULT_MARK) || (raw === '' && stream === 'stdout')) return
    // Progress bars redraw with \r: keep what the last redraw shows.
    const line = redactString(raw.replace(/\r+$/, '').split('\r').pop() ?? '')
    this.lines.push(line)
    if (this.lines.length > this.keep) this.lines.shift()
    this.onLine(stream, line)
  }
  text(): string {
    return this.lines.join('\n')
  }
}
