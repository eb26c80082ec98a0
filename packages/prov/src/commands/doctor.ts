import { spawnSync } from 'node:child_process'
import { existsSync, readFileSync } from 'node:fs'
import { type CommonOptions, cgroupControllerNames, defineProvCommand, detectCgroups } from '@prov/core'

interface Check {
  schema: 'prov.doctor.check/v1'
  check: string
  ok: boolean
  detail: string
  needed_for: string
  fix?: string
}

function which(binary: string): string | undefined {
  const result = spawnSync('sh', ['-c', `command -v ${binary}`], { encoding: 'utf8' })
  return result.status === 0 ? result.stdout.trim() : undefined
}

function check(name: string, ok: boolean, detail: string, neededFor: string, fix?: string): Check {
  return { schema: 'prov.doctor.check/v1', check: name, ok, detail, needed_for: neededFor, ...(ok || !fix ? {} : { fix }) }
}

export function runChecks(): Check[] {
  const [major, minor] = process.versions.node.split('.').map(Number)
  const checks: Check[] = [
    check('node', major > 20 || (major === 20 && minor >= 19), `node ${process.versions.node}`, 'every binary', 'install Node.js >= 20.19'),
    check('root', process.getuid?.() === 0, `uid ${process.getuid?.() ?? '?'}`, 'local sandbox servers', 'run as root (sudo) for the local provider'),
  ]
  const tools: [string, string, string][] = [
    ['ip', 'local sandbox servers (iproute2)', 'apt-get install -y iproute2'],
    ['unshare', 'local sandbox servers (util-linux)', 'apt-get install -y util-linux'],
    ['nsenter', 'local sandbox servers (util-linux)', 'apt-get install -y util-linux'],
    ['iptables', 'NAT for sandboxes', 'apt-get install -y iptables'],
    ['bwrap', 'local sandbox servers (bubblewrap: the sandbox root, /dev, /proc, capabilities)', 'apt-get install -y bubblewrap'],
    ['setpriv', 'local sandbox servers (util-linux)', 'apt-get install -y util-linux'],
    ['mmdebstrap', 'building the Debian images of local servers', 'apt-get install -y mmdebstrap'],
    ['ssh-keygen', 'SSH keys and host keys', 'apt-get install -y openssh-client'],
    ['age', 'age CLI interoperability (optional)', 'apt-get install -y age'],
    ['git', '{{git.*}} interpolation', 'apt-get install -y git'],
  ]
  for (const [bin, neededFor, fix] of tools) {
    const path = which(bin)
    checks.push(check(bin, !!path, path ?? 'not found', neededFor, fix))
  }
  const sshd = ['/usr/sbin/sshd', which('sshd')].find((p) => p && existsSync(p))
  checks.push(check('sshd', !!sshd, sshd ?? 'not found', 'SSH inside local sandbox servers', 'apt-get install -y openssh-server'))
  let overlay = false
  try {
    overlay = readFileSync('/proc/filesystems', 'utf8').includes('overlay')
  } catch {
    overlay = false
  }
  if (!overlay) overlay = spawnSync('modprobe', ['-n', 'overlay']).status === 0
  checks.push(check('overlayfs', overlay, overlay ? 'available' : 'not in /proc/filesystems', 'copy-on-write roots of local servers', 'modprobe overlay'))
  const netns = existsSync('/proc/self/ns/net')
  checks.push(check('namespaces', netns, netns ? 'net, mnt, uts, pid available' : 'no /proc/self/ns', 'local sandbox servers'))
  let userns = 0
  try {
    userns = Number(readFileSync('/proc/sys/user/max_user_namespaces', 'utf8').trim())
  } catch {
    userns = 0
  }
  checks.push(
    check(
      'user namespaces',
      userns > 0,
      userns > 0 ? `up to ${userns}` : 'disabled (user.max_user_namespaces = 0)',
      'local sandbox servers (root inside is an unprivileged host uid)',
      'sysctl -w user.max_user_namespaces=15000',
    ),
  )
  checks.push(cgroupCheck())
  return checks
}

/** Which cgroup controllers make the declared cores/memory_mb of local servers real. */
function cgroupCheck(): Check {
  const report = detectCgroups()
  const parts: string[] = []
  const unusable: string[] = []
  for (const name of cgroupControllerNames) {
    const mount = report.controllers[name]
    if (mount?.writable) parts.push(`${name} v${mount.version} (${mount.path})`)
    else unusable.push(`${name}: ${mount ? mount.reason : 'not available'}`)
  }
  if (report.unified && !report.unified.controllers.length) parts.push(`unified v2 at ${report.unified.path} has no controllers`)
  const ok = Boolean(report.controllers.memory?.writable && (report.controllers.cpu?.writable || report.controllers.cpuset?.writable))
  const detail = [
    parts.length ? `usable: ${parts.join(', ')}` : 'no usable controller',
    ...(unusable.length ? [`not usable: ${unusable.join(', ')}`] : []),
  ].join('; ')
  return check(
    'cgroups',
    ok,
    detail,
    'enforcing cores and memory_mb of local servers (without them the limits are only recorded)',
    'mount the cgroup controllers read-write (cgroup v2 at /sys/fs/cgroup, or v1 cpu, cpuset and memory)',
  )
}

/** The workspace's mode and each of its rules: whether this setup keeps it, and how to fix it if not. */
async function modeChecks(common: Partial<CommonOptions>): Promise<Check[]> {
  const { getPath, loadCommandConfig, modeRules } = await import('@prov/core/config')
  let resolved: Awaited<ReturnType<typeof loadCommandConfig>>
  try {
    resolved = await loadCommandConfig(common)
  } catch (error) {
    return [check('config', false, (error as Error).message, 'every command', 'prov config validate')]
  }
  const mode = resolved.config.mode
  const origin = resolved.origin('mode')
  const where = origin && origin.layer !== 'defaults' ? `set in ${origin.source}${origin.line ? `:${origin.line}` : ''}` : 'the default'
  return [
    check('mode', true, `${mode} (${where})`, 'presets over storage, auth and policy'),
    ...modeRules(mode, resolved.config).map((r) =>
      check(
        `mode ${mode}: ${r.rule}`,
        r.ok,
        `${r.key} is ${JSON.stringify(getPath(resolved.config as Record<string, unknown>, r.key))}`,
        `mode ${mode}`,
        r.hint,
      ),
    ),
  ]
}

export default defineProvCommand({
  meta: {
    name: 'doctor',
    description: 'Check what this host needs (node, root, sshd, ip, overlayfs, ...) and say what is missing',
    examples: ['prov doctor', "prov doctor --out json | jq '.[] | select(.ok | not)'"],
    mutating: false,
  },
  async run({ common, emit, log }) {
    const checks = [...runChecks(), ...(await modeChecks(common))]
    for (const c of checks) if (!c.ok) log.warn(`${c.check}: ${c.detail} — needed for ${c.needed_for}${c.fix ? `; fix: ${c.fix}` : ''}`)
    emit(checks)
    return checks.some((c) => !c.ok && c.check === 'node') ? 1 : 0
  },
})
