import { existsSync, lstatSync, mkdirSync, readdirSync, readFileSync, statSync, writeFileSync } from 'node:fs'
import { join, resolve } from 'node:path'
import { containedPath, defineProvCommand, notFoundError, resolveWorkspace, templatesDir, usageError } from '@prov/core'

function scaffold(from: string, to: string, vars: Record<string, string>): string[] {
  mkdirSync(to, { recursive: true })
  const written: string[] = []
  for (const entry of readdirSync(from).sort()) {
    const source = join(from, entry)
    const target = join(to, entry)
    if (statSync(source).isDirectory()) written.push(...scaffold(source, target, vars))
    else {
      const text = readFileSync(source, 'utf8').replace(/\{\{\s*template\.(\w+)\s*\}\}/g, (m, k: string) => vars[k] ?? m)
      // 'wx': never write through something that appeared in the new folder meanwhile.
      writeFileSync(target, text, { mode: statSync(source).mode, flag: 'wx' })
      written.push(target)
    }
  }
  return written
}

function exists(path: string): boolean {
  try {
    lstatSync(path)
    return true
  } catch {
    return false
  }
}

export default defineProvCommand({
  meta: {
    name: 'generate',
    description: 'Scaffold a new taskserv from templates/extensions/taskserv (into the workspace, or --path)',
    examples: ['prov-taskserv generate my-svc', 'prov-taskserv generate my-svc --path ./extensions/taskservs'],
    mutating: true,
  },
  args: {
    name: { type: 'positional', description: 'Taskserv name', required: true },
    path: { type: 'string', description: 'Parent folder (default: <workspace>/extensions/taskservs)' },
  },
  run(ctx) {
    const name = String(ctx.args.name)
    if (!/^[a-z0-9][a-z0-9_.-]*$/.test(name)) throw usageError(`invalid taskserv name '${name}'`, { hint: 'lower-case letters, digits, dot, dash, underscore' })
    const workspace = resolveWorkspace(ctx.common.workspace)
    const parent = ctx.args.path ? resolve(String(ctx.args.path)) : workspace ? join(workspace.paths.extensions, 'taskservs') : undefined
    if (!parent) throw usageError('no workspace to put the taskserv in', { hint: 'run in a workspace or pass --path' })
    // The new folder stays inside its parent even when a symlink of that name points elsewhere.
    const target = containedPath(parent, name, { what: parent })
    if (exists(target)) throw usageError(`${target} already exists`, { location: target, hint: 'choose another name or remove it first' })
    const template = join(templatesDir(), 'extensions', 'taskserv')
    if (!existsSync(template)) throw notFoundError('no taskserv template', { location: template })
    const files = ctx.common.check ? [] : scaffold(template, target, { name, kind: 'taskserv' })
    if (!ctx.common.check) ctx.log.success(`taskserv '${name}' created at ${target}; see docs/taskserv-authoring.md`)
    ctx.emit({ schema: 'prov.extension/v1', name, kind: 'taskserv', version: '0.1.0', path: target, created: !ctx.common.check, files })
    return 0
  },
})
