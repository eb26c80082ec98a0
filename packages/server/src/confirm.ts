import { type ArgsDef, confirmOrCancel, failedError, type ProvContext, type ServerRecord, usageError } from '@prov/core'
import { type ActionOutcome, preflight, runToCode, type ServerEnv } from './engine'
import { painter, renderTargets } from './render'

/**
 * Confirms a change to existing servers with core's one confirmation (--yes, refused off a
 * terminal with exit 2, asked on one). On a terminal the user first sees `preview`, what would
 * change; answering no is exit 1, nothing changed.
 */
export async function confirmChange(yes: boolean, what: string, question: string, preview: string): Promise<void> {
  if (!yes && process.stdin.isTTY) process.stderr.write(`${preview}\n`)
  await confirmOrCancel({ yes, what, question })
}

/** Confirms `verb` (delete, stop...) on existing servers, listing them: `- delete web-01 (local)`. */
export async function confirmTargets(yes: boolean, verb: string, targets: { name: string; provider: string }[]): Promise<void> {
  const question = `${verb} ${targets.length === 1 ? 'this server' : `these ${targets.length} servers`}?`
  await confirmChange(yes, `${verb} servers`, question, renderTargets(verb, targets, painter(process.stderr)))
}

/**
 * `verb` on existing servers (delete, stop, start, restart): nothing named prints `[]`; otherwise
 * root is checked where a provider needs it, the user confirms, and `job` runs per server.
 */
export async function actOnServers<T extends ArgsDef>(
  ctx: ProvContext<T>,
  env: ServerEnv,
  verb: string,
  targets: ServerRecord[],
  job: (record: ServerRecord) => Promise<ActionOutcome>,
): Promise<number | undefined> {
  if (!targets.length) {
    ctx.log.info(`no servers to ${verb}`)
    ctx.emit([])
    return undefined
  }
  await preflight(
    env,
    targets.map((t) => t.provider),
  )
  await confirmTargets(ctx.common.yes, verb, targets)
  return runToCode(
    ctx,
    targets.map((record) => ({ title: `${verb} ${record.name}`, run: () => job(record) })),
  )
}
