import { spawnSync } from 'node:child_process'
import { join } from 'node:path'
import { commonArgs, outputFormats, type ProvCommandMeta, renderHelp } from '@prov/core'
import type { ArgsDef, CommandDef } from 'citty'
import { describe, expect, it } from 'vitest'
import { repoRoot } from '../../../tests/helpers/cli'
import { signatureOf } from '../src/signatures'
import { allSpecs, binaries, type CommandSpec, commandSpecs, examplesGiveWords, loadTree } from '../src/spec'

type Resolvable<T> = T | Promise<T> | (() => T | Promise<T>)
const resolve = async <T>(value: Resolvable<T>): Promise<T> => (typeof value === 'function' ? await (value as () => T)() : await value)

/** Every leaf command of a tree, walked independently of the plugin's own walker. */
async function leaves(prefix: string[], command: CommandDef<any>): Promise<{ path: string[]; args: ArgsDef }[]> {
  const subs = ((await resolve(command.subCommands as Resolvable<Record<string, Resolvable<CommandDef<any>>> | undefined>)) ?? {}) as Record<
    string,
    Resolvable<CommandDef<any>>
  >
  const meta = (await resolve(command.meta as Resolvable<{ hidden?: boolean } | undefined>)) ?? {}
  if (meta.hidden) return []
  if (command.run) return [{ path: prefix, args: ((await resolve(command.args as Resolvable<ArgsDef | undefined>)) ?? {}) as ArgsDef }]
  const found: { path: string[]; args: ArgsDef }[] = []
  for (const [word, sub] of Object.entries(subs)) found.push(...(await leaves([...prefix, word], await resolve(sub))))
  return found
}

describe('commands generated from the command trees', () => {
  it('has one plugin command per leaf command of every binary, with every flag of its definition', async () => {
    const specs = await allSpecs()
    const byName = new Map<string, CommandSpec>(specs.map((s) => [s.name, s]))
    let checked = 0
    for (const binary of binaries) {
      for (const leaf of await leaves([], await loadTree(binary))) {
        const name = ['prov', ...(binary.word ? [binary.word] : []), ...leaf.path].join(' ')
        const spec = byName.get(name)
        expect(spec, name).toBeDefined()
        const named = (signatureOf(spec!).sig as { named: { long: string; short: string | null }[] }).named
        for (const [flag, arg] of Object.entries(leaf.args)) {
          // The common flags: only those its help shows (the next test).
          if (arg.type === 'positional' || Object.hasOwn(commonArgs, flag)) continue
          const long = arg.type === 'boolean' && arg.default === true ? `no-${flag}` : flag
          expect(
            named.map((n) => n.long),
            `${name} --${long}`,
          ).toContain(long)
          const short = ('alias' in arg && arg.alias ? [arg.alias].flat() : []).find((a) => a.length === 1)
          if (short && flag !== 'help') expect(named.find((n) => n.long === long)?.short, `${name} -${short}`).toBe(short)
        }
        checked++
      }
    }
    expect(checked).toBeGreaterThan(80)
  })

  it('carries exactly the flags the command help shows, with defaults and choices', async () => {
    const specs = await allSpecs()
    const byName = new Map<string, CommandSpec>(specs.map((s) => [s.name, s]))
    let checked = 0
    for (const binary of binaries) {
      const walk = async (path: string[], command: CommandDef<any>): Promise<void> => {
        const meta = ((await resolve(command.meta as Resolvable<ProvCommandMeta | undefined>)) ?? {}) as ProvCommandMeta
        if (meta.hidden) return
        const subs = ((await resolve(command.subCommands as Resolvable<Record<string, Resolvable<CommandDef<any>>> | undefined>)) ?? {}) as Record<
          string,
          Resolvable<CommandDef<any>>
        >
        if (!command.run) {
          for (const [word, sub] of Object.entries(subs)) await walk([...path, word], await resolve(sub))
          return
        }
        const args = ((await resolve(command.args as Resolvable<ArgsDef | undefined>)) ?? {}) as ArgsDef
        const help = renderHelp({ program: binary.program, path, command }, meta, args)
        // The first long name of every option line (`  -o, --out, --output <…>  …`).
        const shown = [...help.matchAll(/^ {2}(?:-\w, )?--([\w-]+)/gm)].map((m) => {
          const arg = args[m[1]]
          return arg?.type === 'boolean' && arg.default === true ? `no-${m[1]}` : m[1]
        })
        const name = ['prov', ...(binary.word ? [binary.word] : []), ...path].join(' ')
        const spec = byName.get(name)!
        const named = (signatureOf(spec).sig as { named: { long: string; default_value: unknown; completion: unknown }[] }).named
        expect(
          named
            .map((n) => n.long)
            .filter((long) => long !== 'help' && long !== 'command')
            .sort(),
          name,
        ).toEqual([...new Set(shown)].sort())
        for (const [flag, arg] of Object.entries(args)) {
          const entry = named.find((n) => n.long === flag)
          if (!entry) continue
          if (arg.type === 'enum' && arg.options?.length) expect(entry.completion, `${name} --${flag}`).toEqual({ List: arg.options })
          if (arg.type === 'string' && arg.default !== undefined) expect(entry.default_value, `${name} --${flag}`).not.toBeNull()
        }
        checked++
      }
      await walk([], await loadTree(binary))
    }
    expect(checked).toBeGreaterThan(80)
    const list = signatureOf(byName.get('prov server list')!).sig as { named: { long: string; completion: unknown }[] }
    expect(list.named.find((n) => n.long === 'status')?.completion).toEqual({ List: ['running', 'stopped', 'creating', 'error', 'unknown'] })
    expect(list.named.map((n) => n.long)).not.toContain('wait')
  })

  it('the command index the build wrote is what the trees say', async () => {
    expect(await commandSpecs()).toEqual(await allSpecs())
  })

  it('docs/nushell.md lists every command', () => {
    const r = spawnSync(process.execPath, [join(repoRoot, 'scripts/gen-command-index.mjs'), '--check'], { encoding: 'utf8' })
    expect(r.status, r.stderr).toBe(0)
  })

  it('marks repeatable flags as taking lists and describes the plugin-only meaning of --out', async () => {
    const specs = await allSpecs()
    const set = signatureOf(specs.find((s) => s.name === 'prov config show')!).sig as { named: Record<string, unknown>[] }
    expect(set.named.find((n) => n.long === 'set')?.arg).toEqual({ OneOf: [{ List: 'String' }, 'String'] })
    const out = set.named.find((n) => n.long === 'out')
    expect(out?.desc).toMatch(/ndjson: stream records/)
    expect(out?.completion).toEqual({ List: [...outputFormats] })
  })
})

describe('positional words of a command that declares none', () => {
  const args: ArgsDef = {
    store: { type: 'string', description: 'store URL' },
    status: { type: 'string', alias: ['s'], description: 'only this status' },
    yes: { type: 'boolean', description: 'do not ask' },
  }
  const heads = [
    ['prov-orch', 'cancel'],
    ['prov', 'orch', 'cancel'],
  ]
  it('are taken when an example gives the command a word that is no option value', () => {
    expect(examplesGiveWords(args, ['prov-orch cancel 01J9Z --yes'], heads)).toBe(true)
    expect(examplesGiveWords(args, ['prov orch cancel --store=x 01J9Z'], heads)).toBe(true)
  })
  it('are not taken when every word is an option or its value, after --, or in another command of a pipe', () => {
    expect(examplesGiveWords(args, ['prov-orch cancel --status running -s failed --yes'], heads)).toBe(false)
    expect(examplesGiveWords(args, ['prov-orch cancel --store sqlite:x -- extra', 'prov-orch list | prov-orch cancel --yes'], heads)).toBe(false)
    expect(examplesGiveWords(args, ['prov-orch cancel --yes > out.json', 'prov-orch status 01J9Z'], heads)).toBe(false)
  })
})
