import { existsSync, readdirSync, readFileSync } from 'node:fs'
import { basename, dirname, join, relative } from 'node:path'
import {
  assertPathSegment,
  configError,
  didYouMean,
  infraNamePattern,
  loginNameProblem,
  notFoundError,
  type ProvError,
  type ProvErrorOptions,
  plainDataProblem,
  serverSpecSchemas,
  unsafeValueIssue,
  usageError,
} from '@prov/core'
import { parseYamlText } from '@prov/core/config'
import { z } from 'zod'
import { mergeProvision, provisionSchema } from './dayzero/provision'
import type { ProviderNameSet } from './providers/registry'
import type { ServerSpec } from './providers/types'
import { addressKey } from './validate'

/** Largest servers.yaml read (bytes): a bigger one is refused rather than parsed. */
const maxFileBytes = 4 << 20

/**
 * The first-boot fields of an entry or of defaults (docs/day-zero.md). They are the server
 * package's own: checked here by the day-zero rules, every other field by the server rules of
 * @prov/core.
 */
const dayZeroSchema = z.strictObject({
  provision: provisionSchema.optional(),
  /** Or a Butane file (workspace-relative) translated to Ignition. */
  butane: z
    .string()
    .regex(/^[^/\0][^\0]*\.bu$/, 'a workspace-relative .bu file')
    .refine((p) => !p.split('/').includes('..'), { message: 'no .. in the path' })
    .optional(),
})
const dayZeroKeys = ['provision', 'butane']
type DayZeroFields = z.output<typeof dayZeroSchema>

/** An object without its first-boot fields, and those fields checked (`fail` gets the problem). */
function splitDayZero(value: unknown, fail: (path: (string | number)[], message: string) => never): { rest: unknown; dayZero: DayZeroFields } {
  if (!value || typeof value !== 'object' || Array.isArray(value)) return { rest: value, dayZero: {} }
  const { provision, butane, ...rest } = value as Record<string, unknown>
  // Only the fields present: an absent one must not hide the same field of the defaults.
  const result = dayZeroSchema.safeParse({ ...(provision === undefined ? {} : { provision }), ...(butane === undefined ? {} : { butane }) })
  if (!result.success) {
    const issue = result.error.issues[0]
    fail(
      issue.path.map((p) => (typeof p === 'number' ? p : String(p))),
      issue.message,
    )
  }
  return { rest, dayZero: result.data as DayZeroFields }
}

interface SchemaIssue {
  code: string
  path: PropertyKey[]
  message: string
  keys?: PropertyKey[]
  params?: Record<string, unknown>
}

/**
 * The error for a schema problem: a value that would reach a command line (an address, a login
 * name) is hostile input, exit 2; everything else in servers.yaml is configuration, exit 3.
 */
export function issueError(issue: SchemaIssue, message: string, options: ProvErrorOptions): ProvError {
  return issue.code === 'custom' && issue.params?.unsafe === unsafeValueIssue.unsafe ? usageError(message, options) : configError(message, options)
}

export interface DesiredState {
  file: string
  infra: string | null
  servers: ServerSpec[]
  /**
   * `file:line` of a field of server `name` (e.g. ['provision', 'files', 0, 'path']): its own
   * line when the server's entry has it, else the file defaults' line of it, else the nearest
   * enclosing field of the entry.
   */
  locate: (name: string, path: FieldPath) => string
}

/** A path to a field; `{ key, value }` names a list item by its key (lists are merged by key). */
export type FieldPath = (string | number | { key: string; value: unknown })[]

export interface DesiredOptions {
  /** config.servers.defaults (lowest priority). */
  configDefaults: Record<string, unknown>
  defaultProvider: string
  defaultSshUser: string
  defaultSshPort: number
  knownProviders: ProviderNameSet
}

/** The servers.yaml of an infra: `infra/<name>/servers.yaml` (exit 5 with the nearest infra names). */
export function infraServersFile(workspacePath: string, infra: string): string {
  assertPathSegment(infra, '--infra')
  const file = join(workspacePath, 'infra', infra, 'servers.yaml')
  if (existsSync(file)) return file
  const alt = join(workspacePath, 'infra', infra, 'servers.yml')
  if (existsSync(alt)) return alt
  const infraDir = join(workspacePath, 'infra')
  let names: string[] = []
  try {
    names = readdirSync(infraDir).filter((n) => existsSync(join(infraDir, n, 'servers.yaml')))
  } catch {
    names = []
  }
  throw notFoundError(`infra '${infra}' has no servers.yaml`, {
    location: file,
    hint: didYouMean(infra, names) ?? (names.length ? `infras with servers: ${names.join(', ')}` : 'create infra/<name>/servers.yaml'),
  })
}

function lineOf(lines: Map<string, number>, path: (string | number)[]): number | undefined {
  for (let i = path.length; i > 0; i--) {
    const line = lines.get(path.slice(0, i).join('.'))
    if (line) return line
  }
  return undefined
}

/**
 * Reads and validates a servers.yaml; every problem names file:line. Configuration problems are
 * exit 3; an address or login name that is not one is exit 2 (see `issueError`).
 */
export function readDesired(file: string, options: DesiredOptions, workspacePath?: string): DesiredState {
  let text: string
  try {
    text = readFileSync(file, 'utf8')
  } catch {
    throw notFoundError(`no such file: ${file}`, { location: file })
  }
  const shown = workspacePath && file.startsWith(workspacePath) ? relative(workspacePath, file) : file
  if (Buffer.byteLength(text) > maxFileBytes) throw configError(`servers file is larger than ${maxFileBytes >> 20} MiB`, { location: shown })
  const parsed = parseYamlText(text, shown)
  const at = (path: (string | number)[]) => `${shown}:${lineOf(parsed.lines, path) ?? 1}`
  const unsafe = plainDataProblem(parsed.data)
  if (unsafe) throw configError(`invalid servers file: ${unsafe.message}`, { location: at(unsafe.path) })
  const { entry: entrySchema, defaults: defaultsSchema, file: fileSchema } = serverSpecSchemas()
  const data = parsed.data as Record<string, unknown> | null
  const fileSplit =
    data && typeof data === 'object' && 'defaults' in data
      ? splitDayZero(data.defaults, (path, message) => {
          throw configError(`invalid servers file at 'defaults.${path.join('.')}': ${message}`, { location: at(['defaults', ...path]) })
        })
      : { rest: undefined, dayZero: {} }
  const top = fileSchema.safeParse(data && typeof data === 'object' && 'defaults' in data ? { ...data, defaults: fileSplit.rest } : data)
  if (!top.success) {
    const issue = top.error.issues[0]
    const field = issue.path.join('.')
    const hint = issue.code === 'unrecognized_keys' ? didYouMean(String(issue.keys[0]), ['servers', 'defaults']) : undefined
    throw issueError(issue, `invalid servers file${field ? ` at '${field}'` : ''}: ${issue.message}`, {
      location: at(issue.code === 'unrecognized_keys' ? [String(issue.keys[0])] : issue.path.map(String)),
      hint: hint ?? (field ? undefined : "the file holds 'servers:' (a list) and optionally 'defaults:'"),
    })
  }
  const fileDefaults = { ...(top.data.defaults ?? {}), ...fileSplit.dayZero }
  const configSplit = splitDayZero(options.configDefaults, (path, message) => {
    throw configError(`invalid servers.defaults in the configuration at '${path.join('.')}': ${message}`, {
      location: `servers.defaults.${path.join('.')}`,
      hint: 'see prov config show --explain',
    })
  })
  const configDefaults = defaultsSchema.safeParse(configSplit.rest)
  if (!configDefaults.success) {
    const issue = configDefaults.error.issues[0]
    const field = issue.code === 'unrecognized_keys' ? String(issue.keys[0]) : issue.path.join('.')
    throw issueError(issue, `invalid servers.defaults in the configuration${field ? ` at '${field}'` : ''}: ${issue.message}`, {
      location: `servers.defaults${field ? `.${field}` : ''}`,
      hint: 'see prov config show --explain',
    })
  }
  const baseDefaults = { ...configDefaults.data, ...configSplit.dayZero }
  const infra = basename(dirname(file)) && basename(dirname(dirname(file))) === 'infra' ? basename(dirname(file)) : null
  if (infra !== null && !infraNamePattern.test(infra)) {
    throw configError(`infra folder name '${infra}' is not usable: letters, digits, _ . - (at most 63)`, { location: shown })
  }
  const specs: ServerSpec[] = []
  const seen = new Map<string, number>()
  const addresses = new Map<string, string>()
  top.data.servers.forEach((raw, index) => {
    const split = splitDayZero(raw, (path, message) => {
      throw configError(`invalid server ${index + 1} field '${path.join('.')}': ${message}`, { location: at(['servers', index, ...path]) })
    })
    const result = entrySchema.safeParse(split.rest)
    if (!result.success) {
      const issue = result.error.issues[0]
      const keys = issue.code === 'unrecognized_keys' ? issue.keys.map(String) : []
      const path = ['servers', index, ...(keys.length ? [keys[0]] : issue.path.map(String))]
      const field = keys.length ? keys[0] : issue.path.join('.')
      const hint = keys.length ? didYouMean(keys[0], [...Object.keys(entrySchema.shape), ...dayZeroKeys]) : undefined
      throw issueError(issue, `invalid server ${index + 1}${field ? ` field '${field}'` : ''}: ${keys.length ? 'unknown field' : issue.message}`, {
        location: at(path),
        hint,
      })
    }
    const entry = { ...result.data, ...split.dayZero }
    const name = entry.name
    if (seen.has(name)) {
      throw configError(`duplicate server name '${name}' (first at line ${seen.get(name)})`, {
        location: at(['servers', index, 'name']),
        hint: 'server names are unique in a workspace',
      })
    }
    seen.set(name, lineOf(parsed.lines, ['servers', index, 'name']) ?? 0)
    const merged = { ...baseDefaults, ...fileDefaults, ...entry, ssh: { ...baseDefaults.ssh, ...fileDefaults.ssh, ...entry.ssh } }
    if (entry.provision && entry.butane) {
      throw configError(`server '${name}' has both provision: and butane:`, {
        location: at(['servers', index, 'butane']),
        hint: 'describe its first boot one way',
      })
    }
    const provision = entry.butane ? undefined : mergeProvision(mergeProvision(baseDefaults.provision, fileDefaults.provision), entry.provision)
    const provider = merged.provider ?? options.defaultProvider
    if (!options.knownProviders.has(provider)) {
      const known = options.knownProviders.all()
      throw configError(`unknown provider '${provider}' for server '${name}'`, {
        location: at(['servers', index, entry.provider ? 'provider' : 'name']),
        hint: didYouMean(provider, known) ?? `providers: ${known.join(', ')}`,
      })
    }
    if (merged.address) {
      const key = addressKey(provider, merged.address, merged.ssh?.port ?? options.defaultSshPort)
      const other = addresses.get(key)
      if (other) {
        throw configError(`address ${merged.address} of server '${name}' collides with server '${other}'`, { location: at(['servers', index, 'address']) })
      }
      addresses.set(key, name)
    }
    const user = merged.ssh?.user ?? options.defaultSshUser
    const userProblem = loginNameProblem(user)
    if (userProblem) {
      throw usageError(`invalid server ${index + 1} ssh user: ${userProblem}`, { location: at(['servers', index, entry.ssh?.user ? 'ssh' : 'name']) })
    }
    specs.push({
      name,
      provider,
      infra,
      plan: merged.plan ?? null,
      cores: merged.cores ?? null,
      memory_mb: merged.memory_mb ?? null,
      disk_gb: merged.disk_gb ?? null,
      zone: merged.zone ?? null,
      image: merged.image ?? null,
      labels: { ...(baseDefaults.labels ?? {}), ...(fileDefaults.labels ?? {}), ...(entry.labels ?? {}) },
      ssh: { user, port: merged.ssh?.port ?? options.defaultSshPort },
      address: merged.address ?? null,
      options: merged.options ?? {},
      ...(provision ? { provision } : {}),
      ...(merged.butane && !entry.provision ? { butane: merged.butane } : {}),
    })
  })
  const indexOf = new Map(specs.map((spec, index) => [spec.name, index]))
  const rawServers = (data as { servers?: unknown[] } | null)?.servers ?? []
  const rawDefaults = (data as { defaults?: unknown } | null)?.defaults
  // A path into the raw entry: a list item named by its key ({ key, value }) becomes its index there.
  const resolveIn = (root: unknown, path: FieldPath): (string | number)[] | undefined => {
    let node = root
    const out: (string | number)[] = []
    for (const part of path) {
      if (typeof part === 'object') {
        const index = Array.isArray(node)
          ? node.findIndex((item) => item && typeof item === 'object' && (item as Record<string, unknown>)[part.key] === part.value)
          : -1
        if (index < 0) return undefined
        out.push(index)
        node = (node as unknown[])[index]
      } else {
        out.push(part)
        node = node && typeof node === 'object' ? (node as Record<string | number, unknown>)[part] : undefined
      }
    }
    return out
  }
  const locate = (name: string, path: FieldPath) => {
    const index = indexOf.get(name)
    if (index === undefined) return shown
    const exact = (prefix: (string | number)[], root: unknown) => {
      const resolved = resolveIn(root, path)
      return resolved ? parsed.lines.get([...prefix, ...resolved].join('.')) : undefined
    }
    const firstKeyed = path.findIndex((part) => typeof part === 'object')
    const nearest = (firstKeyed < 0 ? path : path.slice(0, firstKeyed)) as (string | number)[]
    const line =
      (path.length ? (exact(['servers', index], rawServers[index]) ?? exact(['defaults'], rawDefaults)) : undefined) ??
      lineOf(parsed.lines, ['servers', index, ...nearest]) ??
      1
    return `${shown}:${line}`
  }
  return { file, infra, servers: specs, locate }
}

/** Line of server `name` in the file (for provider validation messages). */
export function specLocation(desired: DesiredState, name: string): string {
  return desired.locate(name, [])
}
