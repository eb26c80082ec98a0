import { spawnSync } from 'node:child_process'
import { existsSync, readdirSync } from 'node:fs'
import { delimiter, dirname, join } from 'node:path'
import { commonArgs, configureFromArgv, didYouMean, ExitCode, repoRoot, reportError, runProvMain, usageError, valueOptionOf } from '@prov/core'
import { builtins, main } from './tree'

/** Folders searched for `prov-<tool>`: next to this binary first, then PATH. */
function toolDirs(): string[] {
  const own = join(repoRoot(), 'bin')
  const fromArgv = process.argv[1] ? dirname(process.argv[1]) : undefined
  return [...new Set([fromArgv, own, ...(process.env.PATH ?? '').split(delimiter)].filter((d): d is string => !!d))]
}

export function findTool(tool: string): string | undefined {
  if (!/^[a-z0-9][a-z0-9-]*$/.test(tool)) return undefined
  for (const dir of toolDirs()) {
    const candidate = join(dir, `prov-${tool}`)
    if (existsSync(candidate)) return candidate
  }
  return undefined
}

export function availableTools(): string[] {
  const tools = new Set<string>()
  for (const dir of toolDirs()) {
    try {
      for (const name of readdirSync(dir)) if (/^prov-[a-z0-9-]+$/.test(name)) tools.add(name.slice(5))
    } catch {
      // unreadable PATH entry
    }
  }
  return [...tools].sort()
}

/** Index of the first command word, skipping common options (and their values) in front of it. */
function firstWordIndex(argv: string[]): number {
  for (let i = 0; i < argv.length; i++) {
    const word = argv[i]
    if (word === '--') return -1
    if (!word.startsWith('-') || word === '-') return i
    if (!word.includes('=') && valueOptionOf(word, commonArgs)) i++
  }
  return -1
}

async function run(argv: string[]): Promise<number> {
  const index = firstWordIndex(argv)
  const first = index >= 0 ? argv[index] : undefined
  if (first && !(first in builtins) && first !== 'help' && first !== 'version') {
    const { debug } = configureFromArgv(argv)
    const tool = findTool(first)
    if (!tool) {
      const known = [...Object.keys(builtins), 'help', 'version', ...availableTools()]
      return reportError(usageError(`unknown command '${first}'`, { hint: didYouMean(first, known) ?? `commands: ${known.join(', ')}` }), debug)
    }
    // git-style dispatch: the tool inherits stdin/stdout/stderr, its exit code is ours. Common
    // options may stand before the tool's name (`prov -w ws server list`).
    const result = spawnSync(tool, [...argv.slice(0, index), ...argv.slice(index + 1)], { stdio: 'inherit' })
    if (result.error) return reportError(result.error, debug)
    return result.status ?? ExitCode.FAILED
  }
  return runProvMain(main, argv)
}

process.exitCode = await run(process.argv.slice(2))
