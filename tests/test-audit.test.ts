import { readdirSync, readFileSync } from 'node:fs'
import { join, relative } from 'node:path'
import { describe, expect, it } from 'vitest'
import { repoRoot } from './helpers/cli'

/*
 * Rules about the tests themselves, checked on their source: a test proves behaviour, never speed
 * or memory (those are measured by `npm run bench`), and an end-to-end prerequisite is checked
 * through tests/helpers/prerequisites.ts, which fails under CI instead of skipping silently.
 */

function testFiles(): string[] {
  const files: string[] = []
  const walk = (dir: string) => {
    for (const entry of readdirSync(dir, { withFileTypes: true })) {
      if (entry.name === 'node_modules' || entry.name === 'dist' || entry.name === 'fixtures') continue
      const path = join(dir, entry.name)
      if (entry.isDirectory()) walk(path)
      else if (/\.ts$/.test(entry.name) && (/\/test\//.test(path) || path.startsWith(join(repoRoot, 'tests')))) files.push(path)
    }
  }
  walk(join(repoRoot, 'packages'))
  walk(join(repoRoot, 'tests'))
  return files.filter((f) => !f.endsWith('test-audit.test.ts'))
}

/** Lines that assert on elapsed time or memory. */
const timingAssertion =
  /expect\([^)]*(Date\.now\(\)\s*-|performance\.now\(\)\s*-|elapsed|duration|rss|peak|heapUsed|memoryUsage)[^)]*\)\s*\.\s*to(BeLessThan|BeGreaterThan|BeLessThanOrEqual)|for \(const \w+ of peak/

/** Conditional skips: allowed only in files that decide them with the prerequisites helper. */
const conditionalSkip = /\b(describe|it|test)\.(skipIf|runIf)\(/

describe('test audit', () => {
  const files = testFiles()
  it('finds the test files', () => {
    expect(files.length).toBeGreaterThan(20)
  })

  it('no test asserts on wall-clock time or memory (they belong in npm run bench)', () => {
    const found = files.flatMap((file) =>
      readFileSync(file, 'utf8')
        .split('\n')
        .map((line, index) => ({ line, where: `${relative(repoRoot, file)}:${index + 1}` }))
        .filter(({ line }) => timingAssertion.test(line))
        .map(({ where }) => where),
    )
    expect(found).toEqual([])
  })

  it('no test skips on a host check of its own (CI must fail, not skip, when a prerequisite is missing)', () => {
    const found = files.flatMap((file) => {
      const text = readFileSync(file, 'utf8')
      if (text.includes('prerequisitesMet(')) return []
      return text
        .split('\n')
        .map((line, index) => ({ line, where: `${relative(repoRoot, file)}:${index + 1}` }))
        .filter(({ line }) => conditionalSkip.test(line))
        .map(({ where }) => where)
    })
    expect(found).toEqual([])
  })
})
