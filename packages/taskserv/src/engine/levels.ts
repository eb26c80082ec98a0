/**
 * Levels of items: a level starts when the previous one has finished on every host; inside a
 * level, up to `parallel` hosts work at once and one host's items run side by side.
 */
import { mapLimit } from '@prov/core'
import { runTaskItem } from './run-item'
import { NOT_RUN_REASONS, notRunResult, type TaskItem, type TaskResult, type TaskRunOptions } from './types'

/**
 * True when the result keeps the items that depend on it from running: it failed, never ran, or
 * is unsupported on that host — in each case the requirement is not there.
 */
export function blocksDependents(result: TaskResult): boolean {
  if (result.status === 'failed') return true
  return result.status === 'skipped' && result.reason !== undefined && (NOT_RUN_REASONS.has(result.reason) || result.reason === 'unsupported')
}

/**
 * A failure stops that host (its later items are skipped) while the other hosts continue; items
 * depending on a failed or not-run name are skipped.
 */
export async function runTaskLevels<T>(levels: TaskItem<T>[][], options: TaskRunOptions<T>): Promise<TaskResult[]> {
  const results: TaskResult[] = []
  const failedHosts = new Map<string, string>()
  const failedNames = new Map<string, Set<string>>() // name -> hosts where it failed or was not run
  const parallel = options.parallel ?? 20
  for (let level = 0; level < levels.length; level++) {
    const items = levels[level]
    options.onEvent?.({ type: 'level', level, items: items.length })
    const byHost = new Map<string, TaskItem<T>[]>()
    for (const item of items) {
      const list = byHost.get(item.host.name)
      if (list) list.push(item)
      else byHost.set(item.host.name, [item])
    }
    const levelResults = await mapLimit([...byHost.values()], parallel, async (hostItems) =>
      Promise.all(
        hostItems.map(async (item) => {
          const blockedBy = failedHosts.get(item.host.name)
          const dependency = (item.dependsOn ?? []).find((name) => {
            const hosts = failedNames.get(name)
            return hosts && (options.dependencyScope === 'global' ? hosts.size > 0 : hosts.has(item.host.name))
          })
          if (blockedBy || dependency) {
            const skipped = blockedBy
              ? notRunResult(item, 'host_failed', `not run: ${blockedBy} failed earlier on ${item.host.name}`, level)
              : notRunResult(
                  item,
                  'requirement_failed',
                  `not run: its requirement '${dependency}' is not there (it failed, was not run or is unsupported)`,
                  level,
                )
            options.onEvent?.({ type: 'end', result: skipped })
            return skipped
          }
          return runTaskItem(item, options, level)
        }),
      ),
    )
    for (const result of levelResults.flat()) {
      results.push(result)
      if (!blocksDependents(result)) continue
      if (result.status === 'failed' && options.stopOnFailure !== false && !failedHosts.has(result.server)) failedHosts.set(result.server, result.taskserv)
      const hosts = failedNames.get(result.taskserv) ?? new Set<string>()
      hosts.add(result.server)
      failedNames.set(result.taskserv, hosts)
    }
  }
  return results
}
