// Shared launcher of the bin/ shims: the built bundle normally; with PROV_DEV=1 the TypeScript
// source through jiti (no build step while developing).
import { existsSync } from 'node:fs'
import { dirname, join } from 'node:path'
import { fileURLToPath, pathToFileURL } from 'node:url'

const root = join(dirname(fileURLToPath(import.meta.url)), '..')

export async function launch(pkg) {
  // `--version` alone needs no code but the version: answer before loading any bundle (cold start, P1).
  const argv = process.argv.slice(2)
  if (argv.length === 1 && argv[0] === '--version') {
    const { readFileSync } = await import('node:fs')
    process.stdout.write(`${JSON.parse(readFileSync(join(root, 'packages/core/package.json'), 'utf8')).version}\n`)
    return
  }
  const built = join(root, 'packages', pkg, 'dist', 'cli.mjs')
  if (process.env.PROV_DEV !== '1' && existsSync(built)) return import(pathToFileURL(built).href)
  const { createJiti } = await import('jiti')
  const jiti = createJiti(import.meta.url, {
    alias: { '@prov/core/config': join(root, 'packages/core/src/config/index.ts'), '@prov/core': join(root, 'packages/core/src/index.ts') },
  })
  return jiti.import(join(root, 'packages', pkg, 'src', 'cli.ts'))
}
