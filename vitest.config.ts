import { fileURLToPath } from 'node:url'
import { defineConfig } from 'vitest/config'

const src = (path: string) => fileURLToPath(new URL(path, import.meta.url))

export default defineConfig({
  resolve: {
    alias: [
      { find: '@prov/core/config-schema', replacement: src('./packages/core/src/config/schema-entry.ts') },
      { find: '@prov/core/config', replacement: src('./packages/core/src/config/index.ts') },
      { find: '@prov/core', replacement: src('./packages/core/src/index.ts') },
      { find: /^@prov\/nu$/, replacement: src('./packages/nu/src/index.ts') },
    ],
  },
  test: {
    include: ['packages/*/test/**/*.test.ts', 'tests/**/*.test.ts'],
    testTimeout: 60_000,
    hookTimeout: 120_000,
    pool: 'forks',
    // A test that asserts nothing proves nothing: every test must make at least one assertion.
    expect: { requireAssertions: true },
  },
})
