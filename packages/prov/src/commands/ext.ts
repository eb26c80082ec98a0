import { existsSync, mkdirSync, readdirSync, readFileSync, statSync, writeFileSync } from 'node:fs'
import { join, resolve } from 'node:path'
import {
  type CommandDef,
  defineProvCommand,
  discoverExtensions,
  type Extension,
  type ExtensionKind,
  extensionKinds,
  findExtension,
  notFoundError,
  resolveWorkspace,
  templatesDir,
  usageError,
} from '@prov/core'

function parseKind(kind: string | undefined): ExtensionKind | undefined {
  if (kind === undefined) return undefined
  const normal = kind.replace(/s$/, '') as ExtensionKind
  if (!extensionKinds.includes(normal)) throw usageError(`unknown extension kind '${kind}'`, { hint: `use ${extensionKinds.join(', ')}` })
  return normal
}

function record(ext: Extension, shadowed = false) {
  const m = ext.manifest
  return {
    schema: 'prov.extension/v1',
    name: m.name,
    kind: m.kind,
    version: m.version,
    layer: ext.layer,
    description: m.description,
    requires: m.requires,
    ...(shadowed ? { shadowed: true } : {}),
    path: ext.dir,
  }
}

const list = defineProvCommand({
  meta: {
    name: 'list',
    description: 'Extensions across the layers (infra, workspace, registry, bundled)',
    examples: ['prov ext list', 'prov ext list --kind taskserv --all'],
    mutating: false,
    uses: ['infra'],
  },
  args: {
    kind: { type: 'enum', options: [...extensionKinds], description: 'Only this kind (default: all)' },
    all: { type: 'boolean', description: 'Also show extensions shadowed by a higher layer' },
  },
  run({ args, common, emit }) {
    const kind = parseKind(args.kind)
    const workspace = resolveWorkspace(common.workspace)
    const rows = (kind ? [kind] : [...extensionKinds]).flatMap((k) => {
      const winners = discoverExtensions(k, { workspacePath: workspace?.path, infra: common.infra })
      if (!args.all) return winners.map((e) => record(e))
      const every = discoverExtensions(k, { workspacePath: workspace?.path, infra: common.infra, all: true })
      return every.map((e) => record(e, !winners.includes(e) && winners.some((w) => w.manifest.name === e.manifest.name && w.dir !== e.dir)))
    })
    emit(rows)
  },
})

const info = defineProvCommand({
  meta: {
    name: 'info',
    description: 'Manifest and files of one extension',
    examples: ['prov ext info redis', 'prov ext info local --kind provider'],
    mutating: false,
    uses: ['infra'],
  },
  args: {
    name: { type: 'positional', description: 'Extension name', required: true },
    kind: { type: 'enum', options: [...extensionKinds], description: 'Only this kind (default: search all)' },
  },
  run({ args, common, emit }) {
    const workspace = resolveWorkspace(common.workspace)
    const options = { workspacePath: workspace?.path, infra: common.infra }
    const kinds = parseKind(args.kind) ? [parseKind(args.kind) as ExtensionKind] : [...extensionKinds]
    for (const kind of kinds) {
      const hit = discoverExtensions(kind, options).find((e) => e.manifest.name === args.name)
      if (hit) {
        emit({ ...record(hit), manifest: hit.manifest, files: readdirSync(hit.dir).sort() })
        return
      }
    }
    // Produces the "unknown ... did you mean" error for the most likely kind.
    findExtension(kinds[0] === 'provider' && kinds.length > 1 ? 'taskserv' : kinds[0], args.name, options)
  },
})

function scaffold(templateDir: string, target: string, vars: Record<string, string>) {
  mkdirSync(target, { recursive: true })
  for (const entry of readdirSync(templateDir)) {
    const from = join(templateDir, entry)
    const to = join(target, entry)
    if (statSync(from).isDirectory()) scaffold(from, to, vars)
    else {
      const text = readFileSync(from, 'utf8').replace(/\{\{\s*template\.(\w+)\s*\}\}/g, (m, k: string) => vars[k] ?? m)
      writeFileSync(to, text, { mode: statSync(from).mode })
    }
  }
}

const create = defineProvCommand({
  meta: {
    name: 'new',
    description: 'Scaffold a new extension from templates (into the workspace, or --path)',
    examples: ['prov ext new taskserv my-svc', 'prov ext new provider my-cloud --path ./extensions'],
    mutating: true,
  },
  args: {
    kind: { type: 'positional', description: 'provider|taskserv|cluster', required: true },
    name: { type: 'positional', description: 'Extension name', required: true },
    path: { type: 'string', description: 'Parent folder (default: <workspace>/extensions/<kind>s)' },
  },
  run({ args, common, emit, log }) {
    const kind = parseKind(args.kind) as ExtensionKind
    if (!/^[a-z0-9][a-z0-9_.-]*$/.test(args.name))
      throw usageError(`invalid extension name '${args.name}'`, { hint: 'lower-case letters, digits, dot, dash, underscore' })
    const workspace = resolveWorkspace(common.workspace)
    const parent = args.path ? resolve(args.path) : workspace ? join(workspace.paths.extensions, `${kind}s`) : undefined
    if (!parent) throw usageError('no workspace to put the extension in', { hint: 'run in a workspace or pass --path' })
    const target = join(parent, args.name)
    if (existsSync(target)) throw usageError(`${target} already exists`)
    const template = join(templatesDir(), 'extensions', kind)
    if (!existsSync(template)) throw notFoundError(`no template for ${kind}`, { location: template })
    if (!common.check) {
      scaffold(template, target, { name: args.name, kind })
      log.success(`${kind} '${args.name}' created at ${target}`)
    }
    emit({
      schema: 'prov.extension/v1',
      name: args.name,
      kind,
      version: '0.1.0',
      layer: args.path ? 'path' : 'workspace',
      path: target,
      created: !common.check,
    })
  },
})

export default {
  meta: { name: 'ext', description: 'List, inspect and scaffold extensions (providers, taskservs, clusters)' },
  subCommands: { list, info, new: create },
} satisfies CommandDef
