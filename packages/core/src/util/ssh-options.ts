import { expandHome } from '../paths'

/** The `ssh` section of the configuration (see config/schema.ts), as far as connections need it. */
export interface SshSettings {
  connect_timeout: number
  retries: number
  idle_timeout: number
  key_path?: string
}

/** Options of an SSH connection pool, in the units the pool uses. */
export interface SshConnectionOptions {
  connectTimeoutMs: number
  retries: number
  idleTimeoutMs: number
  privateKeyPath?: string
}

/**
 * SSH pool options from the `ssh` config section: seconds become milliseconds, `~` in `key_path`
 * is expanded, and `overrides` (e.g. fewer retries for a probe) win. The defaults live in the
 * configuration defaults only.
 */
export function sshConnectionOptions(ssh: SshSettings, overrides: Partial<SshConnectionOptions> = {}): SshConnectionOptions {
  return {
    connectTimeoutMs: ssh.connect_timeout * 1000,
    retries: ssh.retries,
    idleTimeoutMs: ssh.idle_timeout * 1000,
    ...(ssh.key_path ? { privateKeyPath: expandHome(ssh.key_path) } : {}),
    ...overrides,
  }
}
