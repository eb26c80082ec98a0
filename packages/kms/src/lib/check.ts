/**
 * `--check` and `--yes` for the prov-kms commands that change files: with `--check` they print what
 * they would do (a `prov.kms.plan/v1` record, exit 0) and change nothing; the destructive ones
 * (delete, rotate) refuse without `--yes` when nobody can confirm and ask on a terminal.
 */
import { type CommonOptions, confirmOrCancel, failedError, usageError } from '@prov/core'

export interface PlannedChange {
  /** What would happen: `remove`, `store`, `replace`, `rotate`, `write`, ... */
  action: string
  /** The secret, file or key it would happen to. */
  target: string
  [detail: string]: unknown
}

/** Under `--check`: emits the planned changes and returns true (the caller stops there). */
export function previewed(common: CommonOptions, emit: (data: unknown) => void, changes: PlannedChange[]): boolean {
  if (!common.check) return false
  emit(changes.map((change) => ({ schema: 'prov.kms.plan/v1', ...change, check: true })))
  return true
}

/** The confirmation of a destructive change (`--yes`, or a terminal answer); a "no" is exit 1, nothing changed. */
export async function confirmed(common: CommonOptions, what: string): Promise<void> {
  await confirmOrCancel({ yes: common.yes, what })
}

/** For commands whose effect cannot be previewed without doing it. */
export function refuseCheck(common: CommonOptions, what: string): void {
  if (common.check) throw usageError(`${what} is not supported with --check`, { location: '--check', hint: 'run it without --check' })
}
