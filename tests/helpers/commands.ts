import { join } from 'node:path'
import { pathToFileURL } from 'node:url'
import type { ArgsDef, CommandDef } from 'citty'
import type { ProvCommandMeta } from '../../packages/core/src/cli/help'
import { repoRoot } from './cli'

/** One runnable command of a binary, as the conformance suite and the docs see it. */
export interface LeafCommand {
  /** The bin/ launcher (`prov-server`). */
  bin: string
  /** Command words under the binary (`['delete']`). */
  path: string[]
  /** `prov-server delete`. */
  full: string
  meta: ProvCommandMeta
  args: ArgsDef
}

/** The binaries and where their command trees are (importable without running them). */
export const binaries = {
  prov: tree('prov'),
  'prov-server': tree('server'),
  'prov-taskserv': tree('taskserv'),
  'prov-kms': tree('kms'),
  'prov-oci': tree('oci'),
  'prov-orch': tree('orch'),
} as const

function tree(pkg: string): string {
  return pathToFileURL(join(repoRoot, 'packages', pkg, 'src', 'tree.ts')).href
}

const resolve = async <T>(value: T | (() => T | Promise<T>) | Promise<T>): Promise<T> =>
  typeof value === 'function' ? await (value as () => T)() : await value

/** Every leaf command of every binary, walking the citty trees (subcommands load lazily). */
export async function allLeafCommands(): Promise<LeafCommand[]> {
  const leaves: LeafCommand[] = []
  for (const [bin, module] of Object.entries(binaries)) {
    const { main } = (await import(module)) as { main: CommandDef<any> }
    const walk = async (cmd: CommandDef<any>, path: string[]) => {
      const subs = await resolve(cmd.subCommands)
      if (subs && !cmd.run) {
        for (const [name, sub] of Object.entries(subs)) await walk(await resolve(sub as CommandDef<any>), [...path, name])
        return
      }
      leaves.push({
        bin,
        path,
        full: [bin, ...path].join(' '),
        meta: (await resolve(cmd.meta)) as ProvCommandMeta,
        args: ((await resolve(cmd.args)) ?? {}) as ArgsDef,
      })
    }
    await walk(main, [])
  }
  return leaves
}

/**
 * The words after the command path of the leaf's first example that is one plain command line (no
 * pipe, redirection or variable), without `--yes` and `--check`; undefined when there is none.
 */
export function exampleArgs(leaf: LeafCommand): string[] | undefined {
  for (const example of leaf.meta.examples ?? []) {
    if (/[|<>$`]/.test(example)) continue
    const words = (example.match(/"[^"]*"|'[^']*'|\S+/g) ?? []).map((w) => w.replace(/^(["'])(.*)\1$/, '$2'))
    const head = [leaf.bin, ...leaf.path]
    if (words.slice(0, head.length).join(' ') !== head.join(' ')) continue
    return words.slice(head.length).filter((w) => w !== '--yes' && w !== '-y' && w !== '--check' && w !== '-c')
  }
  return undefined
}
