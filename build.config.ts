import { existsSync } from 'node:fs'
import { defineBuildConfig } from 'unbuild'

/** A binary's runner and its command tree (read by the Nushell plugin and the shell completions). */
const tree = [
  { input: 'src/cli', name: 'cli' },
  { input: 'src/tree', name: 'tree' },
]

/**
 * One build per package under packages/. Every bare import stays external (npm workspaces
 * resolve them at run time), so each binary's bundle holds only its own code.
 * PROV_BUILD=core,kms builds a subset.
 */
const packages: Record<string, { input: string; name: string }[]> = {
  core: [
    { input: 'src/index', name: 'index' },
    { input: 'src/config/index', name: 'config' },
    { input: 'src/config/schema-entry', name: 'config-schema' },
    { input: 'src/vendor/yaml', name: 'yaml' },
  ],
  prov: tree,
  server: tree,
  taskserv: tree,
  kms: tree,
  oci: tree,
  orch: tree,
  nu: [
    { input: 'src/cli', name: 'cli' },
    { input: 'src/index', name: 'index' },
  ],
}

const only = process.env.PROV_BUILD?.split(',').filter(Boolean)

export default defineBuildConfig(
  Object.entries(packages)
    .filter(([name]) => !only || only.includes(name))
    .filter(([name]) => existsSync(`packages/${name}/src`))
    .map(([name, entries]) => ({
      name,
      rootDir: `${process.cwd()}/packages/${name}`,
      entries: entries.map((e) => ({ ...e, builder: 'rollup' as const })),
      outDir: 'dist',
      clean: true,
      declaration: false,
      failOnWarn: false,
      // Core inlines the small pure-JS libraries every command needs: one file loads much faster
      // than the dozens of modules they ship as (cold start, P1).
      externals: name === 'core' ? [/^(?!(zod|yaml|defu|citty)(\/|$))[^./]/] : [/^[^./]/],
      rollup: { emitCJS: false, esbuild: { target: 'node20' }, inlineDependencies: name === 'core' },
    })),
)
