import { describe, expect, it } from 'vitest'
import { SseDecoder } from '../src/util/sse'

describe('SseDecoder', () => {
  it('gives each event its data as the stream arrives, whatever the chunking and line endings', () => {
    const stream = 'id: 1\ndata: {"seq":1}\n\n: keep-alive\n\ndata: {"a":\r\ndata:  2}\r\n\r\nevent: x\ndata: last'
    for (const size of [1, 3, 7, stream.length]) {
      const decoder = new SseDecoder()
      const payloads: string[] = []
      for (let i = 0; i < stream.length; i += size) payloads.push(...decoder.push(stream.slice(i, i + size)))
      // Comments and events without data give nothing; one leading space is dropped per line; an unfinished event waits.
      expect(payloads, `chunks of ${size}`).toEqual(['{"seq":1}', '{"a":\n 2}'])
      expect(decoder.push('\n\n')).toEqual(['last'])
    }
  })
})
