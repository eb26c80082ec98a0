import { spawn } from 'node:child_process'
import { createHash } from 'node:crypto'
import {
  chmodSync,
  chownSync,
  closeSync,
  existsSync,
  mkdirSync,
  openSync,
  readdirSync,
  readFileSync,
  rmdirSync,
  rmSync,
  statSync,
  writeFileSync,
} from 'node:fs'
import { connect } from 'node:net'
import { dirname, join } from 'node:path'
import { setTimeout as sleep } from 'node:timers/promises'
import { assertPathSegment, containedPath, deniedError, failedError, mkdirContained, removeContained, serialised, withLock } from '@prov/core'
import { hostAddress, must, type Subnet, sh } from './net'

/** providers.local, parsed. */
export interface LocalSettings {
  subnet: Subnet
  bridge: string
  nat: boolean
}

/** Names of the host objects of one sandbox, all derived from the bridge so test runs never clash. */
export interface SandboxNames {
  netns: string
  veth: string
  dir: string
}

/** What the state keeps about a running sandbox. */
export interface SandboxRuntime extends Record<string, unknown> {
  netns: string
  veth: string
  bridge: string
  subnet: string
  nat: boolean
  dir: string
  /** Host pid of the sandbox's PID 1 (sshd) and its start time (guards against pid reuse). */
  pid: number | null
  pid_start: string | null
  /** Host pid of the unshare holder. */
  holder: number | null
}

export function requireRoot(): void {
  if (typeof process.getuid === 'function' && process.getuid() !== 0) {
    throw deniedError('the local provider needs root (network namespaces, bridges and overlay mounts)', {
      hint: 'run as root (sudo -E prov-server ...) or use the ssh provider for existing hosts',
    })
  }
}

export function sandboxNames(settings: LocalSettings, workspaceState: string, name: string, ip: string): SandboxNames {
  const offset = ((ip.split('.').reduce((n, p) => (n << 8) + Number(p), 0) >>> 0) - settings.subnet.base) >>> 0
  // veth names have 15 characters at most: long bridge names are shortened with a hash so two
  // bridges never share a prefix.
  const bridge = settings.bridge
  const prefix = bridge.length <= 9 ? bridge : `${bridge.slice(0, 5)}${createHash('sha1').update(bridge).digest('hex').slice(0, 4)}`
  // The workspace hash lets two workspaces sharing a bridge use the same server names.
  const workspace = createHash('sha1').update(workspaceState).digest('hex').slice(0, 6)
  const dir = containedPath(join(workspaceState, 'local'), assertPathSegment(name, 'server name'), { what: 'the sandboxes folder (.prov/local)' })
  return { netns: `${settings.bridge}-${name}-${workspace}`, veth: `${prefix}-${offset}`, dir }
}

/** Start time of a process (field 22 of /proc/pid/stat), or undefined when it does not exist. */
export function processStart(pid: number): string | undefined {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8')
    return stat.slice(stat.lastIndexOf(')') + 2).split(' ')[19]
  } catch {
    return undefined
  }
}

/** True when the recorded sandbox init still runs (false after a reboot or a kill). */
export function sandboxRunning(runtime: Partial<SandboxRuntime> | undefined): boolean {
  if (!runtime?.pid || !runtime.pid_start) return false
  return processStart(runtime.pid) === runtime.pid_start && existsSync(`/run/netns/${runtime.netns}`)
}

const lockDir = '/run/prov'

/** Runs fn holding the bridge's lock (across processes): bridge changes never race attachments. */
function withBridgeLock<T>(settings: LocalSettings, fn: () => Promise<T>): Promise<T> {
  const lock = join(lockDir, `bridge-${settings.bridge}`)
  return serialised(lock, () => withLock(lock, fn, { timeoutMs: 120_000 }))
}

/** Bridge + host address + NAT, idempotent. Call under the bridge lock. */
async function ensureBridgeLocked(settings: LocalSettings): Promise<void> {
  const { bridge, subnet } = settings
  if ((await sh('ip', ['link', 'show', 'dev', bridge])).code !== 0) {
    const added = await sh('ip', ['link', 'add', 'name', bridge, 'type', 'bridge'])
    if (added.code !== 0 && !/exists/i.test(added.stderr)) throw failedError(`cannot create bridge ${bridge}: ${added.stderr.trim()}`)
  }
  await must('ip', ['addr', 'replace', `${hostAddress(subnet)}/${subnet.prefix}`, 'dev', bridge], `address on bridge ${bridge}`)
  await must('ip', ['link', 'set', 'dev', bridge, 'up'], `bringing up bridge ${bridge}`)
  if (settings.nat) {
    writeFileSync('/proc/sys/net/ipv4/ip_forward', '1')
    for (const rule of natRules(settings)) {
      if ((await sh('iptables', ['-w', ...rule.table, '-C', ...rule.spec])).code !== 0) {
        await must('iptables', ['-w', ...rule.table, rule.insert ? '-I' : '-A', ...rule.spec], `iptables rule for ${bridge}`)
      }
    }
  }
}

/** Bridge + host address + NAT, idempotent; serialised across processes per bridge. */
export async function ensureBridge(settings: LocalSettings): Promise<void> {
  await withBridgeLock(settings, () => ensureBridgeLocked(settings))
}

function natRules(settings: LocalSettings): { table: string[]; spec: string[]; insert: boolean }[] {
  const comment = ['-m', 'comment', '--comment', `prov:${settings.bridge}`]
  return [
    { table: ['-t', 'nat'], spec: ['POSTROUTING', '-s', settings.subnet.cidr, '!', '-o', settings.bridge, '-j', 'MASQUERADE', ...comment], insert: false },
    { table: [], spec: ['FORWARD', '-i', settings.bridge, '-j', 'ACCEPT', ...comment], insert: true },
    { table: [], spec: ['FORWARD', '-o', settings.bridge, '-j', 'ACCEPT', ...comment], insert: true },
  ]
}

/** Removes the bridge and its NAT rules when no sandbox is attached any more. */
export async function removeBridgeIfUnused(settings: LocalSettings): Promise<boolean> {
  return withBridgeLock(settings, async () => {
    const exists = (await sh('ip', ['link', 'show', 'dev', settings.bridge])).code === 0
    if (exists) {
      const attached = await sh('ip', ['-o', 'link', 'show', 'master', settings.bridge])
      if (attached.stdout.trim()) return false
      await sh('ip', ['link', 'del', 'dev', settings.bridge])
    }
    for (const rule of natRules(settings)) {
      for (let i = 0; i < 10; i++) {
        if ((await sh('iptables', ['-w', ...rule.table, '-D', ...rule.spec])).code !== 0) break
      }
    }
    try {
      if (!readdirSync(claimsDir(settings.bridge)).length) rmdirSync(claimsDir(settings.bridge))
    } catch {
      // no claims folder
    }
    return true
  })
}

async function waitGone(pids: number[], timeoutMs: number): Promise<void> {
  const deadline = Date.now() + timeoutMs
  while (pids.some((pid) => existsSync(`/proc/${pid}`))) {
    if (Date.now() > deadline) throw failedError(`sandbox processes ${pids.filter((p) => existsSync(`/proc/${p}`)).join(', ')} did not exit`)
    await sleep(20)
  }
}

/** Pids whose network namespace is the named one (found even without state: interrupted creates). */
async function pidsInNetns(netns: string): Promise<number[]> {
  if (!existsSync(`/run/netns/${netns}`)) return []
  const result = await sh('ip', ['netns', 'pids', netns])
  return result.stdout
    .split(/\s+/)
    .filter(Boolean)
    .map(Number)
    .filter((n) => Number.isInteger(n) && n > 1)
}

/**
 * Host-wide claims (in /run, so they vanish with the namespaces at reboot): which workspace uses
 * which address and namespace on a bridge. Two workspaces sharing a bridge then get an error
 * instead of clobbering each other's sandboxes.
 */
interface Claim {
  owner: string
  netns: string
  ip: string
}

const claimsDir = (bridge: string) => containedPath(lockDir, ['local', assertPathSegment(bridge, 'bridge name')], { what: lockDir })
/** A claim file of the bridge; names come from state, so they are contained like any input. */
const claimFile = (bridge: string, name: string) => containedPath(claimsDir(bridge), assertPathSegment(name, 'claim name'), { what: lockDir })

function readClaim(file: string): Claim | undefined {
  try {
    const claim = JSON.parse(readFileSync(file, 'utf8')) as Claim
    // A claim whose namespace is gone is stale (reboot, crash): ignore it.
    return existsSync(`/run/netns/${claim.netns}`) ? claim : undefined
  } catch {
    return undefined
  }
}

/** Addresses on the bridge that sandboxes of other workspaces use right now. */
export function foreignAddresses(settings: LocalSettings, ownDir: string): Set<string> {
  const used = new Set<string>()
  const dir = claimsDir(settings.bridge)
  if (!existsSync(dir)) return used
  for (const entry of readdirSync(dir)) {
    if (!entry.startsWith('ip-')) continue
    const claim = readClaim(join(dir, entry))
    if (claim && dirname(claim.owner) !== dirname(ownDir)) used.add(claim.ip)
  }
  return used
}

function foreignClaim(bridge: string, names: SandboxNames, ip?: string): { claim: Claim; what: string } | undefined {
  const files: [string, string][] = [[claimFile(bridge, `ns-${names.netns}`), `namespace ${names.netns}`]]
  if (ip) files.push([claimFile(bridge, `ip-${ip}`), `address ${ip}`])
  for (const [file, what] of files) {
    const claim = readClaim(file)
    if (claim && claim.owner !== names.dir) return { claim, what }
  }
  return undefined
}

/** Fails when the namespace or address belongs to a sandbox of another workspace. */
export function assertNotForeign(settings: LocalSettings, names: SandboxNames, ip: string): void {
  const foreign = foreignClaim(settings.bridge, names, ip)
  if (foreign) {
    throw failedError(`${foreign.what} on bridge ${settings.bridge} belongs to another workspace's server (${foreign.claim.owner})`, {
      hint: 'give each workspace its own providers.local.subnet and providers.local.bridge',
    })
  }
}

function writeClaim(settings: LocalSettings, names: SandboxNames, ip: string): void {
  mkdirContained(lockDir, ['local', assertPathSegment(settings.bridge, 'bridge name')], { what: lockDir })
  const claim = JSON.stringify({ owner: names.dir, netns: names.netns, ip } satisfies Claim)
  writeFileSync(claimFile(settings.bridge, `ns-${names.netns}`), claim)
  writeFileSync(claimFile(settings.bridge, `ip-${ip}`), claim)
}

function releaseClaims(bridge: string, names: SandboxNames): void {
  const dir = claimsDir(bridge)
  if (!existsSync(dir)) return
  for (const entry of readdirSync(dir)) {
    const file = join(dir, entry)
    try {
      if ((JSON.parse(readFileSync(file, 'utf8')) as Claim).owner === names.dir) removeContained(dir, entry)
    } catch {
      removeContained(dir, entry)
    }
  }
}

/**
 * Kills the sandbox processes and removes its veth and netns. Idempotent and tolerant of
 * half-created sandboxes; the mount namespace (overlay, /proc...) dies with its last process.
 */
export async function teardownRuntime(names: SandboxNames, runtime?: Partial<SandboxRuntime>, bridge?: string): Promise<void> {
  // Another workspace's sandbox behind the same names (shared bridge) is never touched.
  const claimBridge = bridge ?? runtime?.bridge
  if (claimBridge && foreignClaim(claimBridge, names)) return
  const pids = new Set(await pidsInNetns(names.netns))
  // The recorded init too, in case its netns file is already gone (pid reuse guarded by start time).
  if (runtime?.pid && runtime.pid_start && processStart(runtime.pid) === runtime.pid_start) pids.add(runtime.pid)
  for (const pid of pids) {
    try {
      process.kill(pid, 'SIGKILL')
    } catch {
      // already gone
    }
  }
  await waitGone([...pids], 10_000)
  if ((await sh('ip', ['link', 'show', 'dev', names.veth])).code === 0) await sh('ip', ['link', 'del', 'dev', names.veth])
  if (existsSync(`/run/netns/${names.netns}`)) {
    const removed = await sh('ip', ['netns', 'del', names.netns])
    if (removed.code !== 0 && existsSync(`/run/netns/${names.netns}`)) throw failedError(`cannot remove netns ${names.netns}: ${removed.stderr.trim()}`)
  }
  if (bridge ?? runtime?.bridge) releaseClaims((bridge ?? runtime?.bridge) as string, names)
}

export interface SandboxSpec {
  name: string
  ip: string
  port: number
  user: string
  authorizedKey: string
}

function ensureDir(path: string, mode: number, like?: string): void {
  if (!existsSync(path)) mkdirSync(path, { recursive: true, mode })
  chmodSync(path, mode)
  if (like && existsSync(like)) {
    const st = statSync(like)
    chownSync(path, st.uid, st.gid)
  }
}

/**
 * Files the sandbox needs, written into its upper layer before mounting: its own sshd host key
 * and config, the workspace key in root's authorized_keys, hostname and hosts.
 * Returns the sandbox's public host key line.
 */
export async function prepareUpper(names: SandboxNames, spec: SandboxSpec): Promise<string> {
  const upper = join(names.dir, 'upper')
  for (const sub of ['upper', 'work', 'merged']) ensureDir(join(names.dir, sub), 0o755)
  ensureDir(join(upper, 'etc'), 0o755)
  ensureDir(join(upper, 'etc', 'ssh'), 0o755)
  ensureDir(join(upper, 'etc', 'ssh', 'prov'), 0o755)
  const hostKey = join(upper, 'etc', 'ssh', 'prov', 'ssh_host_ed25519_key')
  if (!existsSync(hostKey) || !existsSync(`${hostKey}.pub`)) {
    rmSync(hostKey, { force: true })
    rmSync(`${hostKey}.pub`, { force: true })
    await must('ssh-keygen', ['-q', '-t', 'ed25519', '-N', '', '-C', `root@${spec.name}`, '-f', hostKey], 'generating the sandbox host key')
  }
  chmodSync(hostKey, 0o600)
  writeFileSync(
    join(upper, 'etc', 'ssh', 'prov', 'sshd_config'),
    [
      '# Written by prov (local provider).',
      `Port ${spec.port}`,
      `ListenAddress ${spec.ip}`,
      'HostKey /etc/ssh/prov/ssh_host_ed25519_key',
      'PidFile /run/sshd.pid',
      'PermitRootLogin prohibit-password',
      'PubkeyAuthentication yes',
      'PasswordAuthentication no',
      'KbdInteractiveAuthentication no',
      'UsePAM no',
      'StrictModes no',
      'UseDNS no',
      'PrintMotd no',
      'AuthorizedKeysFile .ssh/authorized_keys /etc/ssh/prov/authorized_keys',
      'MaxStartups 200:30:400',
      'MaxSessions 100',
      'AcceptEnv LANG LC_*',
      'Subsystem sftp internal-sftp',
      '',
    ].join('\n'),
  )
  writeFileSync(join(upper, 'etc', 'ssh', 'prov', 'authorized_keys'), `${spec.authorizedKey}\n`, { mode: 0o644 })
  if (spec.user === 'root') {
    ensureDir(join(upper, 'root'), 0o700, '/root')
    ensureDir(join(upper, 'root', '.ssh'), 0o700)
    writeFileSync(join(upper, 'root', '.ssh', 'authorized_keys'), `${spec.authorizedKey}\n`, { mode: 0o600 })
  }
  writeFileSync(join(upper, 'etc', 'hostname'), `${spec.name}\n`)
  writeFileSync(join(upper, 'etc', 'hosts'), `127.0.0.1\tlocalhost\n::1\tlocalhost ip6-localhost ip6-loopback\n${spec.ip}\t${spec.name}\n`)
  return readFileSync(`${hostKey}.pub`, 'utf8').trim()
}

const initScript = `#!/bin/sh
# prov local sandbox init: PID 1 of the sandbox's pid namespace, in its own mount, uts and net namespaces.
set -e
mount --make-rprivate /
hostname "$PROV_NAME" 2>/dev/null || echo "$PROV_NAME" > /proc/sys/kernel/hostname
M="$PROV_DIR/merged"
mount -t overlay "prov-$PROV_NAME" -o "lowerdir=/,upperdir=$PROV_DIR/upper,workdir=$PROV_DIR/work" "$M"
mount -t proc proc "$M/proc"
mount -t sysfs sysfs "$M/sys" 2>/dev/null || mount --rbind /sys "$M/sys"
mount --rbind /dev "$M/dev"
mount -t tmpfs -o mode=1777 tmpfs "$M/tmp"
mount -t tmpfs -o mode=755 tmpfs "$M/run"
mkdir -p "$M/run/sshd" "$M/run/lock"
echo "prov sandbox $PROV_NAME up" >&2
exec chroot "$M" /usr/sbin/sshd -D -e -f /etc/ssh/prov/sshd_config
`

/** Network plumbing: netns, veth into the bridge, address, default route via the host. */
export async function setupNetwork(settings: LocalSettings, names: SandboxNames, ip: string): Promise<void> {
  await withBridgeLock(settings, async () => {
    assertNotForeign(settings, names, ip)
    writeClaim(settings, names, ip)
  })
  const added = await sh('ip', ['netns', 'add', names.netns])
  if (added.code !== 0 && !/exists/i.test(added.stderr)) throw failedError(`cannot create netns ${names.netns}: ${added.stderr.trim()}`)
  await must('ip', ['link', 'add', names.veth, 'type', 'veth', 'peer', 'name', 'eth0', 'netns', names.netns], `veth ${names.veth}`)
  // Attach under the bridge lock so a concurrent last delete cannot remove the bridge in between.
  await withBridgeLock(settings, async () => {
    await ensureBridgeLocked(settings)
    // A previous sandbox at this address had another MAC: drop the host's stale neighbour entry.
    await sh('ip', ['neigh', 'flush', 'to', ip, 'dev', settings.bridge])
    await must('ip', ['link', 'set', 'dev', names.veth, 'master', settings.bridge, 'up'], `attaching ${names.veth} to ${settings.bridge}`)
  })
  const inside = [
    `addr add ${ip}/${settings.subnet.prefix} dev eth0`,
    'link set dev eth0 up',
    'link set dev lo up',
    `route add default via ${hostAddress(settings.subnet)}`,
  ]
  for (const line of inside) await must('ip', ['-n', names.netns, ...line.split(' ')], `ip -n ${names.netns} ${line}`)
}

/** Starts the sandbox init detached (it outlives this process) and returns its pids. */
export async function launch(names: SandboxNames, name: string): Promise<Pick<SandboxRuntime, 'pid' | 'pid_start' | 'holder'>> {
  const init = join(names.dir, 'init.sh')
  writeFileSync(init, initScript, { mode: 0o755 })
  const logFile = join(names.dir, 'sandbox.log')
  const fd = openSync(logFile, 'a', 0o600)
  const child = spawn(
    'nsenter',
    [`--net=/run/netns/${names.netns}`, '--', 'unshare', '--fork', '--pid', '--mount', '--uts', '--propagation', 'private', '/bin/sh', init],
    {
      detached: true,
      stdio: ['ignore', fd, fd],
      env: { PATH: '/usr/sbin:/usr/bin:/sbin:/bin', PROV_NAME: name, PROV_DIR: names.dir, LANG: 'C.UTF-8' },
    },
  )
  closeSync(fd)
  const holder = child.pid
  if (!holder) throw failedError(`cannot start sandbox ${name}`, { location: logFile })
  let exited: number | null = null
  child.once('exit', (code) => {
    exited = code ?? 1
  })
  child.unref()
  const deadline = Date.now() + 10_000
  for (;;) {
    const pid = childOf(holder)
    if (pid) {
      const start = processStart(pid)
      if (start) return { pid, pid_start: start, holder }
    }
    if (exited !== null || Date.now() > deadline) {
      throw failedError(`sandbox ${name} did not start: ${lastLines(logFile)}`, { location: logFile })
    }
    await sleep(10)
  }
}

function childOf(pid: number): number | undefined {
  try {
    const children = readFileSync(`/proc/${pid}/task/${pid}/children`, 'utf8').trim()
    if (children) return Number(children.split(' ')[0])
  } catch {
    // not there yet, or no CONFIG_PROC_CHILDREN: scan
  }
  try {
    for (const entry of readdirSync('/proc')) {
      if (!/^\d+$/.test(entry)) continue
      const stat = readFileSync(`/proc/${entry}/stat`, 'utf8')
      const ppid = Number(stat.slice(stat.lastIndexOf(')') + 2).split(' ')[1])
      if (ppid === pid) return Number(entry)
    }
  } catch {
    // raced with an exiting process
  }
  return undefined
}

export function lastLines(file: string, count = 3): string {
  try {
    return readFileSync(file, 'utf8').trim().split('\n').slice(-count).join(' | ') || 'no output'
  } catch {
    return 'no log'
  }
}

/** Waits until sshd answers with its banner on ip:port. */
export async function waitForSsh(ip: string, port: number, timeoutMs: number, alive?: () => boolean): Promise<void> {
  const deadline = Date.now() + timeoutMs
  let delay = 20
  for (;;) {
    if (await banner(ip, port, 2000)) return
    if (alive && !alive()) throw failedError(`sandbox at ${ip} exited before sshd was ready`)
    if (Date.now() > deadline) throw failedError(`timed out after ${Math.round(timeoutMs / 1000)} s waiting for sshd on ${ip}:${port}`)
    await sleep(delay)
    delay = Math.min(delay * 2, 250)
  }
}

function banner(ip: string, port: number, timeoutMs: number): Promise<boolean> {
  return new Promise((resolve) => {
    const socket = connect({ host: ip, port })
    const done = (ok: boolean) => {
      socket.destroy()
      resolve(ok)
    }
    socket.setTimeout(timeoutMs, () => done(false))
    socket.once('error', () => done(false))
    socket.once('data', (data) => done(data.toString().startsWith('SSH-')))
  })
}
