#!/usr/bin/env node
// Writes JSON Schemas generated from the zod schemas into docs/schemas/ (for editors and other
// tools). `--check` exits 1 when the committed files are out of date.
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs'
import { dirname, join } from 'node:path'
import { fileURLToPath, pathToFileURL } from 'node:url'

const root = join(dirname(fileURLToPath(import.meta.url)), '..')
const outDir = join(root, 'docs/schemas')
const config = await import(pathToFileURL(join(root, 'packages/core/dist/config-schema.mjs')).href)
const core = await import(pathToFileURL(join(root, 'packages/core/dist/index.mjs')).href)

const schemas = {
  'prov.config.schema.json': { title: 'prov configuration (any layer, merged)', schema: config.configSchema.partial() },
  'prov.manifest.schema.json': { title: 'prov extension manifest.yaml', schema: core.manifestSchema() },
  'prov.server.schema.json': { title: 'prov.server/v1 record', schema: core.serverRecordSchema() },
}

let stale = false
mkdirSync(outDir, { recursive: true })
for (const [file, { title, schema }] of Object.entries(schemas)) {
  const json = { $id: `https://prov.dev/schemas/${file}`, title, ...config.toJSONSchema(schema, { io: 'input', unrepresentable: 'any' }) }
  const text = `${JSON.stringify(json, null, 2)}\n`
  const path = join(outDir, file)
  let current = ''
  try {
    current = readFileSync(path, 'utf8')
  } catch {}
  if (current !== text) {
    stale = true
    if (!process.argv.includes('--check')) writeFileSync(path, text)
  }
}
if (process.argv.includes('--check') && stale) {
  process.stderr.write('docs/schemas is out of date: run npm run schemas\n')
  process.exit(1)
}
