import { type ChildProcess, spawn } from 'node:child_process'
import { closeSync, existsSync, mkdirSync, openSync, readFileSync, statSync, writeFileSync } from 'node:fs'
import { constants } from 'node:os'
import { basename, dirname } from 'node:path'
import type { Readable, Writable } from 'node:stream'
import { failedError, writeFileAtomic } from '@prov/core'
import { mapLine, SANDBOX_ID_BASE } from '../../images/idmap'

/**
 * Starts a process tree in its own root filesystem, as root of a user namespace whose ids are the
 * unprivileged host range of SANDBOX_ID_BASE. Used for servers and for image builds.
 *
 * Steps, and who does them:
 * 1. host root, host binaries, in a private mount namespace (the outer script below): join the
 *    cgroups, mount the overlay root at /run/prov/root (a mount point only this namespace sees);
 * 2. drop to the unprivileged sandbox uid and exec bubblewrap, which creates the user, pid, ipc,
 *    uts, cgroup (and network) namespaces, reports the child pid on fd 3, then waits on fd 4;
 * 3. meanwhile this process writes the uid/gid maps (only host root may map a range), and the
 *    caller wires the network namespace; then fd 4 releases the child;
 * 4. bubblewrap, inside the user namespace, binds the root, mounts a fresh /proc, a /dev with only
 *    null, zero, full, random, urandom, tty, pts and shm, tmpfs /tmp and /run, pivots into the new
 *    root, detaches the host's, drops the capabilities that are not the sandbox's business, and
 *    runs the command.
 * No binary of the sandbox's root runs before the pivot, and none runs as host root: a sandbox
 * that replaced its own /bin/sh cannot reach the host through a later boot.
 */

/** Where the outer script mounts the sandbox root, privately (every sandbox has its own mount namespace). */
export const ROOT_MOUNT = '/run/prov/root'
/** Mount points the layers are bound to before the overlay is made (neutral names in the sandbox's mount table). */
const LAYER_MOUNTS = '/run/prov/layers'
const MAX_LOWERS = 8
/** Host sysfs, bound read-only only so the sandbox may mount the sysfs of its own network namespace. */
const HOST_SYS = '/run/prov-host-sys'

const outerScript = `#!/bin/bash
# prov sandbox launcher: host root, private mount namespace. Data comes from the environment only.
set -eu
# Descriptors this process inherited (from whatever ran prov) must not reach the sandbox: only
# stdio (the log) and the three pipes to bubblewrap go on.
for path in /proc/$$/fd/*; do
  fd=\${path##*/}
  case $fd in 0 | 1 | 2 | 3 | 4 | 5) ;; *) if [ -e "$path" ]; then exec {fd}>&-; fi ;; esac
done
for dir in $PROV_CGROUPS; do echo 0 > "$dir/cgroup.procs"; done
mount --make-rprivate /
# The layers are bound to neutral paths first, so the sandbox's mount table names no host path.
lowers=""
i=0
IFS=:
for dir in $PROV_LOWERS; do
  mount -o bind,ro "$dir" "$PROV_LAYERS/$i"
  lowers="\${lowers:+$lowers:}$PROV_LAYERS/$i"
  i=$((i + 1))
done
unset IFS
# Host paths the server was explicitly given (options.binds), read-only, at neutral mount points.
if [ -n "\${PROV_BIND_SOURCES:-}" ]; then
  IFS=: read -r -a sources <<< "$PROV_BIND_SOURCES"
  IFS=: read -r -a points <<< "$PROV_BIND_POINTS"
  for i in "\${!sources[@]}"; do mount -o bind,ro "\${sources[$i]}" "\${points[$i]}"; done
fi
# Upper and work directories are siblings and must stay on one mount.
mount --bind "$PROV_DISK" "$PROV_LAYERS/disk"
mount -t overlay prov-root -o "lowerdir=$lowers,upperdir=$PROV_LAYERS/disk/$PROV_UPPER,workdir=$PROV_LAYERS/disk/$PROV_WORK" "$PROV_ROOT_MOUNT"
# bubblewrap takes its options from fd 5 (no quoting anywhere); the command follows here.
exec setpriv --reuid="$PROV_ID" --regid="$PROV_ID" --clear-groups --inh-caps=-all -- bwrap --args 5 -- "$@"
`

/** Capabilities a sandbox root never needs; with the user namespace most are inert anyway (defence in depth). */
export const droppedCapabilities = [
  'CAP_SYS_MODULE',
  'CAP_SYS_RAWIO',
  'CAP_SYS_TIME',
  'CAP_SYS_BOOT',
  'CAP_MKNOD',
  'CAP_SYSLOG',
  'CAP_SYS_PACCT',
  'CAP_SYS_TTY_CONFIG',
  'CAP_SYS_RESOURCE',
  'CAP_MAC_ADMIN',
  'CAP_MAC_OVERRIDE',
  'CAP_AUDIT_CONTROL',
  'CAP_AUDIT_READ',
  'CAP_WAKE_ALARM',
  'CAP_BLOCK_SUSPEND',
  'CAP_LINUX_IMMUTABLE',
  'CAP_DAC_READ_SEARCH',
  'CAP_BPF',
  'CAP_PERFMON',
  'CAP_CHECKPOINT_RESTORE',
]

export interface IsolateOptions {
  /** Lower layers, topmost first. */
  lowers: string[]
  /** The writable layer and overlayfs's work directory (siblings in one folder). */
  upper: string
  work: string
  hostname: string
  /** `private`: a new network namespace (servers); `host`: the host's (image builds download packages). */
  network: 'private' | 'host'
  /** cgroup directories joined before anything starts. */
  cgroups: string[]
  /** Host paths given to the sandbox, read-only (`host` shows up at `path`). */
  binds?: HostBind[]
  env: Record<string, string>
  command: string[]
  /** stdout and stderr of the whole tree. */
  logFile: string
  /** Runs when the namespaces exist and the maps are written, before anything inside starts. */
  beforeStart?: (pid: number) => Promise<void>
}

export interface HostBind {
  host: string
  path: string
}

export interface Isolated {
  /** Host pid of the sandbox's PID 1. */
  pid: number
  /** Host pid of the launcher (bubblewrap's monitor, outside the sandbox). */
  holder: number
  /** Resolves with the exit code when the launcher exits. */
  exited: Promise<number>
  child: ChildProcess
}

/** Paths end up in overlayfs mount options, where these characters have meanings of their own. */
export function assertMountablePath(path: string, what: string): void {
  if (/[,:\\\n]/.test(path)) {
    throw failedError(`${what} ${path} contains ',', ':' or '\\', which overlayfs mount options cannot carry`, {
      hint: 'move the workspace (or the image cache) to a path without those characters',
    })
  }
}

function bwrapArgs(options: IsolateOptions): string[] {
  const args = [
    '--unshare-user',
    '--userns-block-fd',
    '4',
    '--info-fd',
    '3',
    '--uid',
    '0',
    '--gid',
    '0',
    '--unshare-pid',
    '--unshare-ipc',
    '--unshare-uts',
    '--unshare-cgroup-try',
    '--hostname',
    options.hostname,
    '--new-session',
    '--bind',
    ROOT_MOUNT,
    '/',
    '--dev',
    '/dev',
    '--proc',
    '/proc',
    '--perms',
    '1777',
    '--tmpfs',
    '/tmp',
    '--perms',
    '0755',
    '--tmpfs',
    '/run',
    '--perms',
    '1777',
    '--tmpfs',
    '/dev/shm',
  ]
  if (options.network === 'private') args.push('--unshare-net', '--ro-bind', '/sys', HOST_SYS)
  for (const [i, bind] of (options.binds ?? []).entries()) args.push('--ro-bind', bindPoint(bind, i), bind.path)
  args.push('--cap-add', 'ALL')
  for (const cap of droppedCapabilities) args.push('--cap-drop', cap)
  args.push('--chdir', '/', '--clearenv')
  for (const [key, value] of Object.entries(options.env)) args.push('--setenv', key, value)
  for (const arg of [...args, ...options.command]) if (arg.includes('\0')) throw failedError('a sandbox argument contains a NUL byte')
  return args
}

/** Neutral mount point of a host bind: a file for a file, a folder for a folder. */
function bindPoint(bind: HostBind, index: number): string {
  return `${LAYER_MOUNTS}/bind-${statSync(bind.host).isDirectory() ? 'dir' : 'file'}-${index}`
}

/** The host sysfs bind that the sandbox drops once it has mounted its own (see the boot script). */
export const hostSysMount = HOST_SYS

export async function startIsolated(options: IsolateOptions): Promise<Isolated> {
  for (const dir of [...options.lowers, options.upper, options.work]) assertMountablePath(dir, 'sandbox layer')
  if (dirname(options.upper) !== dirname(options.work)) throw failedError('the upper and work directories of a sandbox must be siblings')
  if (options.lowers.length > MAX_LOWERS) throw failedError(`an image has at most ${MAX_LOWERS} layers`)
  mkdirSync(ROOT_MOUNT, { recursive: true, mode: 0o755 })
  for (const name of ['disk', ...options.lowers.map((_, i) => String(i))]) mkdirSync(`${LAYER_MOUNTS}/${name}`, { recursive: true, mode: 0o755 })
  const binds = options.binds ?? []
  binds.forEach((bind, i) => {
    assertMountablePath(bind.host, 'bind source')
    const point = bindPoint(bind, i)
    if (point.includes('bind-dir-')) mkdirSync(point, { recursive: true, mode: 0o755 })
    else if (!existsSync(point)) writeFileSync(point, '', { mode: 0o644 })
  })
  const script = `${dirname(ROOT_MOUNT)}/launch.sh`
  if (!existsSync(script) || readFileSync(script, 'utf8') !== outerScript) writeFileAtomic(script, outerScript, { mode: 0o700 })
  const log = openSync(options.logFile, 'a', 0o600)
  let child: ChildProcess
  try {
    child = spawn('unshare', ['--mount', '--propagation', 'private', '/bin/bash', script, ...options.command], {
      detached: true,
      stdio: ['ignore', log, log, 'pipe', 'pipe', 'pipe'],
      env: {
        PATH: '/usr/sbin:/usr/bin:/sbin:/bin',
        LANG: 'C.UTF-8',
        PROV_CGROUPS: options.cgroups.join(' '),
        PROV_LOWERS: options.lowers.join(':'),
        PROV_DISK: dirname(options.upper),
        PROV_UPPER: basename(options.upper),
        PROV_WORK: basename(options.work),
        PROV_ROOT_MOUNT: ROOT_MOUNT,
        PROV_LAYERS: LAYER_MOUNTS,
        PROV_BIND_SOURCES: binds.map((b) => b.host).join(':'),
        PROV_BIND_POINTS: binds.map((b, i) => bindPoint(b, i)).join(':'),
        PROV_ID: String(SANDBOX_ID_BASE),
      },
    })
  } finally {
    closeSync(log)
  }
  const stdio = child.stdio as unknown as (Readable & Writable)[]
  const info: Readable = stdio[3]
  const block: Writable = stdio[4]
  const argsPipe: Writable = stdio[5]
  const exited = new Promise<number>((resolve) => child.once('exit', (code, signal) => resolve(code ?? 128 + (signal ? (constants.signals[signal] ?? 0) : 0))))
  let done = false
  exited.then(() => {
    done = true
  })
  argsPipe.on('error', () => undefined)
  block.on('error', () => undefined)
  argsPipe.end(`${bwrapArgs(options).join('\0')}\0`)
  const holder = child.pid
  if (!holder) throw failedError('cannot start the sandbox launcher (unshare)')
  const pid = await new Promise<number>((resolve, reject) => {
    let text = ''
    const timer = setTimeout(() => reject(failedError('the sandbox did not start within 20 s')), 20_000)
    // bubblewrap writes the child pid, then the namespace ids, then closes: the whole object is
    // read before this side is closed, or bubblewrap dies of SIGPIPE mid-write (exit 141).
    const settle = () => {
      const match = /"child-pid"\s*:\s*(\d+)/.exec(text)
      if (!match) return
      clearTimeout(timer)
      resolve(Number(match[1]))
    }
    info.on('data', (chunk: Buffer) => {
      text += chunk.toString()
      if (/\}\s*$/.test(text)) settle()
    })
    info.on('end', settle)
    info.on('error', () => undefined)
    exited.then((code) => {
      clearTimeout(timer)
      reject(failedError(`the sandbox launcher exited (${code}) before the sandbox started`))
    })
  })
  try {
    // Only host root may map a range of ids; bubblewrap waits on fd 4 until this is done.
    writeFileSync(`/proc/${pid}/uid_map`, mapLine)
    writeFileSync(`/proc/${pid}/gid_map`, mapLine)
    if (options.beforeStart) await options.beforeStart(pid)
  } catch (error) {
    try {
      process.kill(pid, 'SIGKILL')
    } catch {
      // already gone
    }
    block.destroy()
    throw error
  }
  if (done) throw failedError('the sandbox exited while it was being set up')
  // bubblewrap hands its inherited descriptors on to the sandbox: once the child is released,
  // this side of every pipe is closed, so nothing of the launch keeps this process (or the sandbox) waiting.
  block.end('1', () => block.destroy())
  info.destroy()
  argsPipe.destroy()
  return { pid, holder, exited, child }
}

/** True when bubblewrap and setpriv are installed (the launcher needs both). */
export function launcherAvailable(): boolean {
  return ['/usr/bin/bwrap', '/usr/bin/setpriv'].every((p) => existsSync(p))
}
