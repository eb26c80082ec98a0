/**
 * The task execution engine: runs taskserv scripts (install.sh, check.sh, ...) on servers over
 * SSH, in levels of the dependency order, with bounded parallelism across hosts, per-host
 * stop-on-failure, remote timeouts and per-run log files. Shared by prov-taskserv and
 * `prov-server exec`.
 *
 * One SSH exec per (host, taskserv, action): the remote command is `sh -s` and stdin carries a
 * generated POSIX sh program holding the environment (secret values included: they travel on the
 * SSH channel only, never in argv or on disk), the taskserv folder as base64 here-documents, and
 * the action logic. The program ends with one result line that the engine parses.
 */
import { createHash } from 'node:crypto'
import { createWriteStream, mkdirSync, readdirSync, readFileSync, statSync, type WriteStream } from 'node:fs'
import { join } from 'node:path'
import { configError } from './errors'
import { redactString, registerSecretValue } from './redact'
import { isSecretRef, type SecretResolver } from './secrets'

export const TASKSERV_RESULT_SCHEMA = 'prov.taskserv.result/v1'
/** Where taskserv folders and their state files live on a target. */
export const REMOTE_TASKSERV_ROOT = '/var/lib/prov/taskservs'

export type TaskAction = 'install' | 'remove' | 'update' | 'health' | 'status' | 'restart' | 'logs' | 'check'
export type TaskStatus = 'ok' | 'changed' | 'failed' | 'skipped'

/** What the engine needs from an SSH connection pool (core's SshPool satisfies it). */
export interface RemoteExecOptions {
  env?: Record<string, string>
  stdin?: string
  timeoutMs?: number
  onStdout?: (chunk: Buffer) => void
  onStderr?: (chunk: Buffer) => void
}
export interface RemoteExecResult {
  code: number | null
  stdout: string
  stderr: string
  durationMs?: number
}
export interface RemoteRunner<T> {
  exec(target: T, command: string, options?: RemoteExecOptions): Promise<RemoteExecResult>
}

export interface TaskHost<T> {
  /** Server name (used in results and logs). */
  name: string
  target: T
  /** Extra environment for this host (PROV_SERVER_IP, labels...). */
  env?: Record<string, string>
}

export interface TaskUnit {
  name: string
  /** Desired version (PROV_VERSION). */
  version: string
  /** Local folder with manifest.yaml and the scripts. */
  dir: string
  /** Settings: exported as PROV_SETTING_<NAME>; values may be {secret: name} references. */
  settings?: Record<string, unknown>
  /** Daemons the taskserv runs (for restart/logs without own scripts). */
  services?: string[]
}

export interface TaskItem<T> {
  host: TaskHost<T>
  unit: TaskUnit
  action: TaskAction
  /** Names this item waits for: a failure of one of them skips this item. */
  dependsOn?: string[]
  /** Extra environment for this item only (PROV_KEEP_DATA, PROV_TAIL, ...). */
  env?: Record<string, string>
}

export interface TaskResult {
  schema: typeof TASKSERV_RESULT_SCHEMA
  server: string
  taskserv: string
  action: TaskAction
  status: TaskStatus
  version?: string
  previous_version?: string
  phase?: string
  exit_code?: number
  duration_ms: number
  /** Last lines of the scripts' output (redacted). */
  output: string
  error?: string
  rolled_back?: boolean
  /** With rolled_back: the version that failed. */
  attempted_version?: string
  installed?: boolean
  healthy?: boolean
  log?: string
  level?: number
}

export type TaskEvent =
  | { type: 'start'; host: string; taskserv: string; action: TaskAction; level: number }
  | { type: 'output'; host: string; taskserv: string; stream: 'stdout' | 'stderr'; line: string }
  | { type: 'end'; result: TaskResult }
  | { type: 'level'; level: number; items: number }

export interface TaskRunOptions<T> {
  runner: RemoteRunner<T>
  /** Hosts worked on at once (default 20). */
  parallel?: number
  /** Seconds one script may run before it is killed on the target (default 600). */
  timeoutSec?: number
  /** Folder with the shared script library (uploaded as _lib/ with every taskserv). */
  libDir?: string
  /** Environment for every script (config `taskservs.env`); values may be secret references. */
  env?: Record<string, unknown>
  resolver?: SecretResolver
  /** Folder for per-run log files (one per host and taskserv). */
  logDir?: string
  /** Failures of a name skip dependents on every host ('global', clusters) or only on the same host. */
  dependencyScope?: 'host' | 'global'
  /** Skip a host's later items once one failed there (default true). */
  stopOnFailure?: boolean
  /** Lines of output kept in results (default 20). */
  tailLines?: number
  onEvent?: (event: TaskEvent) => void
  /** Remote root (default /var/lib/prov/taskservs). */
  remoteRoot?: string
}

const shellQuote = (value: string) => `'${value.replace(/'/g, `'\\''`)}'`

/** `db_port` -> `PROV_SETTING_DB_PORT`. */
export function settingEnvName(key: string): string {
  return `PROV_SETTING_${key.replace(/[^A-Za-z0-9]+/g, '_').toUpperCase()}`
}

function envValue(value: unknown): string {
  if (value === null || value === undefined) return ''
  if (typeof value === 'string') return value
  if (typeof value === 'number' || typeof value === 'boolean') return String(value)
  return JSON.stringify(value)
}

async function resolveValue(value: unknown, resolver: SecretResolver | undefined, where: string): Promise<string> {
  if (isSecretRef(value)) {
    if (!resolver) throw configError(`secret reference '${value.secret}' in ${where} but no secret resolver is configured`, { hint: 'set secrets.provider' })
    const plain = await resolver.get(value.secret)
    registerSecretValue(plain)
    return plain
  }
  return envValue(value)
}

/** The environment of one item, secret references resolved (never logged: values are registered for redaction). */
export async function taskEnvironment<T>(
  item: TaskItem<T>,
  options: Pick<TaskRunOptions<T>, 'env' | 'resolver' | 'timeoutSec'>,
): Promise<Record<string, string>> {
  const env: Record<string, string> = {}
  for (const [key, value] of Object.entries(options.env ?? {})) {
    if (/^[A-Za-z_][A-Za-z0-9_]*$/.test(key)) env[key] = await resolveValue(value, options.resolver, `taskservs.env.${key}`)
  }
  for (const [key, value] of Object.entries(item.unit.settings ?? {})) {
    env[settingEnvName(key)] = await resolveValue(value, options.resolver, `settings.${key} of ${item.unit.name}`)
  }
  Object.assign(env, item.host.env ?? {}, item.env ?? {}, {
    PROV_TASKSERV: item.unit.name,
    PROV_VERSION: item.unit.version,
    PROV_ACTION: item.action,
    PROV_SERVER: item.host.name,
    PROV_TIMEOUT: String(Math.max(1, Math.round(options.timeoutSec ?? 600))),
    PROV_SERVICES: (item.unit.services?.length ? item.unit.services : [item.unit.name]).join(' '),
  })
  return env
}

interface BundleFile {
  path: string
  mode: number
  base64: string
}

const bundleCache = new Map<string, { files: BundleFile[]; hash: string }>()

function collectFiles(root: string, prefix: string, out: BundleFile[]): void {
  for (const entry of readdirSync(root, { withFileTypes: true }).sort((a, b) => a.name.localeCompare(b.name))) {
    const full = join(root, entry.name)
    if (entry.isDirectory()) collectFiles(full, `${prefix}${entry.name}/`, out)
    else if (entry.isFile()) {
      out.push({ path: `${prefix}${entry.name}`, mode: statSync(full).mode & 0o777, base64: readFileSync(full).toString('base64') })
    }
  }
}

/** The files of a taskserv folder plus the shared library (under _lib/), read once per process. */
export function taskservBundle(dir: string, libDir?: string): { files: BundleFile[]; hash: string } {
  const key = `${dir}\0${libDir ?? ''}`
  const cached = bundleCache.get(key)
  if (cached) return cached
  const files: BundleFile[] = []
  collectFiles(dir, '', files)
  if (libDir) collectFiles(libDir, '_lib/', files)
  const hash = createHash('sha256')
  for (const f of files) hash.update(`${f.path}\0${f.mode}\0${f.base64}\0`)
  const bundle = { files, hash: hash.digest('hex').slice(0, 16) }
  bundleCache.set(key, bundle)
  return bundle
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

/**
 * The remote action logic (POSIX sh). Scripts run with stdin from /dev/null under `timeout`, which
 * kills the whole process group of a hanging script on the target itself.
 */
const MAIN = String.raw`
__prov_result() { printf '\n@@PROV_RESULT@@ status=%s phase=%s rc=%s version=%s previous=%s %s\n' "$1" "$2" "$3" "\${4:-}" "\${5:-}" "\${6:-}"; }
__prov_run() {
  [ -f "./$1.sh" ] || return 127
  timeout -k 5 "$PROV_TIMEOUT" sh "./$1.sh" </dev/null
}
__prov_state() {
  mkdir -p "$R" && printf '{"name":"%s","version":"%s","previous_version":"%s","server":"%s","installed_at":"%s"}\n' \
    "$PROV_TASKSERV" "$1" "$2" "$PROV_SERVER" "$(date -u +%Y-%m-%dT%H:%M:%SZ)" > "$S.tmp" && mv "$S.tmp" "$S"
}
__prov_health() {
  [ -f ./health.sh ] || return 127
  __n=0
  while :; do
    __prov_run health && return 0
    __rc=$?
    [ "$__rc" = 124 ] || [ "$__rc" = 137 ] && return "$__rc"
    __n=$((__n + 1))
    [ "$__n" -ge "\${PROV_HEALTH_RETRIES:-3}" ] && return "$__rc"
    sleep "\${PROV_HEALTH_INTERVAL:-1}"
  done
}
__prov_fail() { # phase rc
  if [ "$2" = 124 ] || [ "$2" = 137 ]; then
    echo "prov: $1.sh timed out after \${PROV_TIMEOUT}s and was killed on $PROV_SERVER" >&2
    __prov_result failed "$1" "$2" "$PROV_VERSION" "$PROV_INSTALLED_VERSION" timeout=1
  elif [ "$2" = 100 ]; then
    __prov_result skipped "$1" "$2" "$PROV_VERSION" "$PROV_INSTALLED_VERSION" unsupported=1
  else
    __prov_result failed "$1" "$2" "$PROV_VERSION" "$PROV_INSTALLED_VERSION"
  fi
}
__prov_main() {
  R="\${PROV_ROOT:-/var/lib/prov/taskservs}"
  D="$R/$PROV_TASKSERV"
  S="$R/$PROV_TASKSERV.json"
  T="$R/.upload-$PROV_TASKSERV-$$"
  mkdir -p "$R" || { __prov_result failed upload 1 "$PROV_VERSION" "" ; return 1; }
  rm -rf "$T" && mkdir -p "$T" && __prov_files "$T" || { echo "prov: cannot write $T" >&2; __prov_result failed upload 1 "$PROV_VERSION" ""; return 1; }
  rm -rf "$D" && mv "$T" "$D" || { __prov_result failed upload 1 "$PROV_VERSION" ""; return 1; }
  cd "$D" || return 1
  PROV_INSTALLED_VERSION=$(sed -n 's/.*"version":"\([^"]*\)".*/\1/p' "$S" 2>/dev/null | head -n 1)
  export PROV_DIR="$D" PROV_LIB="$D/_lib" PROV_STATE_FILE="$S" PROV_INSTALLED_VERSION
  case "$PROV_ACTION" in
  install)
    if [ -f "$S" ] && [ "$PROV_INSTALLED_VERSION" != "$PROV_VERSION" ]; then
      :
    elif __prov_run check; then
      [ -f "$S" ] || __prov_state "$PROV_VERSION" ""
      __prov_result ok check 0 "$PROV_VERSION" "" installed=1; return 0
    fi
    export PROV_PREVIOUS_VERSION="$PROV_INSTALLED_VERSION"
    __prov_run install; __rc=$?
    [ "$__rc" = 0 ] || { __prov_fail install "$__rc"; return 0; }
    __prov_run check; __rc=$?
    [ "$__rc" = 0 ] || { echo "prov: check.sh still fails after install.sh succeeded" >&2; __prov_fail check "$__rc"; return 0; }
    __prov_state "$PROV_VERSION" "$PROV_INSTALLED_VERSION"
    __prov_result changed install 0 "$PROV_VERSION" "$PROV_INSTALLED_VERSION" installed=1
    ;;
  remove)
    __had=0
    [ -f "$S" ] && __had=1
    [ "$__had" = 1 ] || { __prov_run check && __had=1; }
    __prov_run uninstall; __rc=$?
    [ "$__rc" = 0 ] || [ "$__rc" = 127 ] || { __prov_fail uninstall "$__rc"; return 0; }
    rm -f "$S"; cd / && rm -rf "$D"
    if [ "$__had" = 1 ]; then __prov_result changed uninstall 0 "$PROV_INSTALLED_VERSION" "" installed=0
    else __prov_result ok uninstall 0 "" "" installed=0; fi
    ;;
  update)
    __prev="$PROV_INSTALLED_VERSION"
    if [ "$__prev" = "$PROV_VERSION" ] && __prov_run check; then
      __prov_result ok check 0 "$PROV_VERSION" "" installed=1; return 0
    fi
    export PROV_PREVIOUS_VERSION="$__prev"
    __s=update; [ -f ./update.sh ] || __s=install
    __phase=""
    __prov_run "$__s"; __rc=$?
    if [ "$__rc" = 0 ]; then
      __prov_run check; __rc=$?; __phase=check
      if [ "$__rc" = 0 ]; then
        __prov_health; __rc=$?; __phase=health
        [ "$__rc" = 127 ] && __rc=0
      fi
    else __phase="$__s"; fi
    if [ "$__rc" = 0 ]; then
      __prov_state "$PROV_VERSION" "$__prev"
      __prov_result changed "$__s" 0 "$PROV_VERSION" "$__prev" installed=1; return 0
    fi
    echo "prov: $__phase failed (exit $__rc) for $PROV_TASKSERV $PROV_VERSION on $PROV_SERVER" >&2
    if [ -n "$__prev" ]; then
      echo "prov: rolling back $PROV_TASKSERV to $__prev" >&2
      __want="$PROV_VERSION"; PROV_VERSION="$__prev"; PROV_PREVIOUS_VERSION=""; export PROV_VERSION PROV_PREVIOUS_VERSION
      __prov_run "$__s" && __prov_run check && __prov_state "$__prev" "" && \
        { __prov_result failed "$__phase" "$__rc" "$__prev" "" "rolled_back=1 attempted=$__want"; return 0; }
      echo "prov: rollback to $__prev failed too" >&2
    fi
    __prov_result failed "$__phase" "$__rc" "$PROV_VERSION" "$__prev" rolled_back=0
    ;;
  health)
    __prov_health; __rc=$?
    case "$__rc" in
    0) __prov_result ok health 0 "$PROV_INSTALLED_VERSION" "" healthy=1 ;;
    127) __prov_result skipped health 127 "$PROV_INSTALLED_VERSION" "" ;;
    *) __prov_result failed health "$__rc" "$PROV_INSTALLED_VERSION" "" healthy=0 ;;
    esac
    ;;
  status|check)
    if __prov_run check; then
      __h=""
      if [ "$PROV_ACTION" = status ] && [ -f ./health.sh ]; then
        PROV_HEALTH_RETRIES=1; if __prov_health; then __h=healthy=1; else __h=healthy=0; fi
      fi
      __prov_result ok check 0 "\${PROV_INSTALLED_VERSION:-unknown}" "" "installed=1 $__h"
    elif [ -f "$S" ]; then
      __prov_result failed check 1 "$PROV_INSTALLED_VERSION" "" installed=0
    else
      __prov_result skipped check 1 "" "" installed=0
    fi
    ;;
  restart)
    if [ -f ./restart.sh ]; then __prov_run restart; __rc=$?
    else
      __rc=0; . "$PROV_LIB/service.sh" || __rc=1
      for __svc in $PROV_SERVICES; do [ "$__rc" = 0 ] && { svc_restart "$__svc" || __rc=1; }; done
    fi
    [ "$__rc" = 0 ] && __prov_result changed restart 0 "$PROV_INSTALLED_VERSION" "" || __prov_fail restart "$__rc"
    ;;
  logs)
    if [ -f ./logs.sh ]; then __prov_run logs; __rc=$?
    else
      __rc=0; . "$PROV_LIB/service.sh" || __rc=1
      for __svc in $PROV_SERVICES; do [ "$__rc" = 0 ] && svc_logs "$__svc" "\${PROV_TAIL:-50}"; done
    fi
    [ "$__rc" = 0 ] && __prov_result ok logs 0 "$PROV_INSTALLED_VERSION" "" || __prov_fail logs "$__rc"
    ;;
  *) echo "prov: unknown action $PROV_ACTION" >&2; __prov_result failed action 2 "" "" ;;
  esac
  return 0
}
`.replace(/\\\$\{/g, '${')

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
    MAIN,
    // Everything run from here on reads /dev/null: the rest of stdin is this program.
    '__prov_main </dev/null',
    'exit 0',
    '',
  ].join('\n')
}

const RESULT_MARK = '@@PROV_RESULT@@'

export interface ParsedRemoteResult {
  status: TaskStatus
  phase: string
  rc: number
  version: string
  previous: string
  flags: Record<string, string>
}

/** Parses the result line the remote program prints last. */
export function parseRemoteResult(stdout: string): ParsedRemoteResult | undefined {
  const index = stdout.lastIndexOf(RESULT_MARK)
  if (index < 0) return undefined
  const line = stdout.slice(index + RESULT_MARK.length).split('\n')[0]
  const fields: Record<string, string> = {}
  for (const match of line.matchAll(/([a-z_]+)=(\S*)/g)) fields[match[1]] = match[2]
  const status = fields.status as TaskStatus
  if (!['ok', 'changed', 'failed', 'skipped'].includes(status)) return undefined
  const { status: _s, phase = '', rc = '0', version = '', previous = '', ...flags } = fields
  return { status, phase, rc: Number(rc), version, previous, flags }
}

class OutputTail {
  private lines: string[] = []
  private partial: Record<'stdout' | 'stderr', string> = { stdout: '', stderr: '' }
  constructor(
    private readonly keep: number,
    private readonly onLine: (stream: 'stdout' | 'stderr', line: string) => void,
  ) {}
  push(stream: 'stdout' | 'stderr', chunk: string): void {
    const text = this.partial[stream] + chunk
    const parts = text.split('\n')
    this.partial[stream] = parts.pop() ?? ''
    for (const line of parts) this.add(stream, line)
  }
  flush(): void {
    for (const stream of ['stdout', 'stderr'] as const) {
      if (this.partial[stream]) this.add(stream, this.partial[stream])
      this.partial[stream] = ''
    }
  }
  private add(stream: 'stdout' | 'stderr', raw: string): void {
    if (raw.startsWith(RESULT_MARK) || (raw === '' && stream === 'stdout')) return
    // Progress bars redraw with \r: keep what the last redraw shows.
    const line = redactString(raw.replace(/\r+$/, '').split('\r').pop() ?? '')
    this.lines.push(line)
    if (this.lines.length > this.keep) this.lines.shift()
    this.onLine(stream, line)
  }
  text(): string {
    return this.lines.join('\n')
  }
}

function safeName(name: string): string {
  return name.replace(/[^A-Za-z0-9_.-]+/g, '_')
}

/** Runs one item on its host; never throws (a lost connection is a failed result). */
export async function runTaskItem<T>(item: TaskItem<T>, options: TaskRunOptions<T>, level = 0): Promise<TaskResult> {
  const started = Date.now()
  const timeoutSec = options.timeoutSec ?? 600
  const base = { schema: TASKSERV_RESULT_SCHEMA, server: item.host.name, taskserv: item.unit.name, action: item.action } as const
  let log: WriteStream | undefined
  let logPath: string | undefined
  if (options.logDir) {
    mkdirSync(join(options.logDir, safeName(item.host.name)), { recursive: true })
    logPath = join(options.logDir, safeName(item.host.name), `${safeName(item.unit.name)}-${item.action}.log`)
    log = createWriteStream(logPath, { flags: 'a', mode: 0o600 })
    log.write(`# ${new Date().toISOString()} ${item.action} ${item.unit.name} ${item.unit.version} on ${item.host.name}\n`)
  }
  const tail = new OutputTail(options.tailLines ?? 20, (stream, line) => {
    log?.write(`${stream === 'stderr' ? '! ' : '  '}${line}\n`)
    options.onEvent?.({ type: 'output', host: item.host.name, taskserv: item.unit.name, stream, line })
  })
  options.onEvent?.({ type: 'start', host: item.host.name, taskserv: item.unit.name, action: item.action, level })
  let result: TaskResult
  try {
    const env = await taskEnvironment(item, options)
    const program = buildRemoteProgram(env, taskservBundle(item.unit.dir, options.libDir), options.remoteRoot)
    // Backstop on the client: check + install + check may each take the whole script timeout.
    const scripts = item.action === 'install' || item.action === 'update' ? 4 : 2
    let stdoutAll = ''
    const response = await options.runner.exec(item.host.target, 'sh -s', {
      stdin: program,
      timeoutMs: (timeoutSec * scripts + 15) * 1000,
      onStdout: (chunk) => {
        const text = String(chunk)
        stdoutAll += text
        tail.push('stdout', text)
      },
      onStderr: (chunk) => tail.push('stderr', String(chunk)),
    })
    tail.flush()
    const parsed = parseRemoteResult(stdoutAll || response.stdout)
    if (!parsed) {
      if (!stdoutAll && response.stdout) tail.push('stdout', response.stdout)
      if (response.stderr && !tail.text().includes(response.stderr.trim().split('\n').pop() ?? '')) tail.push('stderr', response.stderr)
      tail.flush()
      result = {
        ...base,
        status: 'failed',
        version: item.unit.version,
        exit_code: response.code ?? -1,
        duration_ms: Date.now() - started,
        output: tail.text(),
        error: `the remote program ended without a result (exit ${response.code ?? 'signal'})`,
      }
    } else {
      result = {
        ...base,
        status: parsed.status,
        phase: parsed.phase,
        exit_code: parsed.rc,
        version: parsed.version || undefined,
        ...(parsed.previous ? { previous_version: parsed.previous } : {}),
        duration_ms: Date.now() - started,
        output: tail.text(),
        ...(parsed.flags.rolled_back !== undefined ? { rolled_back: parsed.flags.rolled_back === '1' } : {}),
        ...(parsed.flags.attempted ? { attempted_version: parsed.flags.attempted } : {}),
        ...(parsed.flags.installed !== undefined ? { installed: parsed.flags.installed === '1' } : {}),
        ...(parsed.flags.healthy !== undefined ? { healthy: parsed.flags.healthy === '1' } : {}),
      }
      if (parsed.status === 'failed') {
        result.error =
          parsed.flags.timeout === '1'
            ? `${parsed.phase}.sh timed out after ${timeoutSec}s (killed on the server)`
            : `${parsed.phase}${parsed.phase.includes('.') ? '' : '.sh'} failed with exit code ${parsed.rc}${parsed.flags.rolled_back === '1' ? `; rolled back to ${parsed.version}` : ''}`
      }
    }
  } catch (error) {
    tail.flush()
    result = {
      ...base,
      status: 'failed',
      version: item.unit.version,
      duration_ms: Date.now() - started,
      output: tail.text(),
      error: redactString((error as Error)?.message ?? String(error)),
    }
  }
  if (logPath) result.log = logPath
  result.level = level
  if (log) {
    log.write(`# ${result.status}${result.error ? `: ${result.error}` : ''} (${result.duration_ms} ms)\n`)
    await new Promise<void>((resolve) => log?.end(resolve))
  }
  options.onEvent?.({ type: 'end', result })
  return result
}

async function mapLimit<I, O>(items: I[], limit: number, fn: (item: I) => Promise<O>): Promise<O[]> {
  const out: O[] = new Array(items.length)
  let next = 0
  const worker = async () => {
    while (next < items.length) {
      const index = next++
      out[index] = await fn(items[index])
    }
  }
  await Promise.all(Array.from({ length: Math.max(1, Math.min(limit, items.length)) }, worker))
  return out
}

/**
 * Runs levels of items: a level starts when the previous one has finished on every host; inside
 * a level, up to `parallel` hosts work at once and one host's items run side by side. A failure
 * stops that host (its later items are skipped) while the other hosts continue; items depending on
 * a failed name are skipped.
 */
export async function runTaskLevels<T>(levels: TaskItem<T>[][], options: TaskRunOptions<T>): Promise<TaskResult[]> {
  const results: TaskResult[] = []
  const failedHosts = new Map<string, string>()
  const failedNames = new Map<string, Set<string>>() // name -> hosts where it failed or was skipped
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
            const skipped: TaskResult = {
              schema: TASKSERV_RESULT_SCHEMA,
              server: item.host.name,
              taskserv: item.unit.name,
              action: item.action,
              status: 'skipped',
              version: item.unit.version,
              duration_ms: 0,
              output: '',
              error: blockedBy ? `not run: ${blockedBy} failed earlier on ${item.host.name}` : `not run: its requirement '${dependency}' failed`,
              level,
            }
            options.onEvent?.({ type: 'end', result: skipped })
            return skipped
          }
          return runTaskItem(item, options, level)
        }),
      ),
    )
    for (const result of levelResults.flat()) {
      results.push(result)
      if (result.status === 'failed' || (result.status === 'skipped' && result.error?.startsWith('not run'))) {
        if (result.status === 'failed' && options.stopOnFailure !== false && !failedHosts.has(result.server)) failedHosts.set(result.server, result.taskserv)
        const hosts = failedNames.get(result.taskserv) ?? new Set<string>()
        hosts.add(result.server)
        failedNames.set(result.taskserv, hosts)
      }
    }
  }
  return results
}
