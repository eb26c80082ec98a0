import { configError } from '@prov/core'
import { dataUrl } from './dataurl'
import { firstBoot, type MaterializedProvision, sudoersLine } from './materialize'

/**
 * An Ignition config (spec 3.x) for a `provision:` block. Ignition writes nodes and units before
 * the machine's services start; first-boot commands become a oneshot unit guarded by a stamp
 * file, the way Ignition users run them.
 */
export function renderIgnition(p: MaterializedProvision): Record<string, unknown> {
  if (p.packages.length) {
    throw configError('provision.packages is not supported with Ignition (it writes files and units, it installs no packages)', {
      location: p.location('packages'),
      hint: 'install them with a taskserv, or set provision.format: cloud-init',
    })
  }
  const compress = p.ignitionVersion !== '3.0.0'
  const owner = (o?: string, g?: string) => ({ ...(o ? { user: { name: o } } : {}), ...(g ? { group: { name: g } } : {}) })
  const contents = (bytes: Uint8Array) => {
    const url = dataUrl(bytes, undefined, compress)
    return { source: url.source, ...(url.compression ? { compression: url.compression } : {}) }
  }
  const files = p.files.map((f) => ({ path: f.path, mode: f.mode, overwrite: f.overwrite, ...owner(f.owner, f.group), contents: contents(f.contents) }))
  const units: Record<string, unknown>[] = p.units.map((u) => ({
    name: u.name,
    ...(u.enabled !== undefined ? { enabled: u.enabled } : {}),
    ...(u.mask !== undefined ? { mask: u.mask } : {}),
    ...(u.contents !== undefined ? { contents: u.contents } : {}),
    ...(u.dropins?.length ? { dropins: u.dropins.map((d) => ({ name: d.name, contents: d.contents })) } : {}),
  }))
  for (const user of p.users) {
    const line = sudoersLine(user)
    if (line) files.push({ path: `/etc/sudoers.d/90-${user.name}`, mode: 0o440, overwrite: true, contents: contents(Buffer.from(line)) })
  }
  const boot = firstBoot(p)
  if (boot) {
    files.push({ path: boot.script.path, mode: 0o700, overwrite: true, contents: contents(Buffer.from(boot.script.contents)) })
    units.push({ name: boot.unit.name, enabled: true, contents: boot.unit.contents })
  }
  const passwd: Record<string, unknown> = {}
  if (p.users.length) {
    passwd.users = p.users.map((u) => ({
      name: u.name,
      ...(u.uid !== undefined ? { uid: u.uid } : {}),
      ...(u.groups?.length ? { groups: u.groups } : {}),
      ...(u.shell ? { shell: u.shell } : {}),
      ...(u.home ? { homeDir: u.home } : {}),
      ...(u.password_hash ? { passwordHash: u.password_hash } : {}),
      ...(u.ssh_authorized_keys?.length ? { sshAuthorizedKeys: u.ssh_authorized_keys } : {}),
    }))
  }
  if (p.groups.length) passwd.groups = p.groups.map((g) => ({ name: g.name, ...(g.gid !== undefined ? { gid: g.gid } : {}) }))
  const storage: Record<string, unknown> = {}
  if (files.length) storage.files = files
  if (p.directories.length) storage.directories = p.directories.map((d) => ({ path: d.path, mode: d.mode ?? 0o755, ...owner(d.owner, d.group) }))
  if (p.links.length) {
    storage.links = p.links.map((l) => ({ path: l.path, target: l.target, overwrite: true, ...(l.hard ? { hard: true } : {}), ...owner(l.owner, l.group) }))
  }
  return {
    ignition: { version: p.ignitionVersion },
    ...(Object.keys(passwd).length ? { passwd } : {}),
    ...(Object.keys(storage).length ? { storage } : {}),
    ...(units.length ? { systemd: { units } } : {}),
  }
}
