import { createRequire } from 'node:module'

/**
 * Synchronous lazy loading of dependencies that only some commands need, so that a binary's
 * cold start (`--version`, `list`) does not pay for YAML, semver or zod (benchmark P1).
 */
const require = createRequire(import.meta.url)

/** The first of `ids` that loads: a built single-file copy, else the package itself (sources, tests). */
function lazy<T>(...ids: string[]): () => T {
  let loaded: T | undefined
  return () => {
    if (loaded) return loaded
    for (const [index, id] of ids.entries()) {
      try {
        loaded = require(id) as T
        break
      } catch (error) {
        // Not built, or a Node that cannot require an ES module: the next one.
        const code = (error as NodeJS.ErrnoException).code
        if (index === ids.length - 1 || (code !== 'MODULE_NOT_FOUND' && code !== 'ERR_REQUIRE_ESM')) throw error
      }
    }
    return loaded as T
  }
}

export const yamlLib = lazy<typeof import('yaml')>('@prov/core/yaml', 'yaml')
export const semverLib = lazy<typeof import('semver')>('semver')
export const zodLib = lazy<typeof import('zod')>('zod')
export const consolaLib = lazy<typeof import('consola')>('consola')
