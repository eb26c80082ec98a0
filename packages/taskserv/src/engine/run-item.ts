/** One item on its host: one remote exec, its output streamed to events and a log file, one result. */
import { createWriteStream, mkdirSync, type WriteStream } from 'node:fs'
import { join } from 'node:path'
import { redactString } from '@prov/core'
import { taskservBundle } from './bundle'
import { taskEnvironment } from './environment'
import { OutputTail } from './output-tail'
import { buildRemoteProgram, type ParsedRemoteResult, parseRemoteResult } from './program'
import { TASKSERV_RESULT_SCHEMA, type TaskItem, type TaskResult, type TaskRunOptions } from './types'

function safeName(name: string): string {
  return name.replace(/[^A-Za-z0-9_.-]+/g, '_')
}

function errorOf(parsed: ParsedRemoteResult, timeoutSec: number): string {
  if (parsed.flags.timeout === '1') return `${parsed.phase}.sh timed out after ${timeoutSec}s (killed on the server)`
  const script = `${parsed.phase}${parsed.phase.includes('.') ? '' : '.sh'}`
  return `${script} failed with exit code ${parsed.rc}${parsed.flags.rolled_back === '1' ? `; rolled back to ${parsed.version}` : ''}`
}

/** The reason a script gave with prov_unsupported (base64 in the result line), redacted, one line. */
function unsupportedReason(parsed: ParsedRemoteResult): string {
  const text =
    Buffer.from(parsed.flags.note ?? '', 'base64')
      .toString('utf8')
      .trim()
      .split('\n')[0] ?? ''
  return redactString(text) || `${parsed.phase}.sh gave no reason`
}

/** Runs one item on its host; never throws (a lost connection is a failed result). */
export async function runTaskItem<T>(item: TaskItem<T>, options: TaskRunOptions<T>, level = 0): Promise<TaskResult> {
  const started = Date.now()
  const timeoutSec = options.timeoutSec ?? 600
  const base = { schema: TASKSERV_RESULT_SCHEMA, server: item.host.name, taskserv: item.unit.name, action: item.action } as const
  let log: WriteStream | undefined
  let logPath: string | undefined
  if (options.logDir) {
    // Logs hold what install scripts print: 0600 files in 0700 folders, like the rest of the state.
    mkdirSync(join(options.logDir, safeName(item.host.name)), { recursive: true, mode: 0o700 })
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
        ...(parsed.reason ? { reason: parsed.reason } : {}),
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
      if (parsed.status === 'failed') result.error = errorOf(parsed, timeoutSec)
      if (parsed.reason === 'unsupported') result.error = `unsupported on this host: ${unsupportedReason(parsed)}`
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
