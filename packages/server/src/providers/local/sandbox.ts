import { createHash } from 'node:crypto'
import { existsSync, readdirSync, readFileSync, rmdirSync, writeFileSync } from 'node:fs'
import { connect } from 'node:net'
import { dirname, join } from 'node:path'
import { setTimeout as sleep } from 'node:timers/promises'
import { assertPathSegment, containedPath, deniedError, failedError, mkdirContained, removeContained, serialised, withLock } from '@prov/core'
import { collectTrash, releaseBuilds } from '../../images/store'
import { cgroupsOf, removeCgroups } from './cgroups'
import { type HostBind, hostSysMount, startIsolated } from './isolate'
import { hostAddress, must, mustWithInput, type Subnet, sh } from './net'
import { bootScript, sshUserPattern } from './root'

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
  /** Host pid of the sandbox's PID 1 and its start time (guards against pid reuse). */
  pid: number | null
  pid_start: string | null
  /** Host pid of the launcher (bubblewrap's monitor outside the sandbox). */
  holder: number | null
  /** The image build the server was made from (its disk is a layer over it). */
  image?: { name: string; hash: string; build_ids: string[]; lowers: string[] }
  /** cgroup directories of the running sandbox. */
  cgroups?: string[]
  /** Declared resources and what of them is enforced. */
  limits?: Record<string, unknown>
  /** Host paths the server was given read-only (options.binds at creation). */
  binds?: HostBind[]
}

export function requireRoot(): void {
  if (typeof process.getuid === 'function' && process.getuid() !== 0) {
    throw deniedError('the local provider needs root (namespaces, bridges, overlay mounts, cgroups)', {
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

/** Whether a network interface of the host's namespace exists (sysfs: no process per question). */
const linkExists = (name: string) => existsSync(`/sys/class/net/${name}`)

/**
 * Bridges this process has set up (address, NAT rules). A bridge that still exists was not removed
 * since: removal takes the bridge and its rules together, under the same lock.
 */
const ensuredBridges = new Set<string>()

/** Bridge + host address + NAT, idempotent. Call under the bridge lock. */
async function ensureBridgeLocked(settings: LocalSettings): Promise<void> {
  const { bridge, subnet } = settings
  const key = `${bridge} ${subnet.cidr} ${settings.nat}`
  if (ensuredBridges.has(key) && linkExists(bridge)) return
  ensuredBridges.delete(key)
  if (!linkExists(bridge)) {
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
  ensuredBridges.add(key)
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
    const exists = linkExists(settings.bridge)
    if (exists) {
      const attached = await sh('ip', ['-o', 'link', 'show', 'master', settings.bridge])
      if (attached.stdout.trim()) return false
      await sh('ip', ['link', 'del', 'dev', settings.bridge])
    }
    for (const key of ensuredBridges) if (key.startsWith(`${settings.bridge} `)) ensuredBridges.delete(key)
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
export async function teardownRuntime(
  names: SandboxNames,
  runtime?: Partial<SandboxRuntime>,
  bridge?: string,
  options: { graceMs?: number } = {},
): Promise<void> {
  // Another workspace's sandbox behind the same names (shared bridge) is never touched.
  const claimBridge = bridge ?? runtime?.bridge
  if (claimBridge && foreignClaim(claimBridge, names)) return
  const pids = new Set(await pidsInNetns(names.netns))
  // The recorded init too, in case its netns file is already gone (pid reuse guarded by start time).
  const init = runtime?.pid && runtime.pid_start && processStart(runtime.pid) === runtime.pid_start ? runtime.pid : undefined
  if (init) pids.add(init)
  if (options.graceMs && init) await shutDownGently(init, [...pids], options.graceMs)
  for (const pid of pids) {
    try {
      process.kill(pid, 'SIGKILL')
    } catch {
      // already gone
    }
  }
  await waitGone([...pids], 10_000)
  if (linkExists(names.veth)) await sh('ip', ['link', 'del', 'dev', names.veth])
  if (existsSync(`/run/netns/${names.netns}`)) {
    const removed = await sh('ip', ['netns', 'del', names.netns])
    if (removed.code !== 0 && existsSync(`/run/netns/${names.netns}`)) throw failedError(`cannot remove netns ${names.netns}: ${removed.stderr.trim()}`)
  }
  await removeCgroups([...new Set([...(runtime?.cgroups ?? []), ...cgroupsOf(names.netns)])])
  releaseBuilds(names.netns)
  // Replaced image builds this sandbox may have been the last user of.
  collectTrash()
  if (bridge ?? runtime?.bridge) releaseClaims((bridge ?? runtime?.bridge) as string, names)
}

/**
 * A stop is a shutdown: every process but PID 1 and sshd (the process the boot ends in) gets
 * SIGTERM and a moment to finish (databases flush), then the rest is killed.
 */
async function shutDownGently(init: number, pids: number[], graceMs: number): Promise<void> {
  const children = pids.filter((pid) => pid !== init && parentOf(pid) === init).sort((a, b) => Number(processStart(a) ?? 0) - Number(processStart(b) ?? 0))
  const keep = new Set([init, children[0]])
  const services = pids.filter((pid) => !keep.has(pid))
  for (const pid of services) {
    try {
      process.kill(pid, 'SIGTERM')
    } catch {
      // already gone
    }
  }
  await waitGone(services, graceMs).catch(() => undefined)
}

function parentOf(pid: number): number | undefined {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8')
    return Number(stat.slice(stat.lastIndexOf(')') + 2).split(' ')[1])
  } catch {
    return undefined
  }
}

/** Bridge claims, the bridge itself; call before the sandbox exists. */
export async function claimAddress(settings: LocalSettings, names: SandboxNames, ip: string): Promise<void> {
  await withBridgeLock(settings, async () => {
    assertNotForeign(settings, names, ip)
    writeClaim(settings, names, ip)
  })
}

/** Tokens of `ip -batch` lines: names and addresses prov derived and checked, never free text. */
const batchToken = /^[A-Za-z0-9_.:/-]+$/

/** Runs `ip -batch` lines (one process for several changes); every token is checked first. */
function ipBatch(lines: string[][], what: string, options: { prefix?: string[] } = {}): Promise<string> {
  for (const token of lines.flat()) if (!batchToken.test(token)) throw failedError(`${what}: unexpected characters in '${token}'`)
  const input = `${lines.map((line) => line.join(' ')).join('\n')}\n`
  return mustWithInput(options.prefix?.[0] ?? 'ip', [...(options.prefix?.slice(1) ?? []), '-batch', '-'], input, what)
}

/**
 * Network plumbing of a sandbox whose namespaces exist (pid = its PID 1): the namespace gets its
 * name, a veth into the bridge, the address and a default route via the host. The network
 * namespace belongs to the sandbox's user namespace, so root inside may manage its own interfaces
 * (and nothing of the host's). Two processes in all: each spawn of this (large) process costs more
 * than the change it makes, and a parallel create makes hundreds of them.
 */
export async function attachNetwork(settings: LocalSettings, names: SandboxNames, ip: string, pid: number): Promise<void> {
  // Attach under the bridge lock so a concurrent last delete cannot remove the bridge in between.
  await withBridgeLock(settings, async () => {
    await ensureBridgeLocked(settings)
    await ipBatch(
      [
        ['netns', 'attach', names.netns, String(pid)],
        ['link', 'add', names.veth, 'type', 'veth', 'peer', 'name', 'eth0', 'netns', names.netns],
        ['link', 'set', 'dev', names.veth, 'master', settings.bridge, 'up'],
        // A previous sandbox at this address had another MAC: drop the host's stale neighbour entry.
        ['neigh', 'flush', 'to', ip, 'dev', settings.bridge],
      ],
      `network of sandbox ${names.netns}`,
    )
  })
  await configureInside(names, ip, hostAddress(settings.subnet), settings.subnet.prefix, pid)
}

/**
 * Inside the sandbox's user and network namespaces (host binaries, the sandbox's root ids): no
 * user namespaces inside a sandbox — they would hand its processes a full set of capabilities
 * over new namespaces and much more kernel code to probe; the limit is set in the sandbox's own
 * user namespace, which its root cannot raise again (CAP_SYS_RESOURCE is dropped) — then the
 * address and the default route. The script is fixed; the addresses reach `ip` on its stdin.
 */
async function configureInside(names: SandboxNames, ip: string, gateway: string, prefix: number, pid: number): Promise<void> {
  await ipBatch(
    [
      ['addr', 'add', `${ip}/${prefix}`, 'dev', 'eth0'],
      ['link', 'set', 'dev', 'eth0', 'up'],
      ['route', 'add', 'default', 'via', gateway],
    ],
    `network inside sandbox ${names.netns}`,
    {
      prefix: [
        'nsenter',
        `--user=/proc/${pid}/ns/user`,
        `--net=/proc/${pid}/ns/net`,
        '--',
        '/bin/sh',
        '-c',
        'echo 0 > /proc/sys/user/max_user_namespaces && exec ip "$@"',
        'prov-sandbox-net',
      ],
    },
  )
}

export interface LaunchSpec {
  name: string
  ip: string
  user: string
  lowers: string[]
  cgroups: string[]
  binds: HostBind[]
}

/** Starts the sandbox (it outlives this process) and returns its pids. */
export async function launch(settings: LocalSettings, names: SandboxNames, spec: LaunchSpec): Promise<Pick<SandboxRuntime, 'pid' | 'pid_start' | 'holder'>> {
  if (!sshUserPattern.test(spec.user)) throw failedError(`ssh user '${spec.user}' is not a valid login name for a sandbox`)
  const logFile = join(names.dir, 'sandbox.log')
  const started = await startIsolated({
    lowers: spec.lowers,
    upper: join(names.dir, 'upper'),
    work: join(names.dir, 'work'),
    hostname: spec.name,
    network: 'private',
    cgroups: spec.cgroups,
    binds: spec.binds,
    env: {
      PATH: '/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin',
      LANG: 'C.UTF-8',
      HOME: '/root',
      PROV_USER: spec.user,
      PROV_HOST_SYS: hostSysMount,
    },
    command: ['/bin/sh', '-c', bootScript],
    logFile,
    beforeStart: (pid) => attachNetwork(settings, names, spec.ip, pid),
  }).catch((error) => {
    throw failedError(`sandbox ${spec.name} did not start: ${(error as Error).message}; ${lastLines(logFile)}`, { location: logFile })
  })
  started.child.unref()
  const start = processStart(started.pid)
  if (!start) throw failedError(`sandbox ${spec.name} exited at once: ${lastLines(logFile)}`, { location: logFile })
  return { pid: started.pid, pid_start: start, holder: started.holder }
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
  // A refused connection costs next to nothing: poll often, so a server is ready when sshd is.
  let delay = 10
  for (;;) {
    if (await banner(ip, port, 2000)) return
    if (alive && !alive()) throw failedError(`sandbox at ${ip} exited before sshd was ready`)
    if (Date.now() > deadline) throw failedError(`timed out after ${Math.round(timeoutMs / 1000)} s waiting for sshd on ${ip}:${port}`)
    await sleep(delay)
    delay = Math.min(delay * 2, 50)
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
