import { stringify } from 'yaml'
import { type MaterializedProvision, sudoersLine } from './materialize'

const octal = (mode: number) => `0${mode.toString(8).padStart(3, '0')}`
/**
 * Contents cloud-init can read back from YAML exactly: valid UTF-8 without control characters
 * (but tab and newline) and without the line separators YAML treats specially (NEL, LS, PS).
 * Anything else goes base64.
 */
const isText = (bytes: Uint8Array) => {
  const text = Buffer.from(bytes).toString('utf8')
  return Buffer.from(text, 'utf8').equals(Buffer.from(bytes)) && !/[\u0000-\u0008\u000b-\u001f\u007f-\u009f\u2028\u2029\ufeff]/.test(text)
}

/**
 * A `#cloud-config` document for a `provision:` block. Directories, links and unit activation
 * become argv-style `runcmd` entries (lists, so no shell parses any path); files whose owner is
 * created by cloud-init itself are written in the final stage (`defer`), after the users exist.
 */
export function renderCloudConfig(p: MaterializedProvision): string {
  const doc: Record<string, unknown> = {}
  if (p.hostname) {
    doc.hostname = p.hostname
    doc.preserve_hostname = false
  }
  if (p.groups.length) doc.groups = p.groups.map((g) => g.name)
  if (p.users.length) {
    doc.users = p.users.map((u) => {
      const sudo = sudoersLine(u)
      return {
        name: u.name,
        ...(u.uid !== undefined ? { uid: u.uid } : {}),
        ...(u.groups?.length ? { groups: u.groups.join(',') } : {}),
        ...(u.shell ? { shell: u.shell } : {}),
        ...(u.home ? { homedir: u.home } : {}),
        ...(u.password_hash ? { passwd: u.password_hash, lock_passwd: false } : {}),
        ...(sudo ? { sudo: sudo.slice(u.name.length + 1).trimEnd() } : {}),
        ...(u.ssh_authorized_keys?.length ? { ssh_authorized_keys: u.ssh_authorized_keys } : {}),
      }
    })
  }
  const created = new Set(p.users.map((u) => u.name))
  const files: Record<string, unknown>[] = p.files.map((f) => {
    const text = isText(f.contents)
    const owner = f.owner || f.group ? `${f.owner ?? 'root'}:${f.group ?? f.owner ?? 'root'}` : undefined
    return {
      path: f.path,
      ...(text ? { content: Buffer.from(f.contents).toString('utf8') } : { encoding: 'b64', content: Buffer.from(f.contents).toString('base64') }),
      permissions: octal(f.mode),
      ...(owner ? { owner } : {}),
      ...((f.owner && created.has(f.owner)) || (f.group && created.has(f.group)) ? { defer: true } : {}),
    }
  })
  for (const unit of p.units) {
    if (unit.contents !== undefined) files.push({ path: `/etc/systemd/system/${unit.name}`, content: unit.contents, permissions: '0644' })
    for (const dropin of unit.dropins ?? [])
      files.push({ path: `/etc/systemd/system/${unit.name}.d/${dropin.name}`, content: dropin.contents, permissions: '0644' })
  }
  if (files.length) doc.write_files = files
  if (p.packages.length) {
    doc.package_update = true
    doc.packages = p.packages
  }
  const runcmd: (string | string[])[] = []
  for (const d of p.directories) {
    runcmd.push(['mkdir', '-p', d.path], ['chmod', octal(d.mode ?? 0o755), d.path])
    if (d.owner || d.group) runcmd.push(['chown', `${d.owner ?? 'root'}:${d.group ?? d.owner ?? 'root'}`, d.path])
  }
  for (const l of p.links) {
    // '--': a relative link target may start with '-' and must not be read as an option of ln.
    runcmd.push(l.hard ? ['ln', '-f', '--', l.target, l.path] : ['ln', '-sfn', '--', l.target, l.path])
    if (l.owner || l.group) runcmd.push(['chown', '-h', `${l.owner ?? 'root'}:${l.group ?? l.owner ?? 'root'}`, l.path])
  }
  if (p.units.length) {
    runcmd.push(['systemctl', 'daemon-reload'])
    for (const u of p.units) {
      if (u.mask) runcmd.push(['systemctl', 'mask', u.name])
      else if (u.enabled) runcmd.push(['systemctl', 'enable', '--now', u.name])
    }
  }
  runcmd.push(...p.commands)
  if (runcmd.length) doc.runcmd = runcmd
  // YAML 1.1 quoting: cloud-init reads with PyYAML, where yes/no/on/off and 0644 mean other things.
  return `#cloud-config\n${stringify(doc, { version: '1.1', lineWidth: 0 })}`
}
