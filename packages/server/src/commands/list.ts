import { existsSync } from 'node:fs'
import { join, resolve } from 'node:path'
import { defineProvCommand, ExitCode, isWorkspaceDir, listServers, serverStatuses, usageError } from '@prov/core'
import { liveServers, serverEnv, type UnreadProvider } from '../engine'

export default defineProvCommand({
  meta: {
    name: 'list',
    description: 'List servers (prov.server/v1 records) with their live status',
    examples: ['prov-server list', 'prov-server list --status running --out json'],
    mutating: false,
    uses: ['infra'],
  },
  args: {
    provider: { type: 'string', description: 'Only servers of this provider' },
    status: { type: 'enum', options: [...serverStatuses], description: 'Only servers in this status' },
  },
  async run(ctx) {
    const status = ctx.args.status as string | undefined
    if (status && !(serverStatuses as readonly string[]).includes(status)) {
      throw usageError(`unknown status '${status}'`, { location: '--status', hint: `one of ${serverStatuses.join(', ')}` })
    }
    // Fast path (cold-start benchmark P1): a workspace given by path, or the current folder, with
    // no server state yet needs neither the workspace registry nor any provider.
    const direct = ctx.common.workspace ?? process.env.PROV_WORKSPACE
    const candidate = direct ? (direct.includes('/') ? resolve(direct) : undefined) : process.cwd()
    if (candidate && isWorkspaceDir(candidate) && !existsSync(join(candidate, '.prov', 'servers.json'))) {
      ctx.emit([])
      return
    }
    const env = await serverEnv(ctx.common)
    // Fast path: no state file, nothing to load (cold-start benchmark P1).
    let servers = existsSync(env.workspace.paths.servers) ? listServers(env.workspace) : []
    if (ctx.common.infra) servers = servers.filter((s) => s.infra === ctx.common.infra)
    if (ctx.args.provider) servers = servers.filter((s) => s.provider === ctx.args.provider)
    // Only the providers of the servers listed are asked (and can fail the listing).
    const unread: UnreadProvider[] = []
    if (servers.length) servers = await liveServers(env, servers, (failure) => unread.push(failure))
    if (status) servers = servers.filter((s) => s.status === status)
    ctx.emit(servers)
    // The records are printed either way; the exit code says the list is not the cloud's word:
    // the providers' common code (4 credentials refused, 3 a missing one), else 1.
    if (!unread.length) return
    const codes = new Set(unread.map((u) => u.error.code))
    const [only] = codes
    return codes.size === 1 ? only : ExitCode.FAILED
  },
})
