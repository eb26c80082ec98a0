// A local sandbox behaves like a fresh server of its image: nothing of the host inside, root inside
// is not root outside, declared resources are real. Every escape attempt below must be refused or
// find nothing. Real sandboxes (root); the workspace lives outside /tmp on purpose.
import { spawnSync } from 'node:child_process'
import { existsSync, mkdirSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs'
import { join } from 'node:path'
import { afterAll, beforeAll, expect, it } from 'vitest'
import { repoRoot, runCli } from '../../../tests/helpers/cli'
import { cleanupPrefix, describeSandbox, systemSsh, tearDownSandboxes, useSubnet, workspaceOutsideTmp } from './helpers/local'

const SUBNET = '10.213.6.0/24'
const BRIDGE = 'provt6'

type Ws = Awaited<ReturnType<typeof workspaceOutsideTmp>>
let ws: Ws
const secret = `/root/prov-e2e-secret-${process.pid}`
const cli = (args: string[], input?: string) => runCli('prov-server', args, { env: ws.env, cwd: ws.path, input, timeoutMs: 900_000 })
const ips: Record<string, string> = {}
/** Runs a shell command as root inside a server. */
const inside = (server: string, command: string) => systemSsh(ws.path, ips[server], command)

describeSandbox('local sandboxes: isolation, privileges and limits (root)', { timeout: 900_000 }, () => {
  beforeAll(async () => {
    cleanupPrefix(BRIDGE)
    writeFileSync(secret, 'host-only secret\n', { mode: 0o600 })
    ws = await workspaceOutsideTmp('isolation')
    // No NAT: the sandboxes have no route to a package mirror.
    useSubnet(ws.path, SUBNET, BRIDGE, false)
    writeFileSync(join(ws.path, 'workspace-marker.txt'), 'in the workspace\n', { mode: 0o600 })
    const infra = join(ws.path, 'infra', 'iso')
    mkdirSync(infra, { recursive: true })
    // iso-b is explicitly given one host folder, read-only.
    mkdirSync(join(ws.root, 'given'))
    writeFileSync(join(ws.root, 'given', 'shared.txt'), 'given to iso-b\n')
    writeFileSync(
      join(infra, 'servers.yaml'),
      `servers:\n  - name: iso-a\n    provider: local\n    cores: 1\n    memory_mb: 256\n  - name: iso-b\n    provider: local\n    options:\n      binds: [{ host: ${join(ws.root, 'given')}, path: /srv/given }]\n`,
    )
    const plan = await cli(['plan', '--infra', 'iso', '-q'])
    expect(plan.code, plan.stderr).toBe(0)
    const applied = await cli(['apply', '--yes', '-q', '--out', 'json'], plan.stdout)
    expect(applied.code, applied.stderr).toBe(0)
    for (const server of applied.json() as { name: string; ip_address: string }[]) ips[server.name] = server.ip_address
  })

  afterAll(async () => {
    rmSync(secret, { force: true })
    await tearDownSandboxes(ws, BRIDGE)
  })

  it('the root filesystem is the image: its os-release, none of the host programs', async () => {
    const info = (await cli(['info', 'iso-a', '--out', 'json'])).json() as { provider_info: { sandbox: { image: { layers: string[] } } } }
    const layer = info.provider_info.sandbox.image.layers.at(-1) as string
    const osRelease = inside('iso-a', 'cat /etc/os-release')
    expect(osRelease.stdout).toBe(readFileSync(join(layer, 'usr/lib/os-release'), 'utf8'))
    expect(osRelease.stdout).toMatch(/VERSION_CODENAME=bookworm/)
    // node runs these tests on the host; the image has no node.
    expect(existsSync(process.execPath)).toBe(true)
    expect(inside('iso-a', `test -e ${process.execPath} && echo present || echo absent`).stdout.trim()).toBe('absent')
  })

  it('a host file in /root (0600) is not there', () => {
    expect(statSync(secret).mode & 0o777).toBe(0o600)
    const r = inside('iso-a', `cat ${secret}; ls -a /root; find / -xdev -name 'prov-e2e-secret-*' 2>/dev/null`)
    expect(r.stderr).toMatch(/No such file or directory/)
    expect(r.stdout).not.toContain('host-only secret')
    expect(r.stdout).not.toContain('prov-e2e-secret')
  })

  it('the workspace (outside /tmp) and its state are not there', () => {
    expect(ws.path.startsWith('/tmp')).toBe(false)
    const r = inside(
      'iso-a',
      `ls ${ws.path}; cat ${join(ws.path, 'workspace-marker.txt')}; find / -xdev \\( -name workspace-marker.txt -o -name id_ed25519 -o -name servers.json \\) 2>/dev/null`,
    )
    expect(r.stderr).toMatch(/No such file or directory/)
    expect(r.stdout).not.toContain('in the workspace')
    expect(r.stdout.trim()).toBe('')
  })

  it("the host's checkout is not there", () => {
    const r = inside('iso-a', `ls ${repoRoot}; ls /${repoRoot.split('/')[1]} 2>&1; find / -xdev -name package-lock.json 2>/dev/null | head`)
    expect(r.stdout).not.toMatch(/packages|package-lock|extensions/)
  })

  it('/dev holds only null, zero, full, random, urandom, tty, ptmx, pts and shm (no kmsg, no disks)', () => {
    const listed = inside('iso-a', 'ls -A /dev').stdout.split(/\s+/).filter(Boolean).sort()
    expect(listed).toEqual(['core', 'fd', 'full', 'null', 'ptmx', 'pts', 'random', 'shm', 'stderr', 'stdin', 'stdout', 'tty', 'urandom', 'zero'])
    const kmsg = inside('iso-a', 'cat /dev/kmsg; dmesg')
    expect(kmsg.status).not.toBe(0)
    expect(kmsg.stderr).toMatch(/No such file or directory/)
    expect(kmsg.stderr).toMatch(/dmesg: read kernel buffer failed: Operation not permitted/)
  })

  it('mounting a host block device is refused (no node, and mknod is not allowed)', () => {
    const dev = statSync('/').dev
    const major = Math.floor(dev / 256) & 0xfff
    const minor = (dev & 0xff) | ((dev >> 12) & 0xfff00)
    const r = inside('iso-a', `mknod /root/hostdisk b ${major} ${minor}; mount -t ext4 /dev/vda /mnt; mount /root/hostdisk /mnt; ls /mnt`)
    expect(r.stderr).toMatch(/mknod: \/root\/hostdisk: Operation not permitted/)
    expect(r.stderr).toMatch(/mount: \/mnt: .*(permission denied|special device \/dev\/vda does not exist|must be superuser)/)
    expect(r.stdout.trim()).toBe('')
  })

  it('loading or removing a kernel module is refused', () => {
    const r = inside(
      'iso-a',
      `python3 -c 'import ctypes; libc = ctypes.CDLL(None, use_errno=True); print(libc.syscall(175, None, 0, b""), ctypes.get_errno(), libc.syscall(176, b"ext4", 0), ctypes.get_errno())'`,
    )
    // init_module and delete_module: -1 with EPERM (1); a kernel built without module support
    // (no /proc/modules, as on this test machine) answers ENOSYS (38) to anyone, host root included.
    const errno = existsSync('/proc/modules') ? 1 : 38
    expect(r.stdout.trim()).toBe(`-1 ${errno} -1 ${errno}`)
  })

  it('/proc/1/root, nsenter and chroot tricks lead back to the sandbox, never to the host', () => {
    const ownRoot = inside('iso-a', 'ls -A /').stdout
    expect(inside('iso-a', 'ls -A /proc/1/root/').stdout).toBe(ownRoot)
    expect(inside('iso-a', 'nsenter -t 1 -m -u -i -p -- hostname').stdout.trim()).toBe('iso-a')
    const chroot = inside(
      'iso-a',
      `python3 -c "import os; os.makedirs('/root/jail', exist_ok=True); os.chroot('/root/jail'); [os.chdir('..') for _ in range(64)]; os.chroot('.'); print(' '.join(sorted(os.listdir('/'))))"`,
    )
    expect(chroot.stdout.trim()).toBe(ownRoot.split(/\s+/).filter(Boolean).sort().join(' '))
    // Host processes (this test runner) are not visible at all.
    const cmdlines = inside('iso-a', 'cat /proc/[0-9]*/cmdline 2>/dev/null | tr "\\0" " "').stdout
    expect(cmdlines).toMatch(/sshd/)
    expect(cmdlines).not.toContain('vitest')
    expect(cmdlines).not.toContain(process.execPath)
    // No nested user namespaces (they would hand out capabilities over new namespaces).
    const userns = inside('iso-a', 'unshare -U true')
    expect(userns.status).not.toBe(0)
    expect(userns.stderr).toMatch(/unshare failed: No space left on device/)
  })

  it('/sys is read-only and shows only the sandbox network', () => {
    const r = inside('iso-a', 'echo 1 > /sys/kernel/profiling; mount -o remount,rw /sys; ls /sys/class/net')
    expect(r.stderr).toMatch(/Read-only file system/)
    expect(r.stderr).toMatch(/mount: \/sys: permission denied/)
    expect(r.stdout.split(/\s+/).filter(Boolean).sort()).toEqual(['eth0', 'lo'])
  })

  it('root inside is an unprivileged host uid: files it writes belong to that uid on the host', async () => {
    expect(inside('iso-a', 'cat /proc/self/uid_map').stdout.trim().split(/\s+/)).toEqual(['0', '2000000000', '65536'])
    inside('iso-a', 'echo mine > /root/owned-by-root-inside')
    const info = (await cli(['info', 'iso-a', '--out', 'json'])).json() as { provider_info: { sandbox: { upper_dir: string } } }
    const onHost = statSync(join(info.provider_info.sandbox.upper_dir, 'root', 'owned-by-root-inside'))
    expect(onHost.uid).toBe(2000000000)
    // Capabilities that reach the host are not in the bounding set (sys_module, sys_rawio, sys_time, mknod).
    const bounding = BigInt(`0x${/CapBnd:\s*([0-9a-f]+)/.exec(inside('iso-a', 'cat /proc/self/status').stdout)?.[1]}`)
    for (const cap of [16, 17, 25, 27]) expect((bounding >> BigInt(cap)) & 1n).toBe(0n)
  })

  it("another sandbox's processes and files are invisible", () => {
    inside('iso-b', "echo from-b > /root/only-on-b; nohup bash -c 'exec -a prov-marker-b sleep 600' >/dev/null 2>&1 &")
    const r = inside('iso-a', 'ps -eo args; cat /root/only-on-b; find / -xdev -name only-on-b 2>/dev/null')
    expect(r.stdout).not.toContain('prov-marker-b')
    expect(r.stdout).not.toContain('from-b')
    expect(r.stderr).toMatch(/No such file or directory/)
    expect(inside('iso-b', 'ps -eo args').stdout).toContain('prov-marker-b')
  })

  it('a host path given explicitly (options.binds) is there, read-only, and only there', () => {
    const r = inside('iso-b', 'cat /srv/given/shared.txt; touch /srv/given/new; mount -o remount,rw /srv/given')
    expect(r.stdout).toBe('given to iso-b\n')
    expect(r.stderr).toMatch(/touch: cannot touch '\/srv\/given\/new': Read-only file system/)
    expect(r.stderr).toMatch(/mount: \/srv\/given: permission denied/)
    expect(existsSync(join(ws.root, 'given', 'new'))).toBe(false)
    expect(inside('iso-a', 'ls /srv/given').stderr).toMatch(/No such file or directory/)
  })

  it('memory_mb is enforced: a 400 MB allocation in a 256 MB server is killed, the server lives on', () => {
    const r = inside('iso-a', `python3 -c "b = b'x' * (400 << 20); print('survived')"; echo "exit=$?"`)
    expect(r.stdout).not.toContain('survived')
    expect(r.stdout).toContain('exit=137')
    expect(inside('iso-a', 'echo alive').stdout.trim()).toBe('alive')
  })

  it('cores is enforced and reported: nproc inside, quota and limits in info', async () => {
    const info = (await cli(['info', 'iso-a', '--out', 'json'])).json() as {
      provider_info: { sandbox: { limits: Record<string, unknown>; cgroups: string[] } }
    }
    expect(info.provider_info.sandbox.limits).toMatchObject({
      cores: 1,
      memory_mb: 256,
      cpu_quota: '100000/100000',
      enforced: { cores: true, memory: true, disk: false },
    })
    expect(inside('iso-a', 'nproc').stdout.trim()).toBe('1')
    for (const dir of info.provider_info.sandbox.cgroups) expect(existsSync(dir)).toBe(true)
    // iso-b declared nothing: no limits, all host CPUs.
    const b = (await cli(['info', 'iso-b', '--out', 'json'])).json() as { provider_info: { sandbox: { limits: Record<string, unknown> } } }
    expect(b.provider_info.sandbox.limits).toMatchObject({ cores: null, memory_mb: null, enforced: { cores: false, memory: false } })
  })

  it('catalog packages install offline from the image (no route to a mirror)', () => {
    const r = inside(
      'iso-b',
      'timeout 5 curl -sS -o /dev/null http://deb.debian.org/ 2>&1; DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends redis-tools >/dev/null && redis-cli --version',
    )
    expect(r.stdout).toMatch(/redis-cli 7/)
  })

  it('no writable cgroup controller: the server is created with a clear warning, limits reported as not enforced', async () => {
    // A private mount namespace where the cgroup hierarchies are read-only, for this one command.
    const script = 'for d in /sys/fs/cgroup/*/ /sys/fs/cgroup/; do mount -o remount,bind,ro "$d" 2>/dev/null; done; exec "$@"'
    const file = join(ws.path, 'infra', 'iso', 'servers.yaml')
    writeFileSync(file, `${readFileSync(file, 'utf8')}  - name: iso-c\n    provider: local\n    cores: 1\n    memory_mb: 128\n`)
    const r = spawnSync(
      'unshare',
      [
        '--mount',
        '--propagation',
        'private',
        'sh',
        '-c',
        script,
        'sh',
        process.execPath,
        join(repoRoot, 'bin', 'prov-server'),
        'create',
        'iso-c',
        '--infra',
        'iso',
        '--out',
        'json',
      ],
      { env: { ...process.env, ...ws.env } as NodeJS.ProcessEnv, cwd: ws.path, encoding: 'utf8', timeout: 300_000 },
    )
    expect(r.status, r.stderr).toBe(0)
    expect(r.stderr).toMatch(/iso-c: memory_mb 128 is not enforced: the memory cgroup controller is \S+ is mounted read-only/)
    const info = (await cli(['info', 'iso-c', '--out', 'json'])).json() as { provider_info: { sandbox: { limits: Record<string, unknown> } } }
    expect(info.provider_info.sandbox.limits).toMatchObject({ enforced: { cores: false, memory: false } })
    expect((await cli(['delete', 'iso-c', '--yes', '-q'])).code).toBe(0)
  })
})
