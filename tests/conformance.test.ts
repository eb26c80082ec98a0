import { createHash } from 'node:crypto'
import { existsSync, lstatSync, mkdirSync, readdirSync, readFileSync, readlinkSync, rmSync, writeFileSync } from 'node:fs'
import { join } from 'node:path'
import { pathToFileURL } from 'node:url'
import type { CommandDef } from 'citty'
import { afterAll, beforeAll, describe, type ExpectStatic, expect, it } from 'vitest'
import { parseAllDocuments } from 'yaml'
import { runProvMain } from '../packages/core/src/cli/main'
import { binDir, type CliResult, runCli, runOnTerminal, tempEnv, tempWorkspace } from './helpers/cli'
import { allLeafCommands, binaries, exampleArgs, type LeafCommand } from './helpers/commands'

/*
 * The JSON contract, checked mechanically for every leaf command of every binary (walked from the
 * citty trees, so a new command cannot slip through): metadata, help with examples, unknown options,
 * --out formats, --check changing nothing and starting no process, destructive commands refusing
 * without --yes off a terminal, and no .prov/ appearing outside a workspace.
 */

const leaves = await allLeafCommands()
const spy = pathToFileURL(join(import.meta.dirname, 'helpers', 'spawn-spy.mjs')).href

/**
 * Commands whose behaviour in another lane's package does not keep a rule yet, by the rule's test
 * name and the lane that fixes it. `it.fails` keeps them honest: once fixed, the entry must go.
 */
const knownFailures: Record<string, string> = {}

type Check = (expect: ExpectStatic) => Promise<void>
const ruleTest = (name: string, fn: Check, timeout = 120_000) =>
  knownFailures[name]
    ? it.fails(`${name} [known failure: lane ${knownFailures[name]}]`, ({ expect }) => fn(expect), timeout)
    : it(name, ({ expect }) => fn(expect), timeout)

type Ws = Awaited<ReturnType<typeof tempWorkspace>>
let ws: Ws

/** A workspace with something for every kind of command to act on: a key, a secret, a workflow, a plain and a SOPS file, a plan. */
beforeAll(async () => {
  ws = await tempWorkspace('conformance', 'full')
  const kms = (args: string[], input?: string) => runCli('prov-kms', args, { env: ws.env, cwd: ws.path, input })
  expect((await kms(['keygen', '-q'])).code).toBe(0)
  expect((await kms(['secret', 'set', 'db/old', '-q'], 'old-value')).code).toBe(0)
  writeFileSync(join(ws.path, 'deploy.yaml'), 'name: deploy\nsteps:\n  - id: touch\n    run: touch conformance-marker\n')
  mkdirSync(join(ws.path, 'secrets'), { recursive: true })
  writeFileSync(join(ws.path, 'secrets', 'app.yaml'), 'password: plain\n')
  const sealed = await kms(['sops', 'encrypt', 'secrets/app.yaml'])
  expect(sealed.code, sealed.stderr).toBe(0)
  writeFileSync(join(ws.path, 'secrets', 'app.enc.yaml'), sealed.stdout)
  const plan = await runCli('prov-server', ['plan', '--infra', 'demo'], { env: ws.env, cwd: ws.path })
  if (plan.code === 0) writeFileSync(join(ws.path, 'plan.json'), plan.stdout)
}, 300_000)
afterAll(() => ws?.cleanup())

/** A digest of every file, link and folder under `root` (names, modes, contents). */
function treeDigest(root: string): string {
  const hash = createHash('sha256')
  const walk = (dir: string) => {
    for (const name of readdirSync(dir).sort()) {
      const path = join(dir, name)
      const stat = lstatSync(path)
      hash.update(`${path.slice(root.length)}\0${stat.mode}\0`)
      if (stat.isSymbolicLink()) hash.update(readlinkSync(path))
      else if (stat.isDirectory()) walk(path)
      else hash.update(readFileSync(path))
    }
  }
  walk(root)
  return hash.digest('hex')
}

function run(leaf: LeafCommand, args: string[], options: { cwd?: string; env?: Record<string, string | undefined> } = {}): Promise<CliResult> {
  return runCli(leaf.bin, [...leaf.path, ...args], { env: { ...ws.env, ...options.env }, cwd: options.cwd ?? ws.path, input: '', timeoutMs: 60_000 })
}

/** Exit codes of the contract; a timeout (killed: 128+) or a crash is none of them. */
const contractCode = (expect: ExpectStatic, result: CliResult) => expect(result.code, `${result.stderr}`).toBeLessThanOrEqual(6)

describe('command metadata', () => {
  it('every binary has commands', () => {
    expect(new Set(leaves.map((l) => l.bin)).size).toBe(6)
  })
  for (const leaf of leaves) {
    ruleTest(`${leaf.full}: declares mutating, examples (1-3, of this command), and destructive only when mutating`, async (expect) => {
      expect(typeof leaf.meta.mutating, 'meta.mutating').toBe('boolean')
      expect(leaf.meta.examples?.length ?? 0, 'meta.examples').toBeGreaterThanOrEqual(1)
      expect(leaf.meta.examples?.length ?? 0).toBeLessThanOrEqual(3)
      for (const example of leaf.meta.examples ?? []) expect(example).toContain(leaf.full)
      if (leaf.meta.destructive) expect(leaf.meta.mutating).toBe(true)
    })
  }
})

/**
 * Runs a binary's root command in this process (help and option errors are decided before any
 * command code runs, so this is what the binary does, without a process per check).
 */
async function inProcess(leaf: LeafCommand, args: string[]): Promise<{ code: number; stdout: string; stderr: string }> {
  const { main } = (await import(binaries[leaf.bin as keyof typeof binaries])) as { main: CommandDef<any> }
  const out: string[] = []
  const err: string[] = []
  const saved = { stdout: process.stdout.write, stderr: process.stderr.write, argv1: process.argv[1], exitCode: process.exitCode }
  process.stdout.write = ((chunk: string | Uint8Array) => out.push(String(chunk)) > 0) as typeof process.stdout.write
  process.stderr.write = ((chunk: string | Uint8Array) => err.push(String(chunk)) > 0) as typeof process.stderr.write
  process.argv[1] = join(binDir, leaf.bin)
  try {
    const code = await runProvMain(main, [...leaf.path, ...args])
    return { code, stdout: out.join(''), stderr: err.join('') }
  } finally {
    process.stdout.write = saved.stdout
    process.stderr.write = saved.stderr
    process.argv[1] = saved.argv1
    process.exitCode = saved.exitCode
  }
}

describe('help and options', () => {
  for (const leaf of leaves) {
    ruleTest(`${leaf.full} --help: exit 0, full path in USAGE, examples`, async (expect) => {
      const help = await inProcess(leaf, ['--help'])
      expect(help.code, help.stderr).toBe(0)
      expect(help.stdout).toContain(`USAGE\n  ${leaf.full}`)
      expect(help.stdout).toContain(`EXAMPLES\n  ${leaf.meta.examples?.[0]}`)
      for (const [name, arg] of Object.entries(leaf.args)) {
        if (arg.type === 'positional' && !leaf.meta.usage) expect(help.stdout).toContain(('valueHint' in arg && arg.valueHint) || name.toUpperCase())
      }
    })

    ruleTest(`${leaf.full}: an unknown option is exit 2 with a suggestion`, async (expect) => {
      const result = await inProcess(leaf, ['--quiett'])
      expect(result.code).toBe(2)
      expect(result.stderr.trim().split('\n')).toHaveLength(1)
      expect(result.stderr).toMatch(new RegExp(`^${leaf.bin}: error: unknown option '--quiett' .*did you mean '--quiet'`))
    })
  }
})

describe.concurrent('--out json|yaml|ndjson parse', () => {
  const parsers: Record<string, (text: string) => unknown> = {
    json: (text) => JSON.parse(text),
    yaml: (text) =>
      parseAllDocuments(text).map((doc) => {
        if (doc.errors.length) throw doc.errors[0]
        return doc.toJS()
      }),
    ndjson: (text) =>
      text
        .trim()
        .split('\n')
        .filter(Boolean)
        .map((line) => JSON.parse(line)),
  }
  for (const leaf of leaves) {
    const args = exampleArgs(leaf)
    if (!args) continue
    ruleTest(`${leaf.full}: --out json, yaml and ndjson are honoured`, async (expect) => {
      for (const format of ['json', 'yaml', 'ndjson']) {
        const result = await run(leaf, [...args, ...(leaf.meta.mutating ? ['--check'] : []), '--out', format])
        contractCode(expect, result)
        // Nothing printed (a refusal, an unknown name in the fixture): the other formats would say the same.
        if (result.code !== 0 || !result.stdout.trim()) break
        expect(() => parsers[format](result.stdout), `${format} output of ${leaf.full}:\n${result.stdout.slice(0, 400)}`).not.toThrow()
      }
    })
  }
})

describe('mutating commands under --check change nothing and start no process', () => {
  for (const leaf of leaves.filter((l) => l.meta.mutating)) {
    ruleTest(`${leaf.full} --check: the workspace stays byte-identical, no process starts`, async (expect) => {
      const args = exampleArgs(leaf) ?? []
      const spawnLog = join(ws.root, `spawned-${leaf.full.replace(/\W+/g, '-')}.log`)
      const before = treeDigest(ws.path)
      const result = await run(leaf, [...args, '--check'], { env: { PROV_SPAWN_LOG: spawnLog, NODE_OPTIONS: `--import ${spy}` } })
      contractCode(expect, result)
      expect(treeDigest(ws.path), `${leaf.full} --check changed the workspace (exit ${result.code}: ${result.stderr})`).toBe(before)
      expect(existsSync(spawnLog) ? readFileSync(spawnLog, 'utf8') : '', `${leaf.full} --check started processes`).toBe('')
      if (result.code === 2) expect(result.stderr).toMatch(/--check|needs|missing|unknown|invalid|no |not |already|refus/)
    })
  }
})

describe('destructive commands refuse without --yes off a terminal', () => {
  for (const leaf of leaves.filter((l) => l.meta.destructive)) {
    ruleTest(`${leaf.full} without --yes (stdin not a TTY): exit 2, nothing changed`, async (expect) => {
      const before = treeDigest(ws.path)
      const result = await run(leaf, exampleArgs(leaf) ?? [])
      expect(treeDigest(ws.path)).toBe(before)
      if (result.code === 5) return // nothing to act on in the fixture: refused before any question
      expect(result.code, result.stderr).toBe(2)
      expect(result.stderr).toMatch(/--yes/)
    })
  }
})

describe('destructive commands ask on a terminal; no changes nothing', () => {
  for (const leaf of leaves.filter((l) => l.meta.destructive)) {
    ruleTest(`${leaf.full} on a terminal, answered no: one question, nothing changed`, async (expect) => {
      const before = treeDigest(ws.path)
      const result = await runOnTerminal(leaf.bin, [...leaf.path, ...(exampleArgs(leaf) ?? [])], { cwd: ws.path, env: ws.env, input: 'n\n', timeoutMs: 60_000 })
      expect(treeDigest(ws.path)).toBe(before)
      if (result.code === 5) return // nothing to act on in the fixture: refused before any question
      expect(result.stdout.match(/\[y\/N\]/g) ?? [], result.stdout).toHaveLength(1)
      // No is a cancellation: exit 1 (a refusal before the question, e.g. a bad argument, is 2).
      expect(result.code, result.stdout).toBe(1)
    })
  }
})

describe.concurrent('read-only commands outside a workspace create nothing', () => {
  for (const leaf of leaves.filter((l) => !l.meta.mutating)) {
    ruleTest(`${leaf.full} outside any workspace: no .prov/ in the current folder`, async (expect) => {
      const outside = tempEnv('prov-outside-')
      try {
        const cwd = join(outside.root, 'here')
        mkdirSync(cwd)
        const result = await run(leaf, exampleArgs(leaf) ?? [], { cwd, env: outside.env })
        contractCode(expect, result)
        expect(readdirSync(cwd), `${leaf.full} wrote into the current folder`).toEqual([])
      } finally {
        outside.cleanup()
        rmSync(join(outside.root), { recursive: true, force: true })
      }
    })
  }
})
