import { execFileSync, spawnSync } from 'node:child_process'
import { readdirSync, readFileSync, readlinkSync, writeFileSync } from 'node:fs'
import { join } from 'node:path'

export const isRoot = typeof process.getuid === 'function' && process.getuid() === 0
export const hasTools = ['ip', 'unshare', 'nsenter', 'iptables', '/usr/sbin/sshd', 'ssh-keygen'].every(
  (tool) => spawnSync('sh', ['-c', `command -v ${tool}`]).status === 0,
)
// Namespaces can be unavailable even as root (an unprivileged container): then the e2e tests skip.
const namespacesWork = isRoot && hasTools && spawnSync('unshare', ['--net', '--mount', '--uts', '--pid', '--fork', 'true']).status === 0
export const canSandbox = namespacesWork

/** Points a workspace's local provider at its own subnet and bridge (tests never share one). */
export function useSubnet(workspacePath: string, subnet: string, bridge: string): void {
  const file = join(workspacePath, 'prov.config.yaml')
  const text = readFileSync(file, 'utf8')
  const replaced = text.replace(/subnet: [\d./]+/, `subnet: ${subnet}`).replace(/bridge: \S+/, `bridge: ${bridge}`)
  writeFileSync(
    file,
    replaced.includes(`bridge: ${bridge}`) ? replaced : `${text}\nproviders:\n  local:\n    subnet: ${subnet}\n    bridge: ${bridge}\n    nat: true\n`,
  )
}

const run = (file: string, args: string[]) => spawnSync(file, args, { encoding: 'utf8' })

export const netnsWith = (prefix: string) =>
  run('ip', ['netns', 'list'])
    .stdout.split('\n')
    .map((l) => l.split(' ')[0])
    .filter((n) => n.startsWith(`${prefix}-`))

export const linksWith = (prefix: string) =>
  run('ip', ['-o', 'link', 'show'])
    .stdout.split('\n')
    .map((l) => l.split(': ')[1]?.split('@')[0])
    .filter((n): n is string => !!n && n.startsWith(prefix))

export const mountsUnder = (dir: string) =>
  readFileSync('/proc/mounts', 'utf8')
    .split('\n')
    .filter((l) => l.includes(dir))

/** Processes whose root directory is inside `dir` (sandboxes chroot into their overlay there). */
export function processesRootedIn(dir: string): string[] {
  const found: string[] = []
  for (const pid of readdirSync('/proc').filter((e) => /^\d+$/.test(e))) {
    try {
      const root = readlinkSync(`/proc/${pid}/root`)
      if (root.startsWith(dir)) found.push(`${pid} ${root}`)
    } catch {
      // exited or not ours to read
    }
  }
  return found
}

/**
 * Safety net: removes every namespace, link and NAT rule with the prefix, even after a failed
 * test. Processes inside the namespaces are killed first.
 */
export function cleanupPrefix(bridge: string): void {
  for (const ns of netnsWith(bridge)) {
    const pids = run('ip', ['netns', 'pids', ns]).stdout.split(/\s+/).filter(Boolean)
    for (const pid of pids) {
      try {
        process.kill(Number(pid), 'SIGKILL')
      } catch {
        // gone
      }
    }
    run('ip', ['netns', 'del', ns])
  }
  for (const link of linksWith(bridge)) run('ip', ['link', 'del', link])
  for (const table of [['-t', 'nat'], []]) {
    const rules = run('iptables', ['-w', ...table, '-S']).stdout.split('\n')
    for (const rule of rules.filter((r) => r.includes(`prov:${bridge}`) && r.startsWith('-A '))) {
      const args =
        rule
          .slice(3)
          .match(/"[^"]*"|\S+/g)
          ?.map((a) => a.replace(/^"|"$/g, '')) ?? []
      run('iptables', ['-w', ...table, '-D', ...args])
    }
  }
}

export function systemSsh(workspacePath: string, ip: string, command: string, port = 22) {
  return spawnSync(
    'ssh',
    [
      '-i',
      join(workspacePath, '.prov/ssh/id_ed25519'),
      '-p',
      String(port),
      '-o',
      'StrictHostKeyChecking=yes',
      '-o',
      `UserKnownHostsFile=${join(workspacePath, '.prov/known_hosts')}`,
      '-o',
      'BatchMode=yes',
      '-o',
      'ConnectTimeout=10',
      `root@${ip}`,
      command,
    ],
    { encoding: 'utf8', timeout: 30_000 },
  )
}

export const sh = (command: string) => execFileSync('sh', ['-c', command], { encoding: 'utf8' })
