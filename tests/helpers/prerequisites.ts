import { spawnSync } from 'node:child_process'
import { readFileSync } from 'node:fs'

/** One thing an end-to-end test needs from the host, and how to check it. */
export interface Prerequisite {
  /** What is missing, as a person would fix it: `root`, `the unshare tool`. */
  what: string
  ok: () => boolean
}

export const isRoot = typeof process.getuid === 'function' && process.getuid() === 0

/** A prerequisite that a command-line tool is on PATH (or at an absolute path). */
export const tool = (name: string): Prerequisite => ({
  what: `the ${name} tool`,
  ok: () => spawnSync('sh', ['-c', `command -v ${name}`]).status === 0,
})

export const root: Prerequisite = { what: 'root', ok: () => isRoot }

/** Creating namespaces works (it can fail even as root, in an unprivileged container). */
export const namespaces: Prerequisite = {
  what: 'working namespaces (unshare --net --mount --uts --pid)',
  ok: () => isRoot && spawnSync('unshare', ['--net', '--mount', '--uts', '--pid', '--fork', 'true']).status === 0,
}

/**
 * Whether the tests of `suite` can run here. When one of the prerequisites is missing: under CI
 * (`CI` set) this throws, so the run fails with the reason instead of passing with silent skips;
 * locally it prints the reason once on stderr and returns false (use with `describe.skipIf`).
 */
export function prerequisitesMet(suite: string, prerequisites: Prerequisite[]): boolean {
  const missing = prerequisites.filter((p) => !p.ok()).map((p) => p.what)
  if (!missing.length) return true
  const reason = `${suite}: needs ${missing.join(', ')}`
  if (process.env.CI) throw new Error(`${reason} (CI never skips end-to-end tests; install it or run as root)`)
  process.stderr.write(`skipping ${reason}\n`)
  return false
}

/** User namespaces are enabled (local sandboxes map their root to an unprivileged uid range). */
export const userNamespaces: Prerequisite = {
  what: 'user namespaces (user.max_user_namespaces > 0)',
  ok: () => {
    try {
      return Number(readFileSync('/proc/sys/user/max_user_namespaces', 'utf8').trim()) > 0
    } catch {
      return false
    }
  },
}

/**
 * What the local provider's real sandboxes need: root, namespaces (user ones included), iproute2,
 * iptables, sshd, and bubblewrap/setpriv/mmdebstrap (scripts/setup.sh installs them).
 */
export const sandboxPrerequisites: Prerequisite[] = [
  root,
  ...['ip', 'unshare', 'nsenter', 'iptables', 'setpriv', 'bwrap', 'mmdebstrap', '/usr/sbin/sshd', 'ssh-keygen'].map(tool),
  namespaces,
  userNamespaces,
]
