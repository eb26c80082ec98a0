import { z } from 'zod'

/**
 * The `provision:` block of a server in servers.yaml: what a new machine gets at first boot,
 * written once and rendered to Ignition or cloud-init. Every field is checked as strictly as the
 * rest of servers.yaml; `packages` exists only for cloud-init (Ignition writes files, it installs
 * nothing).
 */

/** Largest inline contents of one file and of all files of one server (cloud user data is small). */
export const MAX_FILE_BYTES = 256 * 1024
export const MAX_DOCUMENT_BYTES = 1024 * 1024

/**
 * An absolute path in its simplest form, as Ignition requires (path.Clean of it is itself): no
 * `.` or `..` parts, no empty parts, no trailing slash; never the root itself.
 */
export function isCleanAbsolutePath(path: string): boolean {
  if (!path.startsWith('/') || path === '/' || path.includes('\0')) return false
  return path
    .slice(1)
    .split('/')
    .every((part) => part !== '' && part !== '.' && part !== '..')
}

const absolutePath = z
  .string()
  .max(4096)
  .refine(isCleanAbsolutePath, {
    message: 'an absolute path like /etc/motd (no . or .. parts, no // and no trailing /)',
  })
  // Control characters in a file name only ever serve to mislead whoever lists the folder, and no
  // filesystem takes a name over 255 bytes: both refused here rather than on the machine.
  .refine((path) => !/[\u0000-\u001f\u007f]/.test(path), { message: 'a path without control characters' })
  .refine((path) => path.split('/').every((part) => Buffer.byteLength(part) <= 255), { message: 'a path whose names are at most 255 bytes each' })

/** Unix user and group names as useradd accepts them by default. */
const accountName = z.string().regex(/^[a-z_][a-z0-9_-]{0,31}$/, 'a user/group name: lower-case letters, digits, _ and - (at most 32)')

const oneLine = (what: string) =>
  z
    .string()
    .min(1)
    .max(16 * 1024)
    .refine((s) => !/[\r\n\0]/.test(s), { message: `${what} must be one line` })

/**
 * A permission mode as people write it for chmod: 0644, '0644', 644 or 0o644 all mean rw-r--r--.
 * YAML 1.2 reads an unquoted 0644 as the decimal number 644, so integers are read digit by digit
 * as octal; a digit 8 or 9 cannot be a mode and is refused.
 */
export const modeSchema = z
  .union([z.number().int().nonnegative(), z.string().regex(/^(0o)?[0-7]{1,4}$/, "an octal mode like '0644'")])
  .transform((value, ctx) => {
    const digits = typeof value === 'number' ? String(value) : value.replace(/^0o/, '')
    if (!/^[0-7]{1,4}$/.test(digits)) {
      ctx.addIssue({ code: 'custom', message: `mode ${value} is not octal; write it like 0644` })
      return z.NEVER
    }
    return Number.parseInt(digits, 8)
  })

export const secretRefSchema = z.strictObject({ secret: z.string().min(1).max(200) })

const fileSchema = z
  .strictObject({
    path: absolutePath,
    mode: modeSchema.optional(),
    owner: accountName.optional(),
    group: accountName.optional(),
    contents: z.union([z.string().max(MAX_FILE_BYTES), secretRefSchema]).optional(),
    /** A file of the workspace (relative to the workspace root). */
    source: z.string().min(1).max(4096).optional(),
    overwrite: z.boolean().optional(),
  })
  .refine((f) => f.contents === undefined || f.source === undefined, { message: "give 'contents' or 'source', not both", path: ['source'] })

const directorySchema = z.strictObject({
  path: absolutePath,
  mode: modeSchema.optional(),
  owner: accountName.optional(),
  group: accountName.optional(),
})

const linkSchema = z.strictObject({
  path: absolutePath,
  target: z
    .string()
    .min(1)
    .max(4096)
    .refine((t) => !t.includes('\0'), { message: 'no NUL bytes' }),
  hard: z.boolean().optional(),
  owner: accountName.optional(),
  group: accountName.optional(),
})

const unitName = z
  .string()
  .regex(/^[A-Za-z0-9:_.@\\-]{1,200}\.(service|socket|timer|target|path|mount|automount|swap|slice|device)$/, 'a systemd unit name like app.service')

const unitSchema = z.strictObject({
  name: unitName,
  enabled: z.boolean().optional(),
  mask: z.boolean().optional(),
  contents: z.string().max(MAX_FILE_BYTES).optional(),
  dropins: z
    .array(
      z.strictObject({
        name: z.string().regex(/^[A-Za-z0-9_.@-]{1,200}\.conf$/, 'a drop-in file name like 10-env.conf'),
        contents: z.string().max(MAX_FILE_BYTES),
      }),
    )
    .max(100)
    .optional(),
})

const userSchema = z.strictObject({
  name: accountName,
  groups: z.array(accountName).max(64).optional(),
  shell: absolutePath.optional(),
  home: absolutePath.optional(),
  uid: z
    .number()
    .int()
    .min(1)
    .max(2 ** 31 - 1)
    .optional(),
  ssh_authorized_keys: z.array(oneLine('an SSH key')).max(100).optional(),
  /** true: full sudo without a password; a string: the sudoers rule after the user name. */
  sudo: z.union([z.boolean(), oneLine('a sudo rule')]).optional(),
  password_hash: oneLine('a password hash').optional(),
})

const groupSchema = z.strictObject({
  name: accountName,
  gid: z
    .number()
    .int()
    .min(1)
    .max(2 ** 31 - 1)
    .optional(),
})

export const dayZeroFormats = ['ignition', 'cloud-init'] as const
export type DayZeroFormat = (typeof dayZeroFormats)[number]

export const ignitionVersions = ['3.0.0', '3.1.0', '3.2.0', '3.3.0', '3.4.0'] as const
export type IgnitionVersion = (typeof ignitionVersions)[number]
export const DEFAULT_IGNITION_VERSION: IgnitionVersion = '3.3.0'

export const provisionSchema = z.strictObject({
  /** Overrides the provider's native format (local: ignition; cloud providers: cloud-init). */
  format: z.enum(dayZeroFormats).optional(),
  ignition_version: z.enum(ignitionVersions).optional(),
  hostname: z
    .string()
    .regex(/^[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?(\.[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?)*$/, 'a hostname')
    .max(253)
    .optional(),
  users: z.array(userSchema).max(100).optional(),
  groups: z.array(groupSchema).max(100).optional(),
  files: z.array(fileSchema).max(500).optional(),
  directories: z.array(directorySchema).max(500).optional(),
  links: z.array(linkSchema).max(500).optional(),
  units: z.array(unitSchema).max(200).optional(),
  packages: z
    .array(z.string().regex(/^[a-z0-9][a-z0-9+.-]{0,127}(=[A-Za-z0-9.+:~-]{1,64})?$/, 'a Debian package name (optionally =version)'))
    .max(500)
    .optional(),
  commands: z
    .array(
      z
        .string()
        .min(1)
        .max(16 * 1024),
    )
    .max(200)
    .optional(),
})

export type Provision = z.output<typeof provisionSchema>
export type ProvisionFile = z.output<typeof fileSchema>
export type ProvisionUser = z.output<typeof userSchema>

/** Lists merged by their identity: a server's entry replaces the default with the same key. */
export const provisionListKeys = { users: 'name', groups: 'name', files: 'path', directories: 'path', links: 'path', units: 'name' } as const

function mergeByKey<T extends Record<string, unknown>>(base: T[] | undefined, over: T[] | undefined, key: string): T[] | undefined {
  if (!base) return over
  if (!over) return base
  const replaced = new Set(over.map((item) => item[key]))
  return [...base.filter((item) => !replaced.has(item[key])), ...over]
}

const unique = (items: string[] | undefined, more: string[] | undefined) => (items || more ? [...new Set([...(items ?? []), ...(more ?? [])])] : undefined)

/** `defaults.provision` under a server's own `provision` (lists by key, packages as a set, commands in order). */
export function mergeProvision(base: Provision | undefined, over: Provision | undefined): Provision | undefined {
  if (!base) return over
  if (!over) return base
  const merged: Provision = { ...base, ...over }
  for (const [field, key] of Object.entries(provisionListKeys) as [keyof typeof provisionListKeys, string][]) {
    const value = mergeByKey(base[field] as Record<string, unknown>[] | undefined, over[field] as Record<string, unknown>[] | undefined, key)
    if (value) (merged as Record<string, unknown>)[field] = value
  }
  merged.packages = unique(base.packages, over.packages)
  merged.commands = base.commands || over.commands ? [...(base.commands ?? []), ...(over.commands ?? [])] : undefined
  if (!merged.packages) delete merged.packages
  if (!merged.commands) delete merged.commands
  return merged
}

/**
 * Groups every Debian system has (base-passwd) - the groups a user may join without declaring
 * them under `provision.groups`.
 */
export const systemGroups: ReadonlySet<string> = new Set(
  'root daemon bin sys adm tty disk lp mail news uucp man proxy kmem dialout fax voice cdrom floppy tape sudo audio dip www-data backup operator list irc src shadow utmp video sasl plugdev staff games users nogroup systemd-journal'.split(
    ' ',
  ),
)
