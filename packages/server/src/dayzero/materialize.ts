import { readFileSync, realpathSync, statSync } from 'node:fs'
import { resolve, sep } from 'node:path'
import { configError, envSecretName, isSecretRef, listSecretNames, notFoundError, type SecretResolver, validateSecretName } from '@prov/core'
import {
  DEFAULT_IGNITION_VERSION,
  type IgnitionVersion,
  MAX_DOCUMENT_BYTES,
  MAX_FILE_BYTES,
  type Provision,
  type ProvisionUser,
  systemGroups,
} from './provision'

/** A file of a provision block with its bytes in hand (read from the workspace or a secret). */
export interface MaterializedFile {
  path: string
  mode: number
  owner?: string
  group?: string
  overwrite: boolean
  contents: Uint8Array
}

/** A provision block ready to render: defaults applied, sources read, secrets resolved or masked. */
export interface MaterializedProvision extends Omit<Required<Provision>, 'files' | 'format' | 'ignition_version' | 'hostname'> {
  hostname: string
  ignitionVersion: IgnitionVersion
  files: MaterializedFile[]
  /** `file:line` of a field of this server's provision block, for messages. */
  location: (field: string) => string
}

export interface MaterializeOptions {
  workspacePath: string
  /** Server name: the default hostname. */
  server: string
  /** Resolves `{secret: name}` contents; without it they are masked (plans, state, printed output). */
  secrets?: SecretResolver
  location: (field: string) => string
}

/** Text that stands in for a secret in anything stored or printed. */
export const maskedSecret = (name: string) => `<secret ${name}>`

/** Reads a workspace-relative `source:` file, refusing anything outside the workspace. */
function readSource(workspacePath: string, source: string, at: string): Buffer {
  const root = realpathSync(workspacePath)
  const target = resolve(root, source)
  const outside = () =>
    configError(`file source '${source}' is outside the workspace`, { location: at, hint: 'source: is a path relative to the workspace root, e.g. files/motd' })
  if (target !== root && !target.startsWith(root + sep)) throw outside()
  let real: string
  try {
    real = realpathSync(target)
  } catch {
    throw notFoundError(`file source '${source}' does not exist`, { location: at, hint: 'source: is relative to the workspace root' })
  }
  if (!real.startsWith(root + sep)) throw outside()
  // The workspace's own state (.prov/: the KMS identity, the secret store, state files) never
  // travels in a first-boot document, whatever path or link leads there.
  const inside = real.slice(root.length + 1).split(sep)
  if (inside[0] === '.prov' || inside[0] === '.git')
    throw configError(`file source '${source}' is in the workspace's ${inside[0]}/ folder, which never goes to a machine`, {
      location: at,
      hint: 'put files for servers under files/ (secrets: contents: { secret: NAME })',
    })
  const stat = statSync(real)
  if (!stat.isFile()) throw configError(`file source '${source}' is not a regular file`, { location: at })
  if (stat.size > MAX_FILE_BYTES)
    throw configError(`file source '${source}' has ${stat.size} bytes, more than the ${MAX_FILE_BYTES}-byte limit of one file`, { location: at })
  return readFileSync(real)
}

/**
 * Checks what the schema cannot (groups exist, owners exist, secrets exist, sources stay inside the
 * workspace) and reads every file's contents. Secret values are read only with a resolver.
 */
export async function materializeProvision(p: Provision, options: MaterializeOptions): Promise<MaterializedProvision> {
  const { location } = options
  const declaredGroups = new Set((p.groups ?? []).map((g) => g.name))
  const users = p.users ?? []
  const knownGroups = (name: string) => systemGroups.has(name) || declaredGroups.has(name) || users.some((u) => u.name === name)
  users.forEach((user, index) => {
    user.groups?.forEach((group, g) => {
      if (!knownGroups(group)) {
        throw configError(`group '${group}' of user '${user.name}' does not exist`, {
          location: location(`users.${index}.groups.${g}`),
          hint: 'declare it under provision.groups, or use a group of the base system (sudo, adm, users, ...)',
        })
      }
    })
  })
  const knownUser = (name: string) => name === 'root' || users.some((u) => u.name === name) || systemGroups.has(name)
  for (const [field, entries] of [
    ['files', p.files ?? []],
    ['directories', p.directories ?? []],
    ['links', p.links ?? []],
  ] as const) {
    entries.forEach((entry, index) => {
      if (entry.owner && !knownUser(entry.owner)) {
        throw configError(`owner '${entry.owner}' of ${entry.path} does not exist`, {
          location: location(`${field}.${index}.owner`),
          hint: 'declare the user under provision.users',
        })
      }
      if (entry.group && !knownGroups(entry.group)) {
        throw configError(`group '${entry.group}' of ${entry.path} does not exist`, {
          location: location(`${field}.${index}.group`),
          hint: 'declare it under provision.groups',
        })
      }
    })
  }
  // The store is listed when a file names a secret: most documents name none, and a plan renders one per server.
  let stored: Set<string> | undefined
  const isStored = (name: string) => {
    stored ??= new Set(listSecretNames(options.workspacePath))
    return stored.has(name)
  }
  let total = 0
  const files: MaterializedFile[] = []
  for (const [index, file] of (p.files ?? []).entries()) {
    let contents: Uint8Array
    if (isSecretRef(file.contents)) {
      const name = file.contents.secret
      try {
        validateSecretName(name)
      } catch {
        throw configError(`invalid secret name '${name}'`, { location: location(`files.${index}.contents.secret`) })
      }
      if (!isStored(name) && process.env[envSecretName(name)] === undefined) {
        throw notFoundError(`secret '${name}' of ${file.path} does not exist`, {
          location: location(`files.${index}.contents.secret`),
          hint: `store it with prov-kms secret set ${name}`,
        })
      }
      contents = options.secrets ? await options.secrets.bytes(name) : Buffer.from(maskedSecret(name))
    } else if (file.source !== undefined) {
      contents = readSource(options.workspacePath, file.source, location(`files.${index}.source`))
    } else {
      contents = Buffer.from(file.contents ?? '')
    }
    total += contents.length
    if (total > MAX_DOCUMENT_BYTES) {
      throw configError(`provision files hold more than ${MAX_DOCUMENT_BYTES} bytes`, {
        location: location(`files.${index}`),
        hint: 'ship large files with a taskserv or an OCI artifact',
      })
    }
    if (contents.length > MAX_FILE_BYTES)
      throw configError(`${file.path} has ${contents.length} bytes, more than the ${MAX_FILE_BYTES}-byte limit of one file`, {
        location: location(`files.${index}`),
      })
    files.push({ path: file.path, mode: file.mode ?? 0o644, owner: file.owner, group: file.group, overwrite: file.overwrite ?? true, contents })
  }
  const hostname = p.hostname ?? options.server
  assertNoCollisions(p, location)
  return {
    hostname,
    ignitionVersion: p.ignition_version ?? DEFAULT_IGNITION_VERSION,
    users,
    groups: p.groups ?? [],
    files: [{ path: '/etc/hostname', mode: 0o644, overwrite: true, contents: Buffer.from(`${hostname}\n`) }, ...files],
    directories: p.directories ?? [],
    links: p.links ?? [],
    units: p.units ?? [],
    packages: p.packages ?? [],
    commands: p.commands ?? [],
    location,
  }
}

/**
 * One entry per path and per unit name, counting what prov adds itself (/etc/hostname, the
 * sudoers files, the first-boot script and unit): Ignition refuses a document with duplicates and
 * cloud-init would write the path twice, so this is caught here, before any machine boots.
 */
function assertNoCollisions(p: Provision, location: (field: string) => string): void {
  const paths = new Map<string, string>([['/etc/hostname', 'hostname (prov writes /etc/hostname)']])
  for (const user of p.users ?? []) if (user.sudo) paths.set(`/etc/sudoers.d/90-${user.name}`, `users (sudo of ${user.name})`)
  if (p.commands?.length) paths.set(FIRST_BOOT_SCRIPT, 'commands (the first-boot script)')
  const claim = (path: string, field: string) => {
    const taken = paths.get(path)
    if (taken) throw configError(`${path} is given twice: by ${field} and by ${taken}`, { location: location(field), hint: 'give each path once' })
    paths.set(path, field)
  }
  for (const [field, entries] of [
    ['files', p.files ?? []],
    ['directories', p.directories ?? []],
    ['links', p.links ?? []],
  ] as const) {
    entries.forEach((entry, i) => {
      claim(entry.path, `${field}.${i}`)
    })
  }
  const units = new Set<string>(p.commands?.length ? [FIRST_BOOT_UNIT] : [])
  ;(p.units ?? []).forEach((u, i) => {
    if (units.has(u.name)) throw configError(`unit ${u.name} is given twice`, { location: location(`units.${i}`), hint: 'give each unit once' })
    units.add(u.name)
  })
}

/** The sudoers line of a user, or undefined when the user gets no sudo. */
export function sudoersLine(user: ProvisionUser): string | undefined {
  if (!user.sudo) return undefined
  return `${user.name} ${user.sudo === true ? 'ALL=(ALL) NOPASSWD:ALL' : user.sudo}\n`
}

export const FIRST_BOOT_SCRIPT = '/var/lib/prov/first-boot.sh'
export const FIRST_BOOT_STAMP = '/var/lib/prov/first-boot.done'
export const FIRST_BOOT_UNIT = 'prov-first-boot.service'

/** The first-boot commands as a script and a oneshot unit that runs it once (Ignition has no runcmd); the script writes the stamp. */
export function firstBoot(p: MaterializedProvision): { script: { path: string; contents: string }; unit: { name: string; contents: string } } | undefined {
  if (!p.commands.length) return undefined
  return {
    // Once per machine, like cloud-init's runcmd: the stamp comes first, so a failing, exiting or
    // broken command never makes them run again; as in runcmd, a failing command does not stop
    // the next ones, and the script's status is the last command's (the unit shows a failure).
    script: {
      path: FIRST_BOOT_SCRIPT,
      contents: `#!/bin/sh\ntouch ${FIRST_BOOT_STAMP}\n${p.commands.join('\n')}\n`,
    },
    unit: {
      name: FIRST_BOOT_UNIT,
      contents: [
        '[Unit]',
        'Description=prov first-boot commands',
        `ConditionPathExists=!${FIRST_BOOT_STAMP}`,
        'Wants=network-online.target',
        'After=network-online.target',
        '',
        '[Service]',
        'Type=oneshot',
        'RemainAfterExit=yes',
        `ExecStart=/bin/sh ${FIRST_BOOT_SCRIPT}`,
        '',
        '[Install]',
        'WantedBy=multi-user.target',
        '',
      ].join('\n'),
    },
  }
}
