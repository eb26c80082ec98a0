import { existsSync, readdirSync, readFileSync } from 'node:fs'
import { basename, dirname, join, relative } from 'node:path'
import { configError, didYouMean, notFoundError, serverNamePattern } from '@prov/core'
import { parseYamlText } from '@prov/core/config'
import { z } from 'zod'
import { mergeProvision, provisionSchema } from './dayzero/provision'
import type { ServerSpec } from './providers/types'

/** One entry of servers.yaml (PRODUCT.md §4; docs/prov-server.md). */
const entrySchema = z.strictObject({
  name: z.string().regex(serverNamePattern, 'a hostname-like name: lower-case letters, digits and - (at most 63)'),
  provider: z.string().min(1).optional(),
  plan: z.string().min(1).optional(),
  cores: z.number().int().positive().optional(),
  memory_mb: z.number().int().positive().optional(),
  disk_gb: z.number().int().positive().optional(),
  zone: z.string().min(1).optional(),
  image: z.string().min(1).optional(),
  labels: z.record(z.string(), z.union([z.string(), z.number(), z.boolean()]).transform(String)).optional(),
  ssh: z.strictObject({ user: z.string().min(1).optional(), port: z.number().int().min(1).max(65535).optional() }).optional(),
  address: z.string().min(1).optional(),
  options: z.record(z.string(), z.unknown()).optional(),
  /** First-boot configuration (docs/day-zero.md). */
  provision: provisionSchema.optional(),
  /** Or a Butane file (workspace-relative) translated to Ignition. */
  butane: z
    .string()
    .regex(/^[^/\0][^\0]*\.bu$/, 'a workspace-relative .bu file')
    .refine((p) => !p.split('/').includes('..'), { message: 'no .. in the path' })
    .optional(),
})

const defaultsSchema = entrySchema.omit({ name: true, address: true }).partial()

const fileSchema = z.strictObject({
  defaults: defaultsSchema.optional(),
  servers: z.array(z.unknown()),
})

export interface DesiredState {
  file: string
  infra: string | null
  servers: ServerSpec[]
}

export interface DesiredOptions {
  /** config.servers.defaults (lowest priority). */
  configDefaults: Record<string, unknown>
  defaultProvider: string
  defaultSshUser: string
  defaultSshPort: number
  knownProviders: string[]
}

/** The servers.yaml of an infra: `infra/<name>/servers.yaml` (exit 5 with the nearest infra names). */
export function infraServersFile(workspacePath: string, infra: string): string {
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

/** Reads and validates a servers.yaml; every problem names file:line (exit 3). */
export function readDesired(file: string, options: DesiredOptions, workspacePath?: string): DesiredState {
  let text: string
  try {
    text = readFileSync(file, 'utf8')
  } catch {
    throw notFoundError(`no such file: ${file}`, { location: file })
  }
  const shown = workspacePath && file.startsWith(workspacePath) ? relative(workspacePath, file) : file
  const parsed = parseYamlText(text, shown)
  const at = (path: (string | number)[]) => `${shown}:${lineOf(parsed.lines, path) ?? 1}`
  const top = fileSchema.safeParse(parsed.data)
  if (!top.success) {
    const issue = top.error.issues[0]
    const field = issue.path.join('.')
    const hint = issue.code === 'unrecognized_keys' ? didYouMean(String(issue.keys[0]), ['servers', 'defaults']) : undefined
    throw configError(`invalid servers file${field ? ` at '${field}'` : ''}: ${issue.message}`, {
      location: at(issue.code === 'unrecognized_keys' ? [String(issue.keys[0])] : issue.path.map(String)),
      hint: hint ?? (field ? undefined : "the file holds 'servers:' (a list) and optionally 'defaults:'"),
    })
  }
  const fileDefaults = top.data.defaults ?? {}
  const configDefaults = defaultsSchema.safeParse(options.configDefaults)
  const baseDefaults = configDefaults.success ? configDefaults.data : {}
  const infra = basename(dirname(file)) && basename(dirname(dirname(file))) === 'infra' ? basename(dirname(file)) : null
  const specs: ServerSpec[] = []
  const seen = new Map<string, number>()
  const addresses = new Map<string, string>()
  top.data.servers.forEach((raw, index) => {
    const result = entrySchema.safeParse(raw)
    if (!result.success) {
      const issue = result.error.issues[0]
      const keys = issue.code === 'unrecognized_keys' ? issue.keys.map(String) : []
      const path = ['servers', index, ...(keys.length ? [keys[0]] : issue.path.map(String))]
      const field = keys.length ? keys[0] : issue.path.join('.')
      const hint = keys.length ? didYouMean(keys[0], Object.keys(entrySchema.shape)) : undefined
      throw configError(`invalid server ${index + 1}${field ? ` field '${field}'` : ''}: ${keys.length ? 'unknown field' : issue.message}`, {
        location: at(path),
        hint,
      })
    }
    const entry = result.data
    const name = entry.name
    if (seen.has(name)) {
      throw configError(`duplicate server name '${name}' (first at line ${seen.get(name)})`, {
        location: at(['servers', index, 'name']),
        hint: 'server names are unique in a workspace',
      })
    }
    seen.set(name, lineOf(parsed.lines, ['servers', index, 'name']) ?? 0)
    const merged = { ...baseDefaults, ...fileDefaults, ...entry }
    if (entry.provision && entry.butane) {
      throw configError(`server '${name}' has both provision: and butane:`, {
        location: at(['servers', index, 'butane']),
        hint: 'describe its first boot one way',
      })
    }
    const provision = entry.butane ? undefined : mergeProvision(mergeProvision(baseDefaults.provision, fileDefaults.provision), entry.provision)
    const provider = merged.provider ?? options.defaultProvider
    if (!options.knownProviders.includes(provider)) {
      throw configError(`unknown provider '${provider}' for server '${name}'`, {
        location: at(['servers', index, entry.provider ? 'provider' : 'name']),
        hint: didYouMean(provider, options.knownProviders) ?? `providers: ${options.knownProviders.join(', ')}`,
      })
    }
    if (merged.address) {
      const key = `${provider === 'local' ? 'local' : 'net'}:${merged.address}:${merged.ssh?.port ?? options.defaultSshPort}`
      const other = addresses.get(key)
      if (other) {
        throw configError(`address ${merged.address} of server '${name}' collides with server '${other}'`, { location: at(['servers', index, 'address']) })
      }
      addresses.set(key, name)
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
      ssh: { user: merged.ssh?.user ?? options.defaultSshUser, port: merged.ssh?.port ?? options.defaultSshPort },
      address: merged.address ?? null,
      options: merged.options ?? {},
      ...(provision ? { provision } : {}),
      ...(merged.butane && !entry.provision ? { butane: merged.butane } : {}),
    })
  })
  return { file, infra, servers: specs }
}

/** Line of server `name` in the file (for provider validation messages). */
export function specLocation(desired: DesiredState, name: string, workspacePath?: string): string {
  const shown = workspacePath && desired.file.startsWith(workspacePath) ? relative(workspacePath, desired.file) : desired.file
  const text = readFileSync(desired.file, 'utf8').split('\n')
  const index = text.findIndex((line) => new RegExp(`name:\\s*['"]?${name}['"]?\\s*$`).test(line))
  return `${shown}:${index >= 0 ? index + 1 : 1}`
}
