import { describe, expect, it } from 'vitest'
import { axis, formatTick, renderCurves } from '../bench/chart.mjs'

// The SVG writer of `npm run bench -- --curves`: its output is read by people, so the checks are on
// what a reader relies on (well-formed XML, one chart per measure, every point, honest axes).

const wellFormed = (svg: string) => {
  // A stray '<' or '&' outside a tag shows once the tags are taken out.
  expect(svg.startsWith('<svg xmlns="http://www.w3.org/2000/svg"')).toBe(true)
  expect(svg.trimEnd().endsWith('</svg>')).toBe(true)
  const text = svg.replace(/<[^<>]*>/g, '')
  expect(text).not.toMatch(/[<>]|&(?!amp;|lt;|gt;|quot;|#39;)/)
  const opened = svg.match(/<g\b/g)?.length ?? 0
  expect(svg.match(/<\/g>/g)?.length ?? 0).toBe(opened)
}

describe('bench cost-curve chart', () => {
  it('draws one chart per measure and every measured point of each series', () => {
    const svg = renderCurves([
      {
        title: 'P3 resolve',
        x: 'nodes',
        y: 'ms',
        series: [
          {
            name: 'prov',
            points: [
              [500, 2],
              [5000, 20],
              [50000, 210],
            ],
          },
        ],
      },
      {
        title: 'P6 encrypt',
        x: 'bytes',
        y: 'ms',
        series: [
          {
            name: 'prov',
            points: [
              [1e7, 200],
              [1e8, 900],
              [1.07e9, null],
            ],
          },
          {
            name: 'age',
            points: [
              [1e7, 40],
              [1e8, 110],
              [1.07e9, 800],
            ],
          },
        ],
      },
    ])
    wellFormed(svg)
    expect(svg.match(/<g class="chart"/g)).toHaveLength(2)
    const lines = [...svg.matchAll(/<polyline class="series" data-name="([^"]+)" points="([^"]+)"/g)].map((m) => [m[1], m[2].split(' ').length])
    expect(lines).toEqual([
      ['prov', 3],
      ['prov', 2],
      ['age', 3],
    ])
    expect(svg.match(/<circle /g)).toHaveLength(8)
  })

  it('escapes titles and names, and says when a measure has no point', () => {
    const svg = renderCurves([{ title: 'a < b & "c"', x: 'n', y: 'ms', series: [{ name: '<peer>', points: [[1, null]] }] }])
    wellFormed(svg)
    expect(svg).toContain('a &lt; b &amp; &quot;c&quot;')
    expect(svg).toContain('not measured')
    expect(() => renderCurves([])).toThrow(/no charts/)
  })

  it('uses a log axis with power-of-ten ticks only when values span more than 10x', () => {
    const log = axis([500, 5000, 50000])
    expect(log.log).toBe(true)
    expect(log.ticks).toEqual([100, 1000, 10000, 100000])
    expect(log.at(1000)).toBeCloseTo(1 / 3)
    const linear = axis([3, 7, 9])
    expect(linear.log).toBe(false)
    expect(linear.ticks[0]).toBe(0)
    expect(linear.max).toBeGreaterThanOrEqual(9)
    expect(linear.at(linear.max)).toBe(1)
    expect(formatTick(50000)).toBe('50k')
    expect(formatTick(1_073_741_824)).toBe('1.07G')
  })
})
