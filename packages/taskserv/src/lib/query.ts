import { notFoundError, type ProvContext } from '@prov/core'
import type { TaskAction } from '../engine'
import { confirmAction, parseTimeout, planFor, prepare, resultWriter, targetsOf } from './common'
import { executeLevels, exitCodeOf } from './run'

/**
 * status / health / restart / logs: one remote action per (server, taskserv); no requirements
 * expanded. status and health look at every server of the workspace when no target is named.
 */
export async function runQuery(ctx: ProvContext<any>, action: TaskAction, itemEnv?: Record<string, string>, tailLines?: number): Promise<number> {
  const prepared = await prepare(ctx)
  const defaultAll = action === 'status' || action === 'health'
  let names = ctx.positionals
  let onlyRecorded = false
  if (!names.length && !ctx.common.infra) {
    // Default: what the workspace state records on the target servers.
    const servers = await targetsOf(ctx, prepared, { defaultAll })
    names = [...new Set(servers.flatMap((s) => Object.keys(prepared.state.servers[s.name] ?? {})))].filter((n) => prepared.catalog.has(n)).sort()
    if (!names.length) throw notFoundError('no taskserv is recorded on these servers', { hint: 'name the taskservs, e.g. prov-taskserv status redis' })
    onlyRecorded = true
  }
  const { plan, levels, placed } = await planFor(ctx, prepared, action, { expand: false, itemEnv, names, defaultAll })
  const chosen = onlyRecorded ? levels.map((l) => l.filter((i) => prepared.state.servers[i.host.name]?.[i.unit.name])).filter((l) => l.length) : levels
  if (ctx.common.check) {
    ctx.emit(plan)
    return 0
  }
  // A restart stops the daemons: it is confirmed like a removal.
  if (action === 'restart') await confirmAction(ctx, 'restart', chosen.flat())
  // These actions do not depend on each other: run everything as one level.
  const flat = [chosen.flat()]
  const out = resultWriter(ctx)
  const results = await executeLevels({
    ctx,
    config: prepared.config,
    workspace: prepared.workspace,
    levels: flat,
    dependencyScope: placed ? 'global' : 'host',
    write: out.write,
    label: action,
    timeoutSec: parseTimeout(ctx.args.timeout),
    tailLines,
    stopOnFailure: false,
  })
  out.end()
  return exitCodeOf(results)
}
