import {
  defineProvCommand,
  ExitCode,
  emit,
  isProvError,
  type OutputFormat,
  type ServerRecord,
  SshPool,
  shellQuote,
  targetOf,
  usageError,
  writeStdout,
} from '@prov/core'
import { liveServers, parallelOf, serverEnv, targetServers } from '../engine'

/** Output kept per stream and server unless --max-output says otherwise. */
const defaultMaxOutput = 4 << 20
/** Largest --max-output: one record's text must stay far below the longest string JavaScript can hold. */
const maxMaxOutput = 256 << 20

/** `4M`, `512K`, `1G`, `1048576` -> bytes. */
export function parseSize(value: string, flag: string): number {
  const match = /^(\d+)\s*([KMG])?i?B?$/i.exec(value.trim())
  const bytes = match ? Number(match[1]) * 1024 ** ' KMG'.indexOf((match[2] ?? ' ').toUpperCase()) : Number.NaN
  if (!Number.isSafeInteger(bytes) || bytes < 1 || bytes > maxMaxOutput) {
    throw usageError(`invalid ${flag} '${value}'`, { location: flag, hint: `a size from 1 to ${maxMaxOutput >> 20}M, such as 4M or 512K` })
  }
  return bytes
}

const mib = (bytes: number) => (bytes >= 1 << 20 ? `${Math.round((bytes / (1 << 20)) * 10) / 10} MiB` : `${bytes} bytes`)

/**
 * Prints whole documents one record at a time: a JSON array of large records is written piece by
 * piece instead of as one string (the same text as JSON.stringify(records, null, 2)).
 */
function writeRecords(records: unknown[], format: OutputFormat): void {
  if (format !== 'json' || !records.length) {
    emit(records, format)
    return
  }
  writeStdout('[\n')
  records.forEach((record, index) => {
    writeStdout(`  ${JSON.stringify(record, null, 2).replace(/\n/g, '\n  ')}${index < records.length - 1 ? ',' : ''}\n`)
  })
  writeStdout(']\n')
}

type ExecRecord = Record<string, unknown> & { server: string; exit_code: number; error?: string }

function unreachable(server: ServerRecord, error: string, durationMs = 0): ExecRecord {
  return { schema: 'prov.server.exec/v1', server: server.name, exit_code: -1, stdout: '', stderr: '', error, duration_ms: durationMs }
}

export default defineProvCommand({
  meta: {
    name: 'exec',
    description: 'Run a command on servers in parallel (NAME... | all | piped records) -- CMD; one prov.server.exec/v1 record each',
    examples: ['prov-server exec all -- hostname', 'prov-server exec web-01 web-02 -- uptime'],
    mutating: true,
    uses: ['infra', 'parallel'],
  },
  args: {
    names: { type: 'positional', required: false, description: 'Server names or all (default: piped prov.server/v1 records)', valueHint: 'NAME...' },
    timeout: { type: 'string', description: 'Seconds before the command is killed (default taskservs.timeout)' },
    'max-output': { type: 'string', description: 'Output kept per stream and server, e.g. 4M (default); the rest is dropped and flagged', valueHint: 'SIZE' },
  },
  async run(ctx) {
    if (!ctx.dashArgs.length) throw usageError('exec needs a command after --', { hint: 'prov-server exec all -- hostname' })
    const env = await serverEnv(ctx.common)
    const targets = await targetServers(ctx, env)
    // One word after -- is the user's shell command as typed; several words are kept apart.
    const command = ctx.dashArgs.length === 1 ? ctx.dashArgs[0] : ctx.dashArgs.map(shellQuote).join(' ')
    const timeoutS = ctx.args.timeout === undefined ? env.config.taskservs.timeout : Number(ctx.args.timeout)
    if (!Number.isFinite(timeoutS) || timeoutS <= 0) throw usageError(`invalid --timeout '${String(ctx.args.timeout)}'`, { location: '--timeout' })
    const maxOutput = ctx.args['max-output'] === undefined ? defaultMaxOutput : parseSize(String(ctx.args['max-output']), '--max-output')
    if (ctx.common.check) {
      ctx.emit(targets.map((s) => ({ schema: 'prov.server.exec/v1', server: s.name, command, check: true })))
      return
    }
    const status = new Map((await liveServers(env, targets)).map((s) => [s.name, s.status]))
    const pool = SshPool.fromConfig(env.workspace, env.config.ssh)
    const writer = ctx.writer()
    const results = new Map<string, ExecRecord>()
    let failed = 0
    const connectCodes: number[] = []
    const queue = [...targets]
    const runOne = async (server: ServerRecord): Promise<ExecRecord> => {
      const state = status.get(server.name) ?? 'unknown'
      // A server that is not up fails at once: connecting would only wait for a timeout.
      if (state !== 'running' && state !== 'unknown') {
        connectCodes.push(ExitCode.FAILED)
        return unreachable(server, `server is ${state}`)
      }
      const started = Date.now()
      try {
        const result = await pool.exec(targetOf(server), command, { timeoutMs: timeoutS * 1000, maxOutputBytes: maxOutput })
        const record: ExecRecord = {
          schema: 'prov.server.exec/v1',
          server: server.name,
          exit_code: result.code,
          stdout: result.stdout,
          stderr: result.stderr,
          duration_ms: result.durationMs,
        }
        for (const stream of ['stdout', 'stderr'] as const) {
          if (!result[`${stream}Truncated`]) continue
          const total = result[`${stream}Bytes`]
          record[`${stream}_truncated`] = true
          record[`${stream}_bytes`] = total
          ctx.log.warn(`${server.name}: ${stream} was ${mib(total)}; kept the first ${mib(maxOutput)} (raise --max-output, or write big output to a file)`)
        }
        return record
      } catch (error) {
        connectCodes.push(isProvError(error) ? error.code : ExitCode.FAILED)
        return unreachable(server, (error as Error).message, Date.now() - started)
      }
    }
    try {
      await Promise.all(
        Array.from({ length: Math.min(parallelOf(ctx.common, 20), queue.length) }, async () => {
          for (let server = queue.shift(); server; server = queue.shift()) {
            const record = await runOne(server)
            if (record.exit_code !== 0) {
              failed++
              if (!ctx.common.quiet) ctx.log.warn(`${server.name}: ${record.error ?? `exit ${record.exit_code}`}`)
            }
            results.set(server.name, record)
            // NDJSON streams as results arrive; whole documents keep the target order.
            if (writer.format === 'ndjson') writer.write(record)
          }
        }),
      )
    } finally {
      await pool.closeAll()
    }
    if (writer.format === 'ndjson') writer.end()
    else
      writeRecords(
        targets.map((s) => results.get(s.name)),
        writer.format,
      )
    if (!failed) return ExitCode.OK
    if (failed < targets.length) return ExitCode.PARTIAL
    // Every target refused the same way (e.g. host key mismatch = 4): that is the answer.
    if (connectCodes.length === targets.length && new Set(connectCodes).size === 1) return connectCodes[0]
    return ExitCode.FAILED
  },
})
