import { spawnSync } from 'node:child_process'
import { existsSync, readdirSync } from 'node:fs'
import { delimiter, dirname, join } from 'node:path'
import { didYouMean, ExitCode, repoRoot, reportError, runProvMain, usageError } from '@prov/core'
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

async function run(argv: string[]): Promise<number> {
  const first = argv[0]
  if (first && !first.startsWith('-') && !(first in builtins)) {
    const tool = findTool(first)
    if (!tool) {
      return reportError(
        usageError(`unknown command '${first}'`, {
          hint: didYouMean(first, [...Object.keys(builtins), ...availableTools()]) ?? `commands: ${[...Object.keys(builtins), ...availableTools()].join(', ')}`,
        }),
        false,
      )
    }
    // git-style dispatch: the tool inherits stdin/stdout/stderr, its exit code is ours.
    const result = spawnSync(tool, argv.slice(1), { stdio: 'inherit' })
    if (result.error) return reportError(result.error, false)
    return result.status ?? ExitCode.FAILED
  }
  return runProvMain(main, argv)
}

process.exitCode = await run(process.argv.slice(2))
