import { ensureWorkspaceKey, failedError, forgetHostKey, pinHostKey, type ServerRecord, SshPool, usageError } from '@prov/core'
import type { Provider } from './types'

/** `ssh`: existing hosts by address (bring your own servers). create pins and checks; delete forgets. */
export const sshProvider: Provider = {
  name: 'ssh',
  capabilities: { start_stop: false, keep_storage: false, plans: false, zones: false, price: false, root: false },

  validateConfig() {
    return []
  },

  validateSpec(spec) {
    return spec.address ? [] : ['the ssh provider needs an address (host name or IP of an existing host)']
  },

  async list(_ctx, records) {
    return records
  },

  async create(ctx, spec, record) {
    const address = spec.address as string
    const connectTimeoutMs = ctx.rootConfig.ssh.connect_timeout * 1000
    await ensureWorkspaceKey(ctx.workspace)
    await pinHostKey(ctx.workspace, address, spec.ssh.port, { timeoutMs: connectTimeoutMs })
    // One retry at most: the host just answered ssh-keyscan, a login failure will not heal.
    const pool = SshPool.fromConfig(ctx.workspace, ctx.rootConfig.ssh, { retries: Math.min(ctx.rootConfig.ssh.retries, 1) })
    const next: ServerRecord = { ...record, ip_address: address, hostname: address, status: 'creating', zone: spec.zone, image: spec.image }
    try {
      const result = await pool.exec({ name: spec.name, host: address, port: spec.ssh.port, user: spec.ssh.user }, 'hostname', { timeoutMs: connectTimeoutMs })
      if (result.code === 0 && result.stdout.trim()) next.hostname = result.stdout.trim()
    } finally {
      await pool.closeAll()
    }
    const running: ServerRecord = { ...next, status: 'running' }
    await ctx.save(running, { address })
    return running
  },

  async delete(ctx, record) {
    // Only forget: the host belongs to the user.
    if (record.ip_address) await forgetHostKey(ctx.workspace, record.ip_address, record.ssh.port)
  },

  async start(_ctx, record) {
    // Not an input mistake but an action this provider does not have: a failed action (1).
    throw failedError(`server '${record.name}' uses the ssh provider, which cannot start hosts`, { hint: 'start the host yourself' })
  },

  async stop(_ctx, record) {
    throw failedError(`server '${record.name}' uses the ssh provider, which cannot stop hosts`, { hint: 'stop the host yourself' })
  },

  async info(_ctx, record) {
    return { address: record.ip_address, port: record.ssh.port }
  },

  async plans() {
    return []
  },
  async zones() {
    return []
  },
  async price() {
    return null
  },
}

export default sshProvider
