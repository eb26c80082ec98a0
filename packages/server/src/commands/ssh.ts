import { spawn } from 'node:child_process'
import { defineProvCommand, deniedError, failedError, getServer, pinnedHostKeys, sshConnectionOptions, systemSshArgs, targetOf, usageError } from '@prov/core'
import { liveServers, serverEnv } from '../engine'

export default defineProvCommand({
  meta: {
    name: 'ssh',
    description: 'Open an SSH session (or run CMD after --) with the workspace key and the pinned host key',
    examples: ['prov-server ssh web-01', 'prov-server ssh web-01 -- uptime'],
    mutating: false,
    // --check prints the ssh command line instead of connecting.
    uses: ['check'],
  },
  args: { name: { type: 'positional', required: false, description: 'Server name' } },
  async run(ctx) {
    const name = ctx.positionals[0]
    if (!name || ctx.positionals.length > 1) throw usageError('ssh takes one server name', { hint: 'prov-server ssh web-01 -- uptime' })
    if (name === 'all') throw usageError('ssh connects to one server, not all', { hint: 'prov-server exec all -- CMD runs a command on every server' })
    const env = await serverEnv(ctx.common)
    const { privateKeyPath } = sshConnectionOptions(env.config.ssh)
    const record = getServer(env.workspace, name)
    const target = targetOf(record)
    const args = [
      ...systemSshArgs(env.workspace, target, {
        batch: !process.stdin.isTTY,
        privateKeyPath,
        connectTimeoutS: env.config.ssh.connect_timeout,
      }),
      // systemSshArgs ends with `-- host`: what follows is the remote command, never an option.
      ...ctx.dashArgs,
    ]
    if (ctx.common.check) {
      ctx.emit({ schema: 'prov.server.ssh/v1', server: name, command: ['ssh', ...args] })
      return
    }
    const [live] = await liveServers(env, [record])
    if (live.status !== 'running' && live.status !== 'unknown') {
      throw failedError(`server is ${live.status}`, {
        location: name,
        hint: live.status === 'stopped' ? `prov-server start ${name}` : `prov-server info ${name}`,
      })
    }
    if (!pinnedHostKeys(env.workspace, target.host, target.port).length) {
      throw deniedError(`no pinned host key for ${name} (${target.host}:${target.port})`, {
        location: env.workspace.paths.knownHosts,
        hint: 'host keys are pinned when a server is created; re-create it',
      })
    }
    // stderr is watched (and passed on) so a changed host key maps to exit 4 like everywhere else.
    const child = spawn('ssh', args, { stdio: ['inherit', 'inherit', 'pipe'] })
    let keyChanged = false
    child.stderr?.on('data', (chunk: Buffer) => {
      const text = chunk.toString()
      if (/REMOTE HOST IDENTIFICATION HAS CHANGED|Host key verification failed/.test(text)) keyChanged = true
      process.stderr.write(chunk)
    })
    const code = await new Promise<number>((resolve, reject) => {
      child.once('error', reject)
      child.once('close', (c, signal) => resolve(c ?? (signal ? 128 : 1)))
    })
    if (code === 255 && keyChanged) {
      throw deniedError(`host key of ${name} (${target.host}:${target.port}) does not match the pinned key`, {
        location: env.workspace.paths.knownHosts,
        hint: 'the host was replaced or someone is intercepting; re-create the server if the change is expected',
      })
    }
    return code
  },
})
