import fc from 'fast-check'
import { describe, expect, it } from 'vitest'
import { ProvError } from '../src/errors'
import { expectSchema, parseInput } from '../src/stdin'

describe('parseInput', () => {
  it('reads a JSON array, a JSON object, NDJSON and YAML', () => {
    expect(parseInput('[{"a":1},{"a":2}]')).toEqual({ format: 'json', records: [{ a: 1 }, { a: 2 }] })
    expect(parseInput('{"a":1}')).toEqual({ format: 'json', records: [{ a: 1 }] })
    expect(parseInput('{"a":1}\n{"a":2}\n')).toEqual({ format: 'ndjson', records: [{ a: 1 }, { a: 2 }] })
    expect(parseInput('- a: 1\n- a: 2\n')).toEqual({ format: 'yaml', records: [{ a: 1 }, { a: 2 }] })
    expect(parseInput('a: 1\n---\na: 2\n').records).toEqual([{ a: 1 }, { a: 2 }])
    expect(parseInput('  \n').records).toEqual([])
  })

  it('refuses plain text, broken JSON and broken NDJSON with exit 2 and a line', () => {
    for (const [text, pattern] of [
      ['hello world', /not JSON, NDJSON or YAML records/],
      ['{"a": 1', /not valid JSON/],
      ['{"a":1}\n{"a":\n', /not valid NDJSON/],
      ['a: [1\n', /not JSON, NDJSON or YAML/],
      ['\u0000\u0001binary', /binary data/],
    ] as const) {
      let error: unknown
      try {
        parseInput(text)
      } catch (e) {
        error = e
      }
      expect(error, text).toBeInstanceOf(ProvError)
      expect((error as ProvError).code).toBe(2)
      expect((error as ProvError).message).toMatch(pattern)
    }
  })

  it('never crashes on random or truncated input: records or exit 2', () => {
    const sample = JSON.stringify([{ schema: 'prov.server/v1', name: 'web-01', labels: { role: 'web' }, ip: '10.0.0.2' }])
    fc.assert(
      fc.property(
        fc.oneof(
          fc.string(),
          fc.nat(sample.length).map((n) => sample.slice(0, n)),
          fc.uint8Array().map((b) => Buffer.from(b).toString('utf8')),
        ),
        (text) => {
          try {
            const parsed = parseInput(text)
            expect(Array.isArray(parsed.records)).toBe(true)
          } catch (error) {
            expect(error).toBeInstanceOf(ProvError)
            expect((error as ProvError).code).toBe(2)
            expect((error as ProvError).message.split('\n')).toHaveLength(1)
          }
        },
      ),
      { numRuns: 500 },
    )
  })
})

describe('expectSchema', () => {
  it('accepts known schema ids and refuses others', () => {
    expect(expectSchema([{ schema: 'prov.server/v1' }], ['prov.server/v1'])).toHaveLength(1)
    expect(() => expectSchema([{ schema: 'prov.taskserv.result/v1' }], ['prov.server/v1'])).toThrow(/expected prov.server\/v1/)
    expect(() => expectSchema([{ schema: 'prov.server/v9' }], ['prov.server/v1'])).toThrow(/unsupported schema version/)
    expect(() => expectSchema(['x'], ['prov.server/v1'])).toThrow(/not an object/)
  })
})
