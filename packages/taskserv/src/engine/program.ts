/**
 * The program one item sends to `sh -s` on its host: a generated prelude (environment and the
 * taskserv folder as base64 here-documents) followed by the remote logic, the shipped asset
 * `assets/remote.sh`; and the parser of the result line that program prints last.
 */
import { existsSync, readFileSync } from 'node:fs'
import { dirname, join } from 'node:path'
import { fileURLToPath } from 'node:url'
import { shellQuote } from '@prov/core'
import type { BundleFile } from './bundle'
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

function filesFunction(files: BundleFile[]): string {
  const dirs = new Set<string>()
  for (const f of files) {
    const parts = f.path.split('/')
    for (let i = 1; i < parts.length; i++) dirs.add(parts.slice(0, i).join('/'))
  }
  const lines = ['__prov_files() {']
  for (const d of [...dirs].sort()) lines.push(`mkdir -p "$1"/${shellQuote(d)} || return 1`)
  for (const f of files) {
    const wrapped = f.base64.match(/.{1,76}/g)?.join('\n') ?? ''
    lines.push(`base64 -d > "$1"/${shellQuote(f.path)} <<'__PROV_EOF__' || return 1`, wrapped, '__PROV_EOF__')
    lines.push(`chmod ${(f.mode | 0o600).toString(8)} "$1"/${shellQuote(f.path)}`)
  }
  lines.push('}')
  return lines.join('\n')
}

/** The whole program sent on stdin to `sh -s` for one item. */
export function buildRemoteProgram(env: Record<string, string>, bundle: { files: BundleFile[] }, remoteRoot = REMOTE_TASKSERV_ROOT): string {
  const exports = Object.entries({ ...env, PROV_ROOT: remoteRoot })
    .filter(([k]) => /^[A-Za-z_][A-Za-z0-9_]*$/.test(k))
    .map(([k, v]) => `${k}=${shellQuote(v)}; export ${k}`)
  return [
    'set -u',
    'umask 022',
    'PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin; export PATH',
    'DEBIAN_FRONTEND=noninteractive; export DEBIAN_FRONTEND',
    ...exports,
    filesFunction(bundle.files),
    remoteScript(),
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
