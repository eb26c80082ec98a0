#!/usr/bin/env node
// Benchmark harness: runs bench/p*.mjs (or those named on the command line: `npm run bench -- P1 P3`),
// each measured side by side with its peer in one run, and writes bench/results/<id>.json plus
// bench/results/results.md. Targets are reported, never asserted.
import { mkdirSync, readdirSync, writeFileSync } from 'node:fs'
import { dirname, join } from 'node:path'
import { fileURLToPath, pathToFileURL } from 'node:url'

const root = join(dirname(fileURLToPath(import.meta.url)), '..')
const benchDir = join(root, 'bench')
const resultsDir = join(benchDir, 'results')
mkdirSync(resultsDir, { recursive: true })

const wanted = process.argv.slice(2).map((a) => a.toUpperCase())
const files = readdirSync(benchDir)
  .filter((f) => /^p\d+-.*\.mjs$/.test(f))
  .sort((a, b) => Number(a.slice(1).split('-')[0]) - Number(b.slice(1).split('-')[0]))
  .filter((f) => !wanted.length || wanted.includes(f.split('-')[0].toUpperCase()))

const results = []
for (const file of files) {
  const mod = await import(pathToFileURL(join(benchDir, file)).href)
  process.stderr.write(`bench: ${file}\n`)
  try {
    const result = await mod.default({ root, log: (m) => process.stderr.write(`  ${m}\n`) })
    results.push(result)
    writeFileSync(join(resultsDir, `${result.id}.json`), `${JSON.stringify({ ...result, date: new Date().toISOString(), node: process.version }, null, 2)}\n`)
  } catch (error) {
    const id = file.split('-')[0].toUpperCase()
    process.stderr.write(`  ${id} could not run: ${error.message}\n`)
    results.push({ id, title: file, rows: [{ metric: 'error', prov: null, peer: null, ratio: null, target: '', pass: false, note: error.message }] })
  }
}

const fmt = (v, unit) => (v === null || v === undefined ? '—' : typeof v === 'number' ? `${Number(v.toFixed(v < 10 ? 2 : 1))}${unit ?? ''}` : String(v))
const lines = ['| id | metric | prov | peer | ratio | target | met |', '| --- | --- | --- | --- | --- | --- | --- |']
for (const r of results) {
  for (const row of r.rows) {
    lines.push(
      `| ${r.id} | ${row.metric} | ${fmt(row.prov, row.unit)} | ${row.peerName ? `${row.peerName}: ` : ''}${fmt(row.peer, row.unit)} | ${fmt(row.ratio)} | ${row.target} | ${row.pass === null || row.pass === undefined ? '—' : row.pass ? 'yes' : 'no'} |`,
    )
  }
}
const table = `${lines.join('\n')}\n`
writeFileSync(join(resultsDir, 'results.md'), `# Benchmark results (${new Date().toISOString()}, node ${process.version})\n\n${table}`)
process.stdout.write(table)
