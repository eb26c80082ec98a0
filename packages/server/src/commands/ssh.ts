import { spawn } from 'node:child_process'
import { defineProvCommand, getServer, systemSshArgs, targetOf, usageError } from '@prov/core'
import { serverEnv } from '../engine'

export default defineProvCommand({
  meta: { name: 'ssh', description: 'Open an SSH session (or run CMD after --) with the workspace key and the pinned host key' },
  args: { name: { type: 'positional', required: false, description: 'Server name' } },
  async run(ctx) {
    const name = ctx.positionals[0]
    if (!name || ctx.positionals.length > 1) throw usageError('ssh takes one server name', { hint: 'prov-server ssh web-01 -- uptime' })
    const env = await serverEnv(ctx.common, { config: false })
    const record = getServer(env.workspace, name)
    const args = [...systemSshArgs(env.workspace, targetOf(record), { batch: !process.stdin.isTTY }), ...(ctx.dashArgs.length ? ['--', ...ctx.dashArgs] : [])]
    if (ctx.common.check) {
      ctx.emit({ schema: 'prov.server.ssh/v1', server: name, command: ['ssh', ...args] })
      return
    }
    const child = spawn('ssh', args, { stdio: 'inherit' })
    const code = await new Promise<number>((resolve, reject) => {
      child.once('error', reject)
      child.once('exit', (c, signal) => resolve(c ?? (signal ? 128 : 1)))
    })
    // ssh exits 255 for its own errors (host key mismatch, unreachable); pass the remote code through otherwise.
    return code
  },
})
