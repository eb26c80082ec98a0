import fc from 'fast-check'
import { describe, expect, it } from 'vitest'
import { interpolateConfig, parseTemplate } from '../src/config/interpolate'
import { ProvError } from '../src/errors'

describe('interpolation parser (property)', () => {
  const pieces = fc.constantFrom(
    '{{',
    '}}',
    '||',
    "'",
    '"',
    'a.b',
    'env.X',
    ' ',
    'now.date',
    'x',
    '.',
    '\\{{',
    'git.nope',
    'workspace.path',
    '{{a.b}}',
    '{{c}}',
  )
  const template = fc.oneof(
    fc.string(),
    fc.array(pieces, { maxLength: 12 }).map((p) => p.join('')),
  )

  it('random templates either resolve or fail with exit 3 and one line', () => {
    fc.assert(
      fc.property(template, template, (a, b) => {
        try {
          parseTemplate(a, 'k')
          const out = interpolateConfig({ a: { b: a }, c: b }, { env: { X: '1' }, workspacePath: '/w', gitDir: '/nonexistent' })
          expect(out).toBeTypeOf('object')
        } catch (error) {
          expect(error).toBeInstanceOf(ProvError)
          expect((error as ProvError).code).toBe(3)
          expect((error as ProvError).message).not.toContain('\n')
        }
      }),
      { numRuns: 1000 },
    )
  })

  it('leaves strings without templates untouched and keeps escapes literal', () => {
    fc.assert(
      fc.property(
        fc.string().filter((s) => !s.includes('{{')),
        (s) => {
          expect(interpolateConfig({ k: s }).k).toBe(s)
        },
      ),
    )
    expect(interpolateConfig({ k: '\\{{not}} a ref' }).k).toBe('{{not}} a ref')
  })
})
