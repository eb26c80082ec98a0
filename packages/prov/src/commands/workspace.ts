import { existsSync, readdirSync } from 'node:fs'
import { join } from 'node:path'
import {
  type CommandDef,
  defineProvCommand,
  discoverExtensions,
  extensionKinds,
  initWorkspace,
  lookupWorkspace,
  notFoundError,
  previewWorkspaceRemoval,
  readRegistry,
  removeWorkspace,
  requireWorkspace,
  resolveWorkspace,
  usageError,
  useWorkspace,
  type Workspace,
  workspaceTemplates,
} from '@prov/core'

const SCHEMA = 'prov.workspace/v1'

function describe(workspace: Workspace, active?: string) {
  return { schema: SCHEMA, name: workspace.name, path: workspace.path, active: workspace.name === active, via: workspace.via }
}

const init = defineProvCommand({
  meta: {
    name: 'init',
    description: 'Create a workspace from a template, register and activate it',
    examples: ['prov workspace init demo', 'prov workspace init lab --template full --path ~/lab --no-activate'],
    mutating: true,
  },
  args: {
    name: { type: 'positional', description: 'Workspace name', required: true },
    template: { type: 'enum', options: workspaceTemplates(), description: 'Workspace template', default: 'minimal' },
    path: { type: 'string', description: 'Folder to create (default ./NAME)' },
    activate: {
      type: 'boolean',
      default: true,
      description: 'Make it the active workspace',
      negativeDescription: 'Register without making it the active workspace',
    },
  },
  async run({ args, emit, log, common }) {
    if (common.check) {
      emit({ schema: SCHEMA, name: args.name, path: args.path ?? `./${args.name}`, template: args.template, planned: true })
      return
    }
    const workspace = await initWorkspace({ name: args.name, path: args.path, template: args.template, activate: args.activate !== false })
    log.success(`workspace '${workspace.name}' created at ${workspace.path}`)
    emit({ ...describe(workspace, args.activate === false ? undefined : workspace.name), template: args.template })
  },
})

const list = defineProvCommand({
  meta: { name: 'list', description: 'List registered workspaces', examples: ['prov workspace list', 'prov workspace list --out ndjson'], mutating: false },
  run({ emit }) {
    const registry = readRegistry()
    emit(
      registry.workspaces.map((w) => ({
        schema: SCHEMA,
        name: w.name,
        path: w.path,
        active: w.name === registry.active,
        exists: existsSync(w.path),
        created: w.created,
      })),
    )
  },
})

const use = defineProvCommand({
  meta: { name: 'use', description: 'Make a workspace the active one', examples: ['prov workspace use demo', 'prov workspace use ./lab'], mutating: true },
  args: { name: { type: 'positional', description: 'Workspace name (or path)', required: true } },
  async run({ args, emit, log }) {
    const entry = await useWorkspace(args.name)
    log.success(`active workspace: ${entry.name}`)
    emit({ schema: SCHEMA, name: entry.name, path: entry.path, active: true })
  },
})

const current = defineProvCommand({
  meta: {
    name: 'current',
    description: 'Show the workspace commands here would use',
    examples: ['prov workspace current', 'prov workspace current --out json'],
    mutating: false,
  },
  run({ emit, common }) {
    const workspace = resolveWorkspace(common.workspace)
    if (!workspace) throw notFoundError('no current workspace', { hint: 'prov workspace init NAME or prov workspace use NAME' })
    emit(describe(workspace, readRegistry().active))
  },
})

function listDir(dir: string): string[] {
  return existsSync(dir)
    ? readdirSync(dir, { withFileTypes: true })
        .filter((e) => e.isDirectory())
        .map((e) => e.name)
        .sort()
    : []
}

const info = defineProvCommand({
  meta: {
    name: 'info',
    description: 'Details of a workspace: paths, infrastructures, extensions',
    examples: ['prov workspace info', 'prov workspace info demo'],
    mutating: false,
  },
  args: { name: { type: 'positional', description: 'Workspace (default: current)', required: false } },
  run({ args, emit, common }) {
    const workspace = args.name ? lookupWorkspace(args.name) : requireWorkspace(common.workspace)
    const config = ['prov.config.yaml', 'prov.config.yml', 'prov.config.toml', 'prov.config.json', 'prov.config.ts', 'prov.config.js'].find((f) =>
      existsSync(join(workspace.path, f)),
    )
    const extensions = Object.fromEntries(
      extensionKinds.map((kind) => [
        `${kind}s`,
        discoverExtensions(kind, { workspacePath: workspace.path })
          .filter((e) => e.layer !== 'bundled')
          .map((e) => e.manifest.name),
      ]),
    )
    emit({
      ...describe(workspace, readRegistry().active),
      config_file: config ? join(workspace.path, config) : null,
      infras: listDir(workspace.paths.infra),
      environments: existsSync(workspace.paths.config)
        ? readdirSync(workspace.paths.config)
            .map((f) => f.replace(/\.[^.]+$/, ''))
            .sort()
        : [],
      extensions,
      state_dir: workspace.paths.state,
    })
  },
})

const remove = defineProvCommand({
  meta: {
    name: 'remove',
    description: 'Forget a workspace (--delete-files also removes its folder)',
    examples: ['prov workspace remove old-lab', 'prov workspace remove old-lab --delete-files --yes'],
    mutating: true,
    destructive: true,
  },
  args: {
    name: { type: 'positional', description: 'Workspace name', required: true },
    'delete-files': { type: 'boolean', description: 'Also delete the workspace folder' },
  },
  async run({ args, emit, common, log }) {
    const deleteFiles = Boolean(args['delete-files'])
    // --check previews (with the refusals the real run would meet); only the real run needs --yes.
    if (deleteFiles && !common.yes && !common.check) throw usageError('refusing to delete files without --yes', { hint: 'add --yes' })
    const entry = common.check ? previewWorkspaceRemoval(args.name, deleteFiles) : await removeWorkspace(args.name, deleteFiles)
    if (!common.check) log.success(`workspace '${entry.name}' removed${deleteFiles ? ' with its files' : ''}`)
    emit({
      schema: SCHEMA,
      name: entry.name,
      path: entry.path,
      removed: !common.check,
      deleted_files: deleteFiles && !common.check,
      ...(common.check ? { planned: true } : {}),
    })
  },
})

export default {
  meta: { name: 'workspace', description: 'Create, list, select and remove workspaces' },
  subCommands: { init, list, use, current, info, remove },
} satisfies CommandDef
