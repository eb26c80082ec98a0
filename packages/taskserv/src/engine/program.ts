/**
 * The program one item sends to `sh -s` on its host: the remote logic (the shipped asset
 * `assets/remote.sh`), then data — the environment as a data section, the taskserv folder as
 * base64 here-documents — and the call of its entry point; and the parser of the result line that
 * program prints last. No value is ever part of the shell code: names are checked, values are data.
 */
import { existsSync, readFileSync } from 'node:fs'
import { dirname, join } from 'node:path'
import { fileURLToPath } from 'node:url'
import { BUNDLE_NAME_PATTERN, type BundleFile } from './bundle'
import { ENV_NAME_PATTERN, envValueProblem } from './environment'
import { REMOTE_TASKSERV_ROOT, type SkipReason, TASK_STATUSES, type TaskStatus } from './types'

export const RESULT_MARK = '@@PROV_RESULT@@'

let remoteLogic: string | undefined

/**
 * The package's `assets/` folder holds the remote logic. This module runs from `src/engine/`
 * (sources), `dist/` or a `dist/` chunk folder (the build): walk up to the package folder.
 */
export function remoteScriptPath(): string {
  let dir = dirname(fileURLToPath(import.meta.url))
  for (let depth = 0; depth < 5; depth++) {
    const candidate = join(dir, 'assets', 'remote.sh')
    if (existsSync(candidate)) return candidate
    dir = dirname(dir)
  }
  throw new Error(`prov-taskserv: assets/remote.sh not found above ${dirname(fileURLToPath(import.meta.url))}; the package is incomplete`)
}

function remoteScript(): string {
  remoteLogic ??= readFileSync(remoteScriptPath(), 'utf8')
  return remoteLogic
}

/** A file's path in the program: validated bundle names are plain words; quoted all the same. */
const word = (path: string) => `'${path}'`

function filesFunction(files: BundleFile[]): string {
  const dirs = new Set<string>()
  for (const f of files) {
    if (!f.path.split('/').every((part) => BUNDLE_NAME_PATTERN.test(part))) throw new Error(`unsupported bundle path '${f.path}'`)
    const parts = f.path.split('/')
    for (let i = 1; i < parts.length; i++) dirs.add(parts.slice(0, i).join('/'))
  }
  const lines = ['__prov_files() {']
  for (const d of [...dirs].sort()) lines.push(`  mkdir -p "$1"/${word(d)} || return 1`)
  for (const f of files) {
    const wrapped = f.base64.match(/.{1,76}/g)?.join('\n') ?? ''
    lines.push(`  base64 -d > "$1"/${word(f.path)} <<'__PROV_EOF__' || return 1`, wrapped, '__PROV_EOF__')
    lines.push(`  chmod ${(f.mode | 0o600).toString(8)} "$1"/${word(f.path)}`)
  }
  lines.push('}')
  return lines.join('\n')
}

/** A value `read -r` takes back unchanged from one line: no control characters, no space at either end. */
const RAW_LINE_VALUE = /^[^\s\x00-\x1f\x7f](?:[^\x00-\x1f\x7f]*[^\s\x00-\x1f\x7f])?$/

/**
 * The environment as a data section for `__prov_env` (remote.sh): one `NAME r VALUE` line for a
 * value that survives `read -r` as it is, `NAME b BASE64` for any other (newlines, quotes at the
 * edges, empty...). The section is a quoted here-document: nothing in it is expanded or parsed.
 */
export function environmentSection(env: Record<string, string>): string {
  const lines = ["__prov_env <<'__PROV_ENV__' || __prov_abort 'the environment could not be read'"]
  for (const [name, value] of Object.entries(env)) {
    if (!ENV_NAME_PATTERN.test(name)) throw new Error(`invalid variable name '${name}'`)
    const problem = envValueProblem(value)
    if (problem) throw new Error(`the value of ${name} ${problem}`)
    lines.push(RAW_LINE_VALUE.test(value) ? `${name} r ${value}` : `${name} b ${Buffer.from(value).toString('base64')}`)
  }
  lines.push('__PROV_ENV__')
  return lines.join('\n')
}

/** The whole program sent on stdin to `sh -s` for one item. */
export function buildRemoteProgram(env: Record<string, string>, bundle: { files: BundleFile[] }, remoteRoot = REMOTE_TASKSERV_ROOT): string {
  return [
    remoteScript(),
    environmentSection({ ...env, PROV_ROOT: remoteRoot }),
    filesFunction(bundle.files),
    // Everything run from here on reads /dev/null: the rest of stdin is this program.
    '__prov_main </dev/null',
    'exit 0',
    '',
  ].join('\n')
}

export interface ParsedRemoteResult {
  status: TaskStatus
  phase: string
  rc: number
  version: string
  previous: string
  reason?: SkipReason
  flags: Record<string, string>
}

const REMOTE_REASONS: ReadonlySet<string> = new Set<SkipReason>(['unsupported', 'not_installed', 'no_script'])

/** Parses the result line the remote program prints last. */
export function parseRemoteResult(stdout: string): ParsedRemoteResult | undefined {
  const index = stdout.lastIndexOf(RESULT_MARK)
  if (index < 0) return undefined
  const line = stdout.slice(index + RESULT_MARK.length).split('\n')[0]
  const fields: Record<string, string> = {}
  for (const match of line.matchAll(/([a-z_]+)=(\S*)/g)) fields[match[1]] = match[2]
  const status = fields.status as TaskStatus
  if (!TASK_STATUSES.includes(status)) return undefined
  const { status: _s, phase = '', rc = '0', version = '', previous = '', reason, ...flags } = fields
  return {
    status,
    phase,
    rc: Number(rc),
    version,
    previous,
    ...(status === 'skipped' && reason && REMOTE_REASONS.has(reason) ? { reason: reason as SkipReason } : {}),
    flags,
  }
}
