import { defineProvCommand, ExitCode, expandHome, isProvError, SshPool, targetOf, usageError } from '@prov/core'
import { parallelOf, serverEnv, targetServers } from '../engine'

export default defineProvCommand({
  meta: { name: 'exec', description: 'Run a command on servers in parallel (NAME... | all | piped records) -- CMD; one prov.server.exec/v1 record each' },
  args: {
    names: { type: 'positional', required: false, description: 'Server names or all (default: piped prov.server/v1 records)', valueHint: 'NAME...' },
    timeout: { type: 'string', description: 'Seconds before the command is killed (default taskservs.timeout)' },
  },
  async run(ctx) {
    if (!ctx.dashArgs.length) throw usageError('exec needs a command after --', { hint: 'prov-server exec all -- hostname' })
    const env = await serverEnv(ctx.common)
    const targets = await targetServers(ctx, env, { allowAll: true })
    const command =
      ctx.dashArgs.length === 1 ? ctx.dashArgs[0] : ctx.dashArgs.map((a) => (/^[\w@%+=:,./-]+$/.test(a) ? a : `'${a.replace(/'/g, `'\\''`)}'`)).join(' ')
    const timeoutS =
      ctx.args.timeout === undefined ? Number((env.config.taskservs as Record<string, unknown> | undefined)?.timeout ?? 600) : Number(ctx.args.timeout)
    if (!Number.isFinite(timeoutS) || timeoutS <= 0) throw usageError(`invalid --timeout '${String(ctx.args.timeout)}'`, { location: '--timeout' })
    if (ctx.common.check) {
      ctx.emit(targets.map((s) => ({ schema: 'prov.server.exec/v1', server: s.name, command, check: true })))
      return
    }
    const ssh = (env.config.ssh ?? {}) as Record<string, unknown>
    const pool = new SshPool(env.workspace, {
      connectTimeoutMs: Number(ssh.connect_timeout ?? 10) * 1000,
      retries: Number(ssh.retries ?? 3),
      idleTimeoutMs: Number(ssh.idle_timeout ?? 30) * 1000,
      privateKeyPath: typeof ssh.key_path === 'string' && ssh.key_path ? expandHome(ssh.key_path) : undefined,
    })
    const writer = ctx.writer()
    const results = new Map<string, Record<string, unknown>>()
    let failed = 0
    const connectCodes: number[] = []
    const queue = [...targets]
    try {
      await Promise.all(
        Array.from({ length: Math.min(parallelOf(ctx.common, 20), queue.length) }, async () => {
          for (let server = queue.shift(); server; server = queue.shift()) {
            const started = Date.now()
            let record: Record<string, unknown>
            try {
              const result = await pool.exec(targetOf(server), command, { timeoutMs: timeoutS * 1000 })
              record = {
                schema: 'prov.server.exec/v1',
                server: server.name,
                exit_code: result.code,
                stdout: result.stdout,
                stderr: result.stderr,
                duration_ms: result.durationMs,
              }
            } catch (error) {
              connectCodes.push(isProvError(error) ? error.code : ExitCode.FAILED)
              record = {
                schema: 'prov.server.exec/v1',
                server: server.name,
                exit_code: -1,
                stdout: '',
                stderr: '',
                error: (error as Error).message,
                duration_ms: Date.now() - started,
              }
            }
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
    if (writer.format !== 'ndjson') for (const server of targets) writer.write(results.get(server.name))
    writer.end()
    if (!failed) return ExitCode.OK
    // Every target refused the same way (e.g. host key mismatch = 4): that is the answer.
    if (connectCodes.length === targets.length && new Set(connectCodes).size === 1) return connectCodes[0]
    return failed === targets.length && targets.length === 1 ? ExitCode.FAILED : ExitCode.PARTIAL
  },
})
