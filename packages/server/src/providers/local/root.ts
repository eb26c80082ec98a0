/**
 * The sandbox's root as prov prepares it: the files written into its upper layer before each boot
 * (sshd config, host key, authorized keys, hostname) and the boot script it runs as its init.
 */
import { chmodSync, chownSync, existsSync, mkdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs'
import { join } from 'node:path'
import { generateOpenSshEd25519 } from '@prov/core'
import { firstBootScript } from '../../dayzero/first-boot'
import { hostId } from '../../images/idmap'
import { ensureLayerDirs, writeLayerFile } from '../../images/layer'
import type { SandboxNames } from './sandbox'

export interface SandboxSpec {
  name: string
  ip: string
  port: number
  user: string
  authorizedKey: string
}

/** A login user other than root is created at boot (validated: it ends up in a sudoers file name). */
export const sshUserPattern = /^[a-z_][a-z0-9_-]{0,31}$/

/**
 * The server's own SSH host key, kept next to (not inside) its upper layer: the sandbox can read
 * its copy, but never steer where the host writes it. Returns the public key line.
 */
function hostKeyOf(names: SandboxNames, name: string): { key: string; pub: string } {
  const keyFile = join(names.dir, 'ssh_host_ed25519_key')
  if (!existsSync(keyFile) || !existsSync(`${keyFile}.pub`)) {
    const pair = generateOpenSshEd25519(`root@${name}`)
    rmSync(keyFile, { force: true })
    rmSync(`${keyFile}.pub`, { force: true })
    writeFileSync(keyFile, pair.privateKey, { mode: 0o600, flag: 'wx' })
    writeFileSync(`${keyFile}.pub`, `${pair.publicKey}\n`, { mode: 0o644, flag: 'wx' })
  }
  chmodSync(keyFile, 0o600)
  return { key: readFileSync(keyFile, 'utf8'), pub: readFileSync(`${keyFile}.pub`, 'utf8').trim() }
}

/**
 * Files the sandbox needs, written into its upper layer before each boot: its sshd config and host
 * key, the workspace key in root's authorized_keys, hostname and hosts. Every write refuses a path
 * through a symlink the sandbox may have planted (see writeLayerFile).
 * Returns the sandbox's public host key line.
 */
export async function prepareUpper(names: SandboxNames, lowers: string[], spec: SandboxSpec): Promise<string> {
  const upper = join(names.dir, 'upper')
  for (const sub of ['upper', 'work']) {
    if (!existsSync(join(names.dir, sub))) mkdirSync(join(names.dir, sub), { recursive: true, mode: 0o755 })
  }
  // The upper root is the merged root: owned by the sandbox's root like the image's.
  chownSync(upper, hostId(0), hostId(0))
  chmodSync(upper, 0o755)
  rmSync(join(names.dir, 'merged'), { recursive: true, force: true })
  const hostKey = hostKeyOf(names, spec.name)
  const sshd = [
    '# Written by prov (local provider) at every boot.',
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
    // Ignition writes a user's keys to a fragment of its own.
    'AuthorizedKeysFile .ssh/authorized_keys .ssh/authorized_keys.d/ignition /etc/ssh/prov/authorized_keys',
    'MaxStartups 200:30:400',
    'MaxSessions 100',
    'AcceptEnv LANG LC_*',
    'Subsystem sftp internal-sftp',
    '',
  ].join('\n')
  writeLayerFile(upper, lowers, '/etc/ssh/prov/sshd_config', sshd, 0o644)
  writeLayerFile(upper, lowers, '/etc/ssh/prov/ssh_host_ed25519_key', hostKey.key, 0o600)
  writeLayerFile(upper, lowers, '/etc/ssh/prov/ssh_host_ed25519_key.pub', `${hostKey.pub}\n`, 0o644)
  writeLayerFile(upper, lowers, '/etc/ssh/prov/authorized_keys', `${spec.authorizedKey}\n`, 0o644)
  if (spec.user === 'root') {
    ensureLayerDirs(upper, lowers, '/root')
    const sshDir = ensureLayerDirs(upper, lowers, '/root/.ssh')
    chmodSync(sshDir, 0o700)
    writeLayerFile(upper, lowers, '/root/.ssh/authorized_keys', `${spec.authorizedKey}\n`, 0o600)
  }
  writeLayerFile(upper, lowers, '/etc/hostname', `${spec.name}\n`, 0o644)
  writeLayerFile(upper, lowers, '/etc/hosts', `127.0.0.1\tlocalhost\n::1\tlocalhost ip6-localhost ip6-loopback\n${spec.ip}\t${spec.name}\n`, 0o644)
  return hostKey.pub
}

/**
 * The sandbox's boot, run as root of its user namespace once bubblewrap has set up its root (PID 1
 * is bubblewrap's reaper, which collects orphaned daemons). Like an init system it mounts /sys,
 * applies the day-zero document once (firstBootScript), creates the login user, starts the services the taskservs enabled — every service the taskserv
 * helper recorded with svc_start (/var/lib/prov/services/NAME.cmd), oldest first, so a service starts
 * after the ones it requires (those install at an earlier level; a level's own services install side by side,
 * in no fixed order) — and then runs sshd in the foreground.
 */
export const bootScript = `# prov sandbox boot (see docs/prov-server.md#local)
# The launcher's descriptors (bubblewrap passes them on) are nothing the services should inherit.
exec 3>&- 4>&- 5>&-
PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin
export PATH
# sysfs of the sandbox's own network namespace, read-only; the host's read-only bind that allowed
# the mount goes away at once.
mount -t sysfs -o ro,nosuid,nodev,noexec sysfs /sys 2>/dev/null || echo "boot: cannot mount /sys" >&2
umount -l "$PROV_HOST_SYS" 2>/dev/null
rmdir "$PROV_HOST_SYS" 2>/dev/null
mkdir -p /run/sshd /run/lock /var/log/prov
chmod 1777 /run/lock
${firstBootScript}
if [ "$PROV_USER" != root ] && ! id "$PROV_USER" >/dev/null 2>&1; then
  useradd --create-home --shell /bin/bash "$PROV_USER" && \\
    printf '%s ALL=(ALL) NOPASSWD:ALL\\n' "$PROV_USER" > "/etc/sudoers.d/prov-$PROV_USER" && \\
    chmod 440 "/etc/sudoers.d/prov-$PROV_USER"
fi
# Pid files of the previous boot mean nothing now.
rm -f /var/lib/prov/run/*.pid
lib=$(ls -t /var/lib/prov/taskservs/*/_lib/service.sh 2>/dev/null | head -n 1)
if [ -n "$lib" ]; then
  for cmd in $(ls -tr /var/lib/prov/services/*.cmd 2>/dev/null); do
    name=$(basename "$cmd" .cmd)
    echo "boot: starting $name" >> /var/log/prov/boot.log
    ( . "$lib" && svc_start "$name" ) >> /var/log/prov/boot.log 2>&1 || echo "boot: $name did not start" >> /var/log/prov/boot.log
  done
fi
echo "prov sandbox $(hostname) up" >&2
exec /usr/sbin/sshd -D -e -f /etc/ssh/prov/sshd_config
`
