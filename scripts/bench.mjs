#!/usr/bin/env node
// Benchmark harness: runs bench/p*.mjs (or those named on the command line: `npm run bench -- P1 P3`),
// each measured side by side with its peer in one run, and writes bench/results/<id>.json plus
// bench/results/results.md. Targets are reported, never asserted. `npm run bench -- --curves` draws
// how the cost grows with the work instead (bench/results/curves.svg and curves.json).
import { existsSync, mkdirSync, readdirSync, readFileSync, writeFileSync } from 'node:fs'
import { loadavg } from 'node:os'
import { dirname, join } from 'node:path'
import { fileURLToPath, pathToFileURL } from 'node:url'

const root = join(dirname(fileURLToPath(import.meta.url)), '..')
const benchDir = join(root, 'bench')
const resultsDir = join(benchDir, 'results')
mkdirSync(resultsDir, { recursive: true })

const flags = process.argv.slice(2).filter((a) => a.startsWith('--'))
const unknown = flags.filter((f) => f !== '--curves')
if (unknown.length) {
  process.stderr.write(`bench: unknown option ${unknown[0]} (only --curves)\n`)
  process.exit(2)
}
const wanted = process.argv
  .slice(2)
  .filter((a) => !a.startsWith('--'))
  .map((a) => a.toUpperCase())
const files = readdirSync(benchDir)
  .filter((f) => /^p\d+-.*\.mjs$/.test(f))
  .sort((a, b) => Number(a.slice(1).split('-')[0]) - Number(b.slice(1).split('-')[0]))
  .filter((f) => !wanted.length || wanted.includes(f.split('-')[0].toUpperCase()))

if (flags.includes('--curves')) {
  await drawCurves(files)
  process.exit(0)
}

/**
 * `--curves`: each benchmark that exports `curves()` measures its cost at growing sizes; the charts
 * go to bench/results/curves.svg (one per measure, prov and peer on the same axes) and the data to
 * curves.json. A benchmark that fails is drawn as "not measured", with the reason in the JSON.
 */
async function drawCurves(selected) {
  const { renderCurves } = await import(pathToFileURL(join(benchDir, 'chart.mjs')).href)
  const charts = []
  for (const file of selected) {
    const mod = await import(pathToFileURL(join(benchDir, file)).href)
    if (typeof mod.curves !== 'function') continue
    process.stderr.write(`bench --curves: ${file}\n`)
    try {
      charts.push(...(await mod.curves({ root, log: (m) => process.stderr.write(`  ${m}\n`) })))
    } catch (error) {
      process.stderr.write(`  could not run: ${error.message}\n`)
      const id = file.split('-')[0].toUpperCase()
      charts.push({ id, title: `${id} (failed)`, x: '', y: '', series: [], error: error.message })
    }
  }
  // A partial run (`npm run bench -- P8 --curves`) replaces only its own charts.
  const dataFile = join(resultsDir, 'curves.json')
  if (wanted.length && existsSync(dataFile)) {
    const rerun = new Set(selected.map((f) => f.split('-')[0].toUpperCase()))
    const kept = JSON.parse(readFileSync(dataFile, 'utf8')).charts.filter((chart) => !rerun.has(chart.id))
    charts.unshift(...kept)
    charts.sort((a, b) => Number(a.id.slice(1)) - Number(b.id.slice(1)))
  }
  const date = new Date().toISOString()
  writeFileSync(dataFile, `${JSON.stringify({ date, node: process.version, charts }, null, 2)}\n`)
  writeFileSync(join(resultsDir, 'curves.svg'), renderCurves(charts, { title: `prov cost curves (${date.slice(0, 10)}, node ${process.version}, 2 cores)` }))
  process.stdout.write(`bench: wrote ${charts.length} charts to bench/results/curves.svg and curves.json\n`)
}

const results = []
for (const file of files) {
  const mod = await import(pathToFileURL(join(benchDir, file)).href)
  process.stderr.write(`bench: ${file}\n`)
  try {
    const result = await mod.default({ root, log: (m) => process.stderr.write(`  ${m}\n`) })
    results.push(result)
    const stamp = { date: new Date().toISOString(), node: process.version, loadavg: loadavg() }
    writeFileSync(join(resultsDir, `${result.id}.json`), `${JSON.stringify({ ...result, ...stamp }, null, 2)}\n`)
  } catch (error) {
    const id = file.split('-')[0].toUpperCase()
    process.stderr.write(`  ${id} could not run: ${error.message}\n`)
    results.push({ id, title: file, rows: [{ metric: 'error', prov: null, peer: null, ratio: null, target: '', pass: false, note: error.message }] })
  }
}

const fmt = (v, unit) => (v === null || v === undefined ? '—' : typeof v === 'number' ? `${Number(v.toFixed(v < 10 ? 2 : 1))}${unit ?? ''}` : String(v))
const header = ['| id | metric | prov | peer | ratio | target | met |', '| --- | --- | --- | --- | --- | --- | --- |']
const rowsById = new Map()
for (const r of results) {
  rowsById.set(
    r.id,
    r.rows.map(
      (row) =>
        `| ${r.id} | ${row.metric} | ${fmt(row.prov, row.unit)} | ${row.peerName ? `${row.peerName}: ` : ''}${fmt(row.peer, row.unit)} | ${fmt(row.ratio)} | ${row.target} | ${row.pass === null || row.pass === undefined ? '—' : row.pass ? 'yes' : 'no'} |`,
    ),
  )
}
const table = `${[...header, ...[...rowsById.values()].flat()].join('\n')}\n`
// A partial run (`npm run bench -- P10`) replaces only its own rows in results.md.
const resultsFile = join(resultsDir, 'results.md')
const kept = new Map()
let previousTitle = ''
if (wanted.length && existsSync(resultsFile)) {
  const previous = readFileSync(resultsFile, 'utf8')
  previousTitle = previous.split('\n')[0]
  for (const line of previous.split('\n')) {
    const id = /^\| (P\d+) \|/.exec(line)?.[1]
    if (id && !rowsById.has(id)) kept.set(id, [...(kept.get(id) ?? []), `${line}`])
  }
}
const allRows = [...kept, ...rowsById].sort(([a], [b]) => Number(a.slice(1)) - Number(b.slice(1))).flatMap(([, rows]) => rows)
const title = kept.size
  ? `${previousTitle}; ${[...rowsById.keys()].join(', ')} re-run ${new Date().toISOString()}`
  : `# Benchmark results (${new Date().toISOString()}, node ${process.version}, load average at the end ${loadavg()
      .map((l) => l.toFixed(1))
      .join(' ')})`
writeFileSync(resultsFile, `${title}\n\n${[...header, ...allRows].join('\n')}\n`)
process.stdout.write(table)
