// Cost curves as one SVG file: one small chart per measure, prov and its peer on the same axes.
// Dependency-free on purpose: it runs wherever `npm run bench` runs, with no browser.

const palette = ['#1f63b4', '#d1495b', '#2a9d55', '#8a5cc2', '#c77d12']
const escapeXml = (text) => String(text).replace(/[&<>"']/g, (c) => ({ '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;', "'": '&#39;' })[c])

/** Compact numbers for tick labels: 1200 -> 1.2k, 50000 -> 50k, 0.25 -> 0.25. */
export function formatTick(value) {
  const abs = Math.abs(value)
  const trim = (n) => String(Number(n.toPrecision(3)))
  if (abs >= 1e9) return `${trim(value / 1e9)}G`
  if (abs >= 1e6) return `${trim(value / 1e6)}M`
  if (abs >= 1e3) return `${trim(value / 1e3)}k`
  return trim(value)
}

/**
 * An axis over [min, max] of positive values: logarithmic when they span more than a factor of 10
 * (ticks at powers of ten), else linear from 0 (about five round ticks).
 */
export function axis(values, { forceLinear = false } = {}) {
  const finite = values.filter((v) => Number.isFinite(v))
  if (!finite.length) throw new Error('an axis needs at least one finite value')
  let min = Math.min(...finite)
  let max = Math.max(...finite)
  const log = !forceLinear && min > 0 && max / min > 10
  if (log) {
    const lo = Math.floor(Math.log10(min))
    const hi = Math.ceil(Math.log10(max))
    const ticks = []
    for (let e = lo; e <= hi; e++) ticks.push(10 ** e)
    return { log, min: 10 ** lo, max: 10 ** hi, ticks, at: (v) => (Math.log10(v) - lo) / (hi - lo || 1) }
  }
  min = Math.min(0, min)
  if (max === min) max = min + 1
  const rough = (max - min) / 5
  const magnitude = 10 ** Math.floor(Math.log10(rough))
  const step = [1, 2, 2.5, 5, 10].map((f) => f * magnitude).find((s) => s >= rough)
  const top = Math.ceil(max / step) * step
  const ticks = []
  for (let t = min; t <= top + step / 2; t += step) ticks.push(Number(t.toPrecision(12)))
  return { log, min, max: top, ticks, at: (v) => (v - min) / (top - min) }
}

/**
 * charts: [{ title, x: label, y: label, series: [{ name, points: [[x, y], ...] }] }]; points whose
 * y is null or not a number (a size a tool could not run) are left out of the line.
 * Returns the SVG document as a string.
 */
export function renderCurves(charts, { columns = 3, width = 320, height = 240, title = 'prov cost curves' } = {}) {
  if (!charts.length) throw new Error('no charts to draw')
  const rows = Math.ceil(charts.length / columns)
  const pad = { left: 52, right: 12, top: 40, bottom: 58 }
  const header = 28
  const total = { width: columns * width, height: header + rows * height }
  const parts = [
    `<svg xmlns="http://www.w3.org/2000/svg" width="${total.width}" height="${total.height}" viewBox="0 0 ${total.width} ${total.height}" font-family="sans-serif" font-size="10">`,
    `<rect width="100%" height="100%" fill="#fff"/>`,
    `<text x="8" y="18" font-size="13" font-weight="bold">${escapeXml(title)}</text>`,
  ]
  charts.forEach((chart, index) => {
    const ox = (index % columns) * width
    const oy = header + Math.floor(index / columns) * height
    const plot = { x: ox + pad.left, y: oy + pad.top, w: width - pad.left - pad.right, h: height - pad.top - pad.bottom }
    const points = chart.series.flatMap((s) => s.points.filter(([, y]) => typeof y === 'number' && Number.isFinite(y)))
    parts.push(`<g class="chart" data-title="${escapeXml(chart.title)}">`)
    parts.push(`<text x="${ox + 8}" y="${oy + 14}" font-size="11" font-weight="bold">${escapeXml(chart.title)}</text>`)
    if (!points.length) {
      parts.push(`<text x="${plot.x}" y="${plot.y + plot.h / 2}" fill="#888">not measured</text></g>`)
      return
    }
    const xa = axis(points.map(([x]) => x))
    const ya = axis(points.map(([, y]) => y))
    const px = (x) => plot.x + xa.at(x) * plot.w
    const py = (y) => plot.y + plot.h - ya.at(y) * plot.h
    parts.push(`<rect x="${plot.x}" y="${plot.y}" width="${plot.w}" height="${plot.h}" fill="none" stroke="#999"/>`)
    for (const t of ya.ticks) {
      const y = py(t).toFixed(1)
      parts.push(`<line x1="${plot.x}" x2="${plot.x + plot.w}" y1="${y}" y2="${y}" stroke="#eee"/>`)
      parts.push(`<text x="${plot.x - 4}" y="${y}" text-anchor="end" dominant-baseline="middle">${formatTick(t)}</text>`)
    }
    for (const t of xa.ticks) {
      const x = px(t).toFixed(1)
      parts.push(`<text x="${x}" y="${plot.y + plot.h + 12}" text-anchor="middle">${formatTick(t)}</text>`)
    }
    parts.push(
      `<text x="${plot.x + plot.w / 2}" y="${plot.y + plot.h + 26}" text-anchor="middle" fill="#444">${escapeXml(chart.x)}${xa.log ? ' (log)' : ''}</text>`,
    )
    parts.push(`<text x="${ox + 8}" y="${oy + 28}" fill="#444">${escapeXml(chart.y)}${ya.log ? ' (log)' : ''}</text>`)
    // Legend entries side by side under the axis label, each as wide as its name (about 6 px a character).
    let legendX = plot.x
    chart.series.forEach((series, s) => {
      const color = palette[s % palette.length]
      const drawn = series.points.filter(([, y]) => typeof y === 'number' && Number.isFinite(y))
      if (drawn.length) {
        const coords = drawn.map(([x, y]) => `${px(x).toFixed(1)},${py(y).toFixed(1)}`).join(' ')
        parts.push(`<polyline class="series" data-name="${escapeXml(series.name)}" points="${coords}" fill="none" stroke="${color}" stroke-width="1.6"/>`)
        for (const [x, y] of drawn) parts.push(`<circle cx="${px(x).toFixed(1)}" cy="${py(y).toFixed(1)}" r="2.4" fill="${color}"/>`)
      }
      const ly = oy + height - 6
      const lx = legendX
      legendX += 30 + String(series.name).length * 6
      parts.push(`<rect x="${lx}" y="${ly - 7}" width="10" height="3" fill="${color}"/>`)
      parts.push(`<text x="${lx + 14}" y="${ly - 4}">${escapeXml(series.name)}</text>`)
    })
    parts.push('</g>')
  })
  parts.push('</svg>')
  return `${parts.join('\n')}\n`
}
