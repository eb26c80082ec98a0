import { describe, expect, it } from 'vitest'
import { fromNu, toNu, ValueError, valueToStdin, valueToWords } from '../src/values'

const span = { start: 3, end: 7 }

describe('JSON records as Nushell values', () => {
  it('keeps kinds: RFC 3339 timestamps become dates, *_ms and sizes stay ints, nested records and lists stay structured', () => {
    const value = toNu(
      {
        schema: 'prov.server.exec/v1',
        created_at: '2026-11-30T04:00:00.123Z',
        duration_ms: 12,
        size: 1048576,
        ratio: 0.5,
        tags: ['a'],
        ssh: { port: 22 },
        gone: null,
      },
      span,
    )
    expect(value).toEqual({
      Record: {
        val: {
          schema: { String: { val: 'prov.server.exec/v1', span } },
          created_at: { Date: { val: '2026-11-30T04:00:00.123Z', span } },
          duration_ms: { Int: { val: 12, span } },
          size: { Int: { val: 1048576, span } },
          ratio: { Float: { val: 0.5, span } },
          tags: { List: { vals: [{ String: { val: 'a', span } }], span } },
          ssh: { Record: { val: { port: { Int: { val: 22, span } } }, span } },
          gone: { Nothing: { span } },
        },
        span,
      },
    })
  })

  it('leaves strings that only look like dates as strings', () => {
    for (const text of ['2026-11-30', '2026-11-30T04:00', '2026-13-45T99:00:00Z', 'at 2026-11-30T04:00:00Z']) {
      expect(Object.keys(toNu(text, span))[0], text).toBe('String')
    }
  })
})

describe('Nushell values as stdin and arguments', () => {
  it('passes strings and binary as they are, records and lists as JSON', () => {
    expect(valueToStdin({ String: { val: 's3cret', span } }).toString()).toBe('s3cret')
    expect(valueToStdin({ Binary: { val: [0, 255], span } })).toEqual(Buffer.from([0, 255]))
    expect(JSON.parse(valueToStdin({ Record: { val: { when: { Date: { val: '2026-01-01T00:00:00+00:00', span } } }, span } }).toString())).toEqual({
      when: '2026-01-01T00:00:00+00:00',
    })
    expect(valueToStdin({ Nothing: { span } }).length).toBe(0)
  })

  it('turns lists into repeated words and scalars into text', () => {
    expect(valueToWords({ List: { vals: [{ String: { val: 'a', span } }, { Int: { val: 2, span } }], span } })).toEqual(['a', '2'])
    expect(valueToWords({ Bool: { val: true, span } })).toEqual(['true'])
  })

  it('refuses closures, ranges and error values with the value span', () => {
    expect(() => fromNu({ Closure: { val: { block_id: 1, captures: [] }, span } })).toThrow(/a closure cannot be input/)
    expect(() => fromNu({ Range: { val: {}, span } })).toThrow(ValueError)
    try {
      fromNu({ Error: { error: { msg: 'upstream failed', labels: [], code: null, url: null, help: null, inner: [] }, span } })
      expect.unreachable()
    } catch (error) {
      expect((error as ValueError).message).toBe('upstream failed')
      expect((error as ValueError).span).toEqual(span)
    }
  })
})
