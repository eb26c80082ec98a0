import { chmodSync, cpSync, existsSync, lstatSync, mkdirSync, readdirSync, readFileSync, statSync, writeFileSync } from 'node:fs'
import { homedir } from 'node:os'
import { basename, dirname, isAbsolute, join, resolve } from 'node:path'
import { configError, deniedError, ExitCode, failedError, isProvError, notFoundError, usageError } from './errors'
import { yamlLib } from './lazy'
import { formatBytes, MAX_CONFIG_FILE_BYTES } from './limits'
import { templatesDir, userConfigDir, type WorkspacePaths, workspacePaths } from './paths'
import { withLock, writeFileAtomic } from './state'
import { didYouMean } from './suggest'
import { removeContained } from './util/contain'
import { assertSafeStructure, assertYamlDepth, isStackOverflow, tooDeepError } from './util/structure'

export interface WorkspaceEntry {
  name: string
  path: string
  created: string
}

export interface WorkspaceRegistry {
  active?: string
  workspaces: WorkspaceEntry[]
}

export interface Workspace {
  name: string
  path: string
  paths: WorkspacePaths
  /** How it was found: flag, env, cwd (a prov.config.* above the cwd), active (registry). */
  via: 'flag' | 'env' | 'cwd' | 'active'
}

const workspaceConfigNames = [
  'prov.config.yaml',
  'prov.config.yml',
  'prov.config.toml',
  'prov.config.json',
  'prov.config.ts',
  'prov.config.js',
  'prov.config.mjs',
]
const namePattern = /^[A-Za-z0-9][A-Za-z0-9_.-]{0,62}$/

/** A name `prov workspace init` accepts: letters, digits, `_ . -`, starting with a letter or digit, at most 63. */
export const isWorkspaceName = (name: unknown): name is string => typeof name === 'string' && namePattern.test(name)

export const registryPath = () => join(userConfigDir(), 'workspaces.yaml')

export function readRegistry(): WorkspaceRegistry {
  const file = registryPath()
  if (!existsSync(file)) return { workspaces: [] }
  if (statSync(file).size > MAX_CONFIG_FILE_BYTES)
    throw configError(`workspace registry is larger than ${formatBytes(MAX_CONFIG_FILE_BYTES)}`, { location: file })
  let data: unknown
  try {
    const text = readFileSync(file, 'utf8')
    assertYamlDepth(text, file)
    const doc = yamlLib().parseDocument(text, { uniqueKeys: true })
    if (doc.errors[0]) throw doc.errors[0]
    data = doc.toJS({ maxAliasCount: 100 })
  } catch (error) {
    if (isProvError(error)) throw error
    if (isStackOverflow(error)) throw tooDeepError(file)
    throw configError(`workspace registry is not valid YAML: ${(error as Error).message.split('\n')[0]}`, { location: file })
  }
  assertSafeStructure(data, { source: file, keyCode: ExitCode.CONFIG })
  const registry = (data ?? {}) as Partial<WorkspaceRegistry>
  const workspaces = Array.isArray(registry.workspaces) ? registry.workspaces : []
  workspaces.forEach((entry, index) => {
    if (!entry || typeof entry !== 'object' || typeof entry.name !== 'string' || typeof entry.path !== 'string' || !isAbsolute(entry.path)) {
      throw configError(`workspace registry entry ${index + 1} needs a name and an absolute path`, {
        location: `${file}: workspaces[${index}]`,
        hint: 'fix or remove the entry; prov workspace init and use write it',
      })
    }
  })
  return { active: typeof registry.active === 'string' ? registry.active : undefined, workspaces }
}

/** Read-modify-write of the registry under its lock. */
export async function updateRegistry(update: (registry: WorkspaceRegistry) => WorkspaceRegistry | void): Promise<WorkspaceRegistry> {
  const file = registryPath()
  return withLock(file, () => {
    const registry = readRegistry()
    const next = update(registry) ?? registry
    writeFileAtomic(file, yamlLib().stringify(next))
    return next
  })
}

/**
 * Whether the registry could hold an entry named `name`, judged from its text without parsing it.
 * A name of plain characters (no quote, escape or blank that YAML could fold or unescape into it)
 * is spelled out wherever it is a value; when it only ever stands as the whole value of a
 * `path:` line, no entry can be named so. True whenever unsure.
 */
export function registryMayName(name: string): boolean {
  if (!/^[A-Za-z0-9_./-]+$/.test(name)) return true
  let text: string
  try {
    const file = registryPath()
    if (!existsSync(file)) return false
    if (statSync(file).size > MAX_CONFIG_FILE_BYTES) return true
    text = readFileSync(file, 'utf8')
  } catch {
    return true
  }
  if (text.includes('\\')) return true
  const escaped = name.replace(/[.\\/-]/g, '\\$&')
  const pathLine = new RegExp(`^[ \\t]*(?:-[ \\t]+)?path:[ \\t]+(['"]?)${escaped}\\1[ \\t]*$`)
  return text.split(/\r?\n|\r/).some((line) => line.includes(name) && !pathLine.test(line))
}

export function isWorkspaceDir(dir: string): boolean {
  return workspaceConfigNames.some((name) => existsSync(join(dir, name)))
}

function findUpWorkspace(start: string): string | undefined {
  let dir = resolve(start)
  for (;;) {
    if (isWorkspaceDir(dir)) return dir
    const parent = dirname(dir)
    if (parent === dir) return undefined
    dir = parent
  }
}

function workspaceName(dir: string): string {
  const entry = readRegistry().workspaces.find((w) => resolve(w.path) === resolve(dir))
  return entry?.name ?? basename(dir)
}

function toWorkspace(path: string, via: Workspace['via'], name?: string): Workspace {
  let cachedName = name
  return {
    // The registry is read only when a command asks for the name (cold start of commands that do not).
    get name() {
      cachedName ??= workspaceName(path)
      return cachedName
    },
    path,
    paths: workspacePaths(path),
    via,
  }
}

/** Looks a workspace up by registered name or by path; unknown ones are exit 5 with the nearest names. */
export function lookupWorkspace(nameOrPath: string, via: Workspace['via'] = 'flag', registry: WorkspaceRegistry = readRegistry()): Workspace {
  const entry = registry.workspaces.find((w) => w.name === nameOrPath)
  if (entry) {
    if (!existsSync(entry.path))
      throw notFoundError(`workspace '${entry.name}' is registered at ${entry.path}, which no longer exists`, { hint: `prov workspace remove ${entry.name}` })
    return toWorkspace(entry.path, via, entry.name)
  }
  const looksLikePath = nameOrPath.includes('/') || nameOrPath === '.' || nameOrPath === '..'
  if (looksLikePath || existsSync(nameOrPath)) {
    const path = resolve(nameOrPath)
    if (isWorkspaceDir(path)) return toWorkspace(path, via)
    if (looksLikePath) throw notFoundError(`no workspace at ${path} (no prov.config.* there)`, { hint: 'create one with prov workspace init NAME --path DIR' })
  }
  throw notFoundError(`unknown workspace '${nameOrPath}'`, {
    hint:
      didYouMean(
        nameOrPath,
        registry.workspaces.map((w) => w.name),
      ) ?? 'prov workspace list shows the registered ones',
  })
}

/**
 * Finds the workspace for a command: --workspace, then $PROV_WORKSPACE, then a prov.config.*
 * in the current folder or above, then the active one in the registry. Undefined if none.
 */
export function resolveWorkspace(flag?: string, cwd = process.cwd()): Workspace | undefined {
  if (flag) return lookupWorkspace(flag, 'flag')
  if (process.env.PROV_WORKSPACE) return lookupWorkspace(process.env.PROV_WORKSPACE, 'env')
  const found = findUpWorkspace(cwd)
  if (found) return toWorkspace(found, 'cwd')
  const registry = readRegistry()
  if (registry.active) {
    const entry = registry.workspaces.find((w) => w.name === registry.active)
    if (entry && existsSync(entry.path)) return toWorkspace(entry.path, 'active', entry.name)
  }
  return undefined
}

/** Like resolveWorkspace, but a missing workspace is a usage error. */
export function requireWorkspace(flag?: string, cwd = process.cwd()): Workspace {
  const workspace = resolveWorkspace(flag, cwd)
  if (!workspace) {
    throw usageError('no workspace: run inside one, pass --workspace, or activate one', {
      hint: 'prov workspace init NAME creates one',
    })
  }
  return workspace
}

export const workspaceTemplates = () =>
  existsSync(join(templatesDir(), 'workspace'))
    ? readdirSync(join(templatesDir(), 'workspace')).filter((n) => statSync(join(templatesDir(), 'workspace', n)).isDirectory())
    : []

function renderTemplateTree(dir: string, vars: Record<string, string>) {
  for (const entry of readdirSync(dir, { withFileTypes: true })) {
    const path = join(dir, entry.name)
    if (entry.isDirectory()) renderTemplateTree(path, vars)
    else if (/\.(ya?ml|toml|json|md|ts|sh|txt)$/.test(entry.name) || entry.name === '.gitignore') {
      const text = readFileSync(path, 'utf8')
      const rendered = text.replace(/\{\{\s*template\.(\w+)\s*\}\}/g, (m, key: string) => vars[key] ?? m)
      if (rendered !== text) writeFileSync(path, rendered)
    }
  }
}

export interface InitOptions {
  name: string
  /** Target folder (default ./<name>). */
  path?: string
  template?: string
  /** Make it the active workspace (default true). */
  activate?: boolean
}

/** Creates a workspace from a template, registers it and (by default) activates it. */
export async function initWorkspace(options: InitOptions): Promise<Workspace> {
  if (!namePattern.test(options.name)) {
    throw usageError(`invalid workspace name '${options.name}'`, { hint: 'letters, digits, dot, dash and underscore; starting with a letter or digit' })
  }
  const template = options.template ?? 'minimal'
  const templates = workspaceTemplates()
  if (!templates.includes(template)) {
    throw notFoundError(`unknown workspace template '${template}'`, { hint: didYouMean(template, templates) ?? `templates: ${templates.join(', ')}` })
  }
  const path = resolve(options.path ?? options.name)
  const registry = readRegistry()
  const clash = registry.workspaces.find((w) => w.name === options.name)
  if (clash && resolve(clash.path) !== path && existsSync(clash.path)) {
    throw usageError(`a workspace named '${options.name}' already exists at ${clash.path}`, {
      hint: `choose another name or prov workspace remove ${options.name}`,
    })
  }
  if (existsSync(path) && (isWorkspaceDir(path) || readdirSync(path).length)) {
    throw usageError(`${path} already exists and is not empty`, { hint: 'choose another --path' })
  }
  mkdirSync(path, { recursive: true })
  cpSync(join(templatesDir(), 'workspace', template), path, { recursive: true })
  renderTemplateTree(path, { name: options.name, path })
  const paths = workspacePaths(path)
  for (const dir of [
    paths.state,
    paths.infra,
    paths.config,
    paths.secrets,
    join(paths.extensions, 'providers'),
    join(paths.extensions, 'taskservs'),
    join(paths.extensions, 'clusters'),
  ]) {
    mkdirSync(dir, { recursive: true })
  }
  // Encrypted values only, but their names and the store's layout are nobody else's business.
  chmodSync(paths.secrets, 0o700)
  await updateRegistry((reg) => {
    reg.workspaces = reg.workspaces.filter((w) => w.name !== options.name)
    reg.workspaces.push({ name: options.name, path, created: new Date().toISOString() })
    if (options.activate !== false) reg.active = options.name
  })
  return toWorkspace(path, 'flag', options.name)
}

/**
 * Refuses to delete a registered folder that is not (or no longer) a workspace: the registry is
 * plain data anyone with the user's rights can edit, and the folder may have been replaced since.
 * A workspace is a real directory (not a symlink) holding a `prov.config.*`, and never `/` or home.
 */
export function assertDeletableWorkspace(entry: WorkspaceEntry): string {
  const path = resolve(entry.path)
  let stat: ReturnType<typeof lstatSync>
  try {
    stat = lstatSync(path)
  } catch {
    throw notFoundError(`workspace folder ${path} does not exist`, { location: path, hint: `prov workspace remove ${entry.name} (without --delete-files)` })
  }
  const refuse = (why: string) =>
    deniedError(`refusing to delete ${path}: ${why}`, {
      location: path,
      hint: `forget it without deleting: prov workspace remove ${entry.name}`,
    })
  if (stat.isSymbolicLink()) throw refuse('it is a symlink, not a workspace folder')
  if (!stat.isDirectory()) throw refuse('it is not a directory')
  const home = resolve(homedir())
  if (path === dirname(path) || path === home) throw refuse('it is the root or home folder')
  // A prov.config.* dropped into /home or /etc must not make them deletable.
  if (`${home}/`.startsWith(`${path}/`)) throw refuse(`the home folder ${home} is inside it`)
  if (dirname(path) === '/') throw refuse('it is a top-level system folder')
  if (!isWorkspaceDir(path)) throw refuse('it is no longer a workspace (no prov.config.* in it)')
  return path
}

/** The registered workspace `name`, or exit 5 with the closest name. */
function registeredWorkspace(reg: WorkspaceRegistry, name: string): WorkspaceEntry {
  const entry = reg.workspaces.find((w) => w.name === name)
  if (!entry)
    throw notFoundError(`unknown workspace '${name}'`, {
      hint: didYouMean(
        name,
        reg.workspaces.map((w) => w.name),
      ),
    })
  return entry
}

/** What `removeWorkspace` would remove, refused for the same reasons, changing nothing. */
export function previewWorkspaceRemoval(name: string, deleteFiles = false): WorkspaceEntry {
  const entry = registeredWorkspace(readRegistry(), name)
  if (deleteFiles) assertDeletableWorkspace(entry)
  return entry
}

/** Forgets a workspace; with `deleteFiles` its folder goes first, and only while it still is a workspace. */
export async function removeWorkspace(name: string, deleteFiles = false): Promise<WorkspaceEntry> {
  // Files first: a folder that cannot be deleted whole leaves the workspace registered.
  if (deleteFiles) deleteWorkspaceFolder(registeredWorkspace(readRegistry(), name))
  let removed: WorkspaceEntry | undefined
  await updateRegistry((reg) => {
    removed = registeredWorkspace(reg, name)
    reg.workspaces = reg.workspaces.filter((w) => w.name !== name)
    if (reg.active === name) reg.active = undefined
  })
  return removed as WorkspaceEntry
}

/**
 * Deletes a workspace folder, its prov.config.* last: when something refuses half-way (a mount, an
 * immutable file, another owner) the folder is still a workspace, still registered, and the same
 * command finishes the job once the cause is gone.
 */
function deleteWorkspaceFolder(entry: WorkspaceEntry): void {
  const path = assertDeletableWorkspace(entry)
  const what = `workspace '${entry.name}'`
  try {
    const names = readdirSync(path)
    const isConfig = (file: string) => file.startsWith('prov.config.')
    for (const file of [...names.filter((n) => !isConfig(n)), ...names.filter(isConfig)]) removeContained(path, file, { what })
    removeContained(dirname(path), basename(path), { what: `the parent folder of ${what}` })
  } catch (error) {
    if (isProvError(error)) throw error
    // Node's own error: its code (EBUSY, EPERM...) when it has one; some Node versions give only a message.
    const reason = (error as NodeJS.ErrnoException).code || (error as Error).message.replace(/^[\s,]+/, '') || 'an unknown error'
    throw failedError(`could not delete all of ${path}: ${reason}`, {
      location: path,
      hint: `${what} stays registered; remove what holds the rest (a mount, an immutable file, permissions) and run the command again`,
    })
  }
}

export async function useWorkspace(name: string): Promise<WorkspaceEntry> {
  let entry: WorkspaceEntry | undefined
  await updateRegistry((reg) => {
    entry = reg.workspaces.find((w) => w.name === name)
    if (!entry) {
      // Accept a path: register it under its folder name.
      const path = resolve(name)
      if ((name.includes('/') || isAbsolute(name)) && isWorkspaceDir(path)) {
        entry = { name: basename(path), path, created: new Date().toISOString() }
        reg.workspaces.push(entry)
      } else {
        throw notFoundError(`unknown workspace '${name}'`, {
          hint:
            didYouMean(
              name,
              reg.workspaces.map((w) => w.name),
            ) ?? 'prov workspace list',
        })
      }
    }
    reg.active = entry.name
  })
  return entry as WorkspaceEntry
}
