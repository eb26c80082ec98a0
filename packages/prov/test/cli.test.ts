import { spawnSync } from 'node:child_process'
import { existsSync, mkdirSync, readFileSync, rmSync, statSync, symlinkSync, writeFileSync } from 'node:fs'
import { join } from 'node:path'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { runCli, tempEnv, tempWorkspace } from '../../../tests/helpers/cli'
import { nuPath } from '../../../tests/helpers/tools'

type Ws = Awaited<ReturnType<typeof tempWorkspace>>
let ws: Ws
const nu = nuPath()

beforeAll(async () => {
  ws = await tempWorkspace('demo', 'full')
})
afterAll(() => ws?.cleanup())

const prov = (args: string[], options: { input?: string; env?: Record<string, string | undefined>; cwd?: string } = {}) =>
  runCli('prov', args, { ...options, env: { ...ws.env, ...options.env } })

/** One clear line on stderr, naming the problem. */
function oneLine(stderr: string, pattern: RegExp) {
  const lines = stderr.trim().split('\n')
  expect(lines, stderr).toHaveLength(1)
  expect(lines[0]).toMatch(pattern)
}

describe('prov workspace', () => {
  it('init creates the layout, registers and activates it', async () => {
    const t = tempEnv()
    try {
      const r = await runCli('prov', ['workspace', 'init', 'w1', '--path', join(t.root, 'w1')], { env: t.env, cwd: t.root })
      expect(r.code, r.stderr).toBe(0)
      expect(r.json()).toMatchObject({ schema: 'prov.workspace/v1', name: 'w1', active: true, template: 'minimal' })
      for (const dir of ['.prov', 'infra', 'config', 'secrets', 'extensions/taskservs']) expect(existsSync(join(t.root, 'w1', dir))).toBe(true)
      expect(statSync(join(t.root, 'w1', 'secrets')).mode & 0o777).toBe(0o700)
      expect(readFileSync(join(t.root, 'w1/prov.config.yaml'), 'utf8')).toContain('name: "w1"')
      const list = await runCli('prov', ['workspace', 'list'], { env: t.env })
      expect(list.json()).toEqual([expect.objectContaining({ name: 'w1', active: true, exists: true })])
      const current = await runCli('prov', ['workspace', 'current'], { env: t.env, cwd: '/' })
      expect(current.json()).toMatchObject({ name: 'w1', via: 'active' })
      await runCli('prov', ['workspace', 'init', 'w2', '--path', join(t.root, 'w2'), '--no-activate'], { env: t.env })
      const use = await runCli('prov', ['workspace', 'use', 'w2'], { env: t.env })
      expect(use.json()).toMatchObject({ name: 'w2', active: true })
      const info = await runCli('prov', ['workspace', 'info', 'w1'], { env: t.env })
      expect(info.json()).toMatchObject({ name: 'w1', infras: [], config_file: join(t.root, 'w1/prov.config.yaml') })
      const removed = await runCli('prov', ['workspace', 'remove', 'w1', '--yes'], { env: t.env })
      expect(removed.json()).toMatchObject({ name: 'w1', removed: true })
      expect(existsSync(join(t.root, 'w1'))).toBe(true)
      expect((await runCli('prov', ['workspace', 'list'], { env: t.env })).json().map((w: { name: string }) => w.name)).toEqual(['w2'])
    } finally {
      t.cleanup()
    }
  })

  it('refuses unknown workspaces and templates, bad names and occupied folders', async () => {
    const unknown = await prov(['workspace', 'use', 'demoo'])
    expect(unknown.code).toBe(5)
    oneLine(unknown.stderr, /unknown workspace 'demoo'.*did you mean 'demo'/)
    const viaFlag = await prov(['config', 'show', '-w', 'nope'])
    expect(viaFlag.code).toBe(5)
    const template = await prov(['workspace', 'init', 'x', '--template', 'fulll', '--path', join(ws.root, 'x')])
    expect(template.code).toBe(2)
    oneLine(template.stderr, /invalid value for '--template': 'fulll'.*did you mean 'full'/)
    const badName = await prov(['workspace', 'init', '../evil'])
    expect(badName.code).toBe(2)
    const occupied = await prov(['workspace', 'init', 'again', '--path', ws.path])
    expect(occupied.code).toBe(2)
    oneLine(occupied.stderr, /already exists/)
  })
})

describe('prov config', () => {
  it('show --explain gives every key with its origin layer, file and line', async () => {
    const r = await prov(['config', 'show', '--explain', '--out', 'json'])
    expect(r.code, r.stderr).toBe(0)
    const keys = r.json<{ key: string; layer: string; source?: string; line?: number }[]>()
    expect(keys.length).toBeGreaterThan(30)
    for (const k of keys) expect(k.layer).toMatch(/^(defaults|system|user|workspace|environment|infra|env|flags)$/)
    expect(keys.find((k) => k.key === 'workspace.name')).toMatchObject({ layer: 'workspace', source: join(ws.path, 'prov.config.yaml'), line: 3 })
    expect(keys.find((k) => k.key === 'ssh.port')).toMatchObject({ layer: 'defaults', value: 22 })
    expect(keys.find((k) => k.key === 'orchestrator.paths.data_dir')).toMatchObject({ value: join(ws.path, '.prov/orchestrator/data') })
  })

  it('PROV_<SECTION>__<KEY> overrides, --env and --infra layers apply', async () => {
    const r = await prov(['config', 'show', '--out', 'json'], { env: { PROV_DEBUG__ENABLED: 'true' } })
    expect(r.json().debug.enabled).toBe(true)
    const dev = await prov(['config', 'show', 'debug', '--env', 'dev'])
    expect(dev.json()).toMatchObject({ enabled: true, log_level: 'debug' })
    const infra = await prov(['config', 'show', '--explain', 'servers', '--infra', 'demo'])
    expect(infra.json()[0]).toMatchObject({ key: 'servers.defaults.provider', layer: 'infra' })
    const set = await prov(['config', 'show', 'ssh.port', '--set', 'ssh.port=2222'])
    expect(set.json()).toBe(2222)
    const yaml = await prov(['config', 'show', 'ssh', '--out', 'yaml'])
    expect(yaml.stdout).toContain('user: root')
  })

  it('works in real nu: from json | get debug', async () => {
    const show = await prov(['config', 'show', '--out', 'json'])
    const { spawnSync } = await import('node:child_process')
    const r = spawnSync(nu, ['--no-config-file', '--stdin', '-c', 'from json | get debug | get enabled | to json'], { input: show.stdout, encoding: 'utf8' })
    expect(r.status, r.stderr).toBe(0)
    expect(JSON.parse(r.stdout)).toBe(false)
  })

  it('validate and path describe the layers', async () => {
    const v = await prov(['config', 'validate', '--env', 'dev', '--infra', 'demo'])
    expect(v.code, v.stderr).toBe(0)
    expect(v.json().layers.map((l: { layer: string }) => l.layer)).toEqual(['defaults', 'workspace', 'environment', 'infra'])
    const p = await prov(['config', 'path'])
    expect(p.json()[0]).toMatchObject({ priority: 1, layer: 'defaults' })
  })

  it('bad config: unknown key, wrong type, cycle, unknown reference — exit 3, one line, file:line', async () => {
    const t = await tempWorkspace('bad')
    try {
      const file = join(t.path, 'prov.config.yaml')
      const cases: [string, RegExp][] = [
        ['workspace:\n  name: bad\nsssh:\n  port: 22\n', /unknown config key 'sssh'.*prov\.config\.yaml:3.*did you mean 'ssh'/],
        ['ssh:\n  port: true\n', /invalid config value for 'ssh\.port'.*prov\.config\.yaml:2/],
        ['paths:\n  a: "{{paths.b}}"\n  b: "{{paths.a}}"\n', /interpolation cycle: paths\.a -> paths\.b -> paths\.a/],
        ['paths:\n  a: "{{ssh.prot}}"\n', /unknown reference '\{\{ssh\.prot\}\}' in 'paths\.a'.*did you mean 'ssh\.port'/],
        ['ssh: [port\n', /malformed YAML.*prov\.config\.yaml:\d/],
      ]
      for (const [text, pattern] of cases) {
        writeFileSync(file, text)
        const r = await runCli('prov', ['config', 'show'], { env: t.env })
        expect(r.code, text).toBe(3)
        expect(r.stdout).toBe('')
        oneLine(r.stderr, pattern)
      }
    } finally {
      t.cleanup()
    }
  })
})

describe('prov deps and ext', () => {
  it('resolves the seed example in levels', async () => {
    const r = await prov(['deps', 'resolve', 'kubernetes', 'cilium', '--out', 'json'])
    expect(r.code, r.stderr).toBe(0)
    expect(r.json()).toMatchObject({ schema: 'prov.deps.resolution/v1', levels: [['containerd', 'etcd'], ['kubernetes'], ['cilium']] })
    const tree = await prov(['deps', 'tree', 'cilium'])
    expect(tree.json()).toMatchObject({ name: 'cilium', requires: [{ name: 'kubernetes' }] })
    const valid = await prov(['deps', 'validate'])
    expect(valid.code, valid.stderr).toBe(0)
    expect(valid.json().valid).toBe(true)
  })

  it('reads names from piped records and refuses input that is not records', async () => {
    const piped = await prov(['deps', 'resolve'], { input: JSON.stringify([{ schema: 'prov.extension/v1', name: 'cilium' }]) })
    expect(piped.json().order).toEqual(['containerd', 'etcd', 'kubernetes', 'cilium'])
    const yaml = await prov(['deps', 'resolve'], { input: '- name: redis\n' })
    expect(yaml.json().order).toEqual(['redis'])
    for (const [input, pattern] of [
      ['this is not json', /not JSON, NDJSON or YAML records/],
      ['{"name": "redis"', /not valid JSON/],
      ['[{"nope": 1}]', /stdin record 1 has no 'name'/],
    ] as const) {
      const r = await prov(['deps', 'resolve'], { input })
      expect(r.code, input).toBe(2)
      expect(r.stdout).toBe('')
      oneLine(r.stderr, pattern)
    }
  })

  it('reports cycles, conflicts, unknown names and bad ranges', async () => {
    const ext = join(ws.path, 'extensions/taskservs')
    for (const [name, requires] of [
      ['loop-a', { 'loop-b': '*' }],
      ['loop-b', { 'loop-a': '*' }],
    ] as const) {
      mkdirSync(join(ext, name), { recursive: true })
      writeFileSync(join(ext, name, 'manifest.yaml'), `name: ${name}\nkind: taskserv\nversion: 1.0.0\nrequires: ${JSON.stringify(requires)}\n`)
    }
    const cycle = await prov(['deps', 'resolve', 'loop-a'])
    expect(cycle.code).toBe(3)
    oneLine(cycle.stderr, /dependency cycle: loop-a -> loop-b -> loop-a/)
    const validate = await prov(['deps', 'validate'])
    expect(validate.code).toBe(3)
    expect(validate.json().problems.map((p: { extension: string }) => p.extension)).toEqual(['loop-a', 'loop-b'])
    mkdirSync(join(ext, 'docker'), { recursive: true })
    writeFileSync(join(ext, 'docker/manifest.yaml'), 'name: docker\nkind: taskserv\nversion: 24.0.0\n')
    const conflict = await prov(['deps', 'resolve', 'kubernetes', 'docker'])
    expect(conflict.code).toBe(3)
    oneLine(conflict.stderr, /conflict: 'kubernetes' conflicts with 'docker'/)
    const unknown = await prov(['deps', 'resolve', 'redsi'])
    expect(unknown.code).toBe(5)
    oneLine(unknown.stderr, /unknown extension 'redsi'.*'redis'/)
    const range = await prov(['deps', 'resolve', 'redis@>=99'])
    expect(range.code).toBe(3)
    oneLine(range.stderr, /unsatisfiable version/)
  })

  it('lists extensions by layer, shows one, scaffolds a new one', async () => {
    const list = await prov(['ext', 'list', '--kind', 'taskserv'])
    const names = list.json().map((e: { name: string; layer: string }) => `${e.name}:${e.layer}`)
    expect(names).toContain('kubernetes:bundled')
    expect(names).toContain('docker:workspace')
    const info = await prov(['ext', 'info', 'etcd'])
    expect(info.json()).toMatchObject({ name: 'etcd', kind: 'taskserv', layer: 'bundled', files: expect.arrayContaining(['manifest.yaml']) })
    const created = await prov(['ext', 'new', 'taskserv', 'my-svc'])
    expect(created.code, created.stderr).toBe(0)
    const dir = join(ws.path, 'extensions/taskservs/my-svc')
    expect(readFileSync(join(dir, 'manifest.yaml'), 'utf8')).toContain('name: "my-svc"')
    expect(statSync(join(dir, 'install.sh')).mode & 0o111).not.toBe(0)
    const again = await prov(['ext', 'info', 'my-svc'])
    expect(again.json()).toMatchObject({ name: 'my-svc', layer: 'workspace' })
    const unknownKind = await prov(['ext', 'new', 'widget', 'x'])
    expect(unknownKind.code).toBe(2)
    const unknownExt = await prov(['ext', 'info', 'etdc'])
    expect(unknownExt.code).toBe(5)
    oneLine(unknownExt.stderr, /unknown taskserv 'etdc'.*'etcd'/)
  })
})

describe('the JSON contract of prov', () => {
  it('prints help and version on stdout, usage errors on stderr with exit 2', async () => {
    expect((await prov(['--version'])).stdout.trim()).toMatch(/^\d+\.\d+\.\d+$/)
    expect((await prov(['config', '--help'])).stdout).toContain('show')
    const none = await prov([])
    expect(none.code).toBe(2)
    const unknown = await prov(['confg'])
    expect(unknown.code).toBe(2)
    oneLine(unknown.stderr, /unknown command 'confg'.*did you mean 'config'/)
    const flag = await prov(['config', 'show', '--explian'])
    expect(flag.code).toBe(2)
    oneLine(flag.stderr, /unknown option '--explian'.*did you mean '--explain'/)
    const out = await prov(['config', 'show', '--out', 'xml'])
    expect(out.code).toBe(2)
    oneLine(out.stderr, /invalid value for '--out': 'xml'.*one of json, ndjson, yaml, table/)
  })

  it('emits ndjson, yaml and a table; --log-format json makes stderr NDJSON', async () => {
    const nd = await prov(['workspace', 'list', '--out', 'ndjson'])
    expect(nd.lines()[0]).toMatchObject({ schema: 'prov.workspace/v1' })
    const table = await prov(['deps', 'resolve', 'redis', '--out', 'table'])
    expect(table.stdout).toContain('redis')
    const err = await prov(['deps', 'resolve', 'nope', '--log-format', 'json'])
    const line = JSON.parse(err.stderr.trim())
    expect(line).toMatchObject({ level: 'error', code: 5, kind: 'not_found', message: "unknown extension 'nope'" })
  })

  it('dispatches prov <tool> to prov-<tool> on PATH, git-style', async () => {
    const bin = join(ws.root, 'bin')
    mkdirSync(bin, { recursive: true })
    writeFileSync(join(bin, 'prov-hello'), '#!/bin/sh\necho "{\\"hello\\": \\"$1\\"}"\nexit 7\n', { mode: 0o755 })
    const r = await prov(['hello', 'world'], { env: { PATH: `${bin}:${process.env.PATH}` } })
    expect(r.code).toBe(7)
    expect(r.json()).toEqual({ hello: 'world' })
  })

  it('doctor reports checks as records', async () => {
    const r = await prov(['doctor'])
    const checks = r.json<{ check: string; ok: boolean }[]>()
    expect(checks.map((c) => c.check)).toEqual(expect.arrayContaining(['node', 'root', 'ip', 'sshd', 'overlayfs']))
    expect(checks.find((c) => c.check === 'node')?.ok).toBe(true)
  })
})

describe('hostile and mistyped command lines', () => {
  it('suggests --out for --outt, and a value-taking option without a value is exit 2', async () => {
    const typo = await prov(['config', 'show', '--outt', 'json'])
    expect(typo.code).toBe(2)
    oneLine(typo.stderr, /unknown option '--outt'.*did you mean '--out'/)
    for (const args of [['-o'], ['--out'], ['-o', '-q'], ['--output']]) {
      const r = await prov(['config', 'show', ...args])
      expect(r.code, args.join(' ')).toBe(2)
      oneLine(r.stderr, /option '(-o|--out|--output)' needs a value.*one of json, ndjson, yaml, table/)
      expect(r.stdout).toBe('')
    }
    expect((await prov(['config', 'show', 'ssh.port', '--output', 'yaml'])).stdout).toBe('22\n')
  })

  it('every error is one line; --log-format json gives code and kind on that line', async () => {
    for (const args of [['config', 'show', '--outt'], ['confg'], ['workspace', 'use', 'nope'], ['config', 'show', '--set', 'a.__proto__.b=1']]) {
      const r = await prov([...args, '--log-format', 'json'])
      const lines = r.stderr.trim().split('\n')
      expect(lines, r.stderr).toHaveLength(1)
      const line = JSON.parse(lines[0])
      expect(line).toMatchObject({ level: 'error', code: r.code })
      expect(line.kind).toMatch(/^(usage|config|not_found)$/)
    }
  })

  it('prototype keys in --set, PROV_* and config files are exit 3 naming where; nothing is polluted', async () => {
    const set = await prov(['config', 'show', '--set', 'debug.__proto__.enabled=true'])
    expect(set.code).toBe(3)
    oneLine(set.stderr, /forbidden key '__proto__' in --set debug.__proto__.enabled \(at --set debug.__proto__.enabled\)/)
    const env = await prov(['config', 'show'], { env: { PROV_DEBUG__CONSTRUCTOR__PROTOTYPE: 'x' } })
    expect(env.code).toBe(3)
    oneLine(env.stderr, /forbidden key 'constructor' in environment variable PROV_DEBUG__CONSTRUCTOR__PROTOTYPE/)
    const file = join(ws.path, 'config', 'polluted.yaml')
    writeFileSync(file, 'ssh:\n  port: 22\n  __proto__:\n    user: evil\n')
    const fromFile = await prov(['config', 'show', '-e', 'polluted'])
    expect(fromFile.code).toBe(3)
    oneLine(fromFile.stderr, new RegExp(`forbidden key '__proto__'.*\\(at ${file}:3\\)`))
  })

  it('deeply nested stdin and config files are exit 2 with a message, not a crash', async () => {
    const deep = `${'['.repeat(100_000)}${']'.repeat(100_000)}`
    const piped = await prov(['deps', 'resolve'], { input: deep })
    expect(piped.code).toBe(2)
    oneLine(piped.stderr, /stdin is nested too deeply/)
    const yaml = await prov(['deps', 'resolve'], { input: `a:\n${'- '.repeat(100_000)}x\n` })
    expect(yaml.code).toBe(2)
    oneLine(yaml.stderr, /stdin is nested too deeply/)
    writeFileSync(join(ws.path, 'config', 'deep.yaml'), `x: ${deep}\n`)
    const config = await prov(['config', 'show', '-e', 'deep'])
    expect(config.code).toBe(2)
    oneLine(config.stderr, /deep.yaml is nested too deeply/)
  })

  it('stdin over limits.input_bytes is exit 2 naming the setting', async () => {
    const r = await prov(['deps', 'resolve'], {
      input: `${JSON.stringify([{ name: 'redis', pad: 'x'.repeat(5000) }])}\n`,
      env: { PROV_LIMITS__INPUT_BYTES: '2048' },
    })
    expect(r.code).toBe(2)
    oneLine(r.stderr, /stdin is larger than the input limit of 2 KiB.*limits\.input_bytes/)
  })
})

describe('prov workspace remove --delete-files', () => {
  it('refuses a folder that is no longer a workspace, or a symlink, and changes nothing', async () => {
    const t = tempEnv()
    try {
      const path = join(t.root, 'gone')
      expect((await runCli('prov', ['workspace', 'init', 'gone', '--path', path, '-q'], { env: t.env })).code).toBe(0)
      rmSync(join(path, 'prov.config.yaml'))
      writeFileSync(join(path, 'precious.txt'), 'keep me')
      const refused = await runCli('prov', ['workspace', 'remove', 'gone', '--delete-files', '--yes'], { env: t.env })
      expect(refused.code).toBe(4)
      oneLine(refused.stderr, /refusing to delete .*gone: it is no longer a workspace/)
      expect(readFileSync(join(path, 'precious.txt'), 'utf8')).toBe('keep me')
      expect((await runCli('prov', ['workspace', 'list'], { env: t.env })).json().map((w: { name: string }) => w.name)).toEqual(['gone'])

      const target = join(t.root, 'target')
      expect((await runCli('prov', ['workspace', 'init', 'target', '--path', target, '-q'], { env: t.env })).code).toBe(0)
      const link = join(t.root, 'link')
      symlinkSync(target, link)
      const registry = join(t.env.XDG_CONFIG_HOME as string, 'prov', 'workspaces.yaml')
      writeFileSync(registry, readFileSync(registry, 'utf8').replace(`path: ${target}`, `path: ${link}`))
      const viaLink = await runCli('prov', ['workspace', 'remove', 'target', '--delete-files', '--yes'], { env: t.env })
      expect(viaLink.code).toBe(4)
      oneLine(viaLink.stderr, /it is a symlink/)
      expect(existsSync(join(target, 'prov.config.yaml'))).toBe(true)

      // A folder above the home folder, even one that looks like a workspace, is never deleted.
      const homes = join(t.root, 'homes')
      mkdirSync(join(homes, 'me'), { recursive: true })
      writeFileSync(join(homes, 'prov.config.yaml'), 'workspace:\n  name: homes\n')
      expect((await runCli('prov', ['workspace', 'use', homes, '-q'], { env: t.env })).code).toBe(0)
      const aboveHome = await runCli('prov', ['workspace', 'remove', 'homes', '--delete-files', '--yes'], { env: { ...t.env, HOME: join(homes, 'me') } })
      expect(aboveHome.code).toBe(4)
      oneLine(aboveHome.stderr, /refusing to delete .*homes: the home folder .*homes\/me is inside it/)
      expect(existsSync(join(homes, 'me'))).toBe(true)
      // --check meets the same refusal (no --yes needed to preview), and changes nothing either.
      for (const args of [['--check'], ['--check', '--yes']]) {
        const previewAboveHome = await runCli('prov', ['workspace', 'remove', 'homes', '--delete-files', ...args], {
          env: { ...t.env, HOME: join(homes, 'me') },
        })
        expect(previewAboveHome.code, args.join(' ')).toBe(4)
        oneLine(previewAboveHome.stderr, /refusing to delete .*homes: the home folder .*homes\/me is inside it/)
      }
      const previewUnknown = await runCli('prov', ['workspace', 'remove', 'gnoe', '--delete-files', '--check'], { env: t.env })
      expect(previewUnknown.code).toBe(5)
      oneLine(previewUnknown.stderr, /unknown workspace 'gnoe'.*hint: did you mean 'gone'/)

      writeFileSync(join(path, 'prov.config.yaml'), 'workspace:\n  name: gone\n')
      const preview = await runCli('prov', ['workspace', 'remove', 'gone', '--delete-files', '--check'], { env: t.env })
      expect(preview.code, preview.stderr).toBe(0)
      expect(preview.json()).toMatchObject({ name: 'gone', removed: false, deleted_files: false, planned: true })
      expect(existsSync(join(path, 'precious.txt'))).toBe(true)
      const removed = await runCli('prov', ['workspace', 'remove', 'gone', '--delete-files', '--yes'], { env: t.env })
      expect(removed.code, removed.stderr).toBe(0)
      expect(existsSync(path)).toBe(false)
    } finally {
      t.cleanup()
    }
  })
})

describe('prov workspace remove --delete-files that cannot finish', () => {
  // As root (as CI runs it): the mount that holds the folder is a tmpfs this test mounts.
  it('a folder that cannot be deleted whole (a mount inside) leaves the workspace registered and its prov.config; the rerun finishes', async () => {
    const t = tempEnv()
    const busy = join(t.root, 'held', 'data')
    try {
      const path = join(t.root, 'held')
      expect((await runCli('prov', ['workspace', 'init', 'held', '--path', path, '-q'], { env: t.env })).code).toBe(0)
      mkdirSync(busy, { recursive: true })
      expect(spawnSync('mount', ['-t', 'tmpfs', '-o', 'size=1m', 'prov-test', busy]).status).toBe(0)
      const refused = await runCli('prov', ['workspace', 'remove', 'held', '--delete-files', '--yes'], { env: t.env })
      expect(refused.code).toBe(1)
      oneLine(refused.stderr, /could not delete all of .*held: (EBUSY|.*busy).*hint: workspace 'held' stays registered/i)
      expect(existsSync(join(path, 'prov.config.yaml'))).toBe(true)
      expect((await runCli('prov', ['workspace', 'list'], { env: t.env })).json().map((w: { name: string }) => w.name)).toEqual(['held'])
      expect(spawnSync('umount', [busy]).status).toBe(0)
      const removed = await runCli('prov', ['workspace', 'remove', 'held', '--delete-files', '--yes'], { env: t.env })
      expect(removed.code, removed.stderr).toBe(0)
      expect(existsSync(path)).toBe(false)
      expect((await runCli('prov', ['workspace', 'list'], { env: t.env })).json()).toEqual([])
    } finally {
      spawnSync('umount', [busy])
      t.cleanup()
    }
  })
})

describe('global options anywhere, version and help', () => {
  it('prov -w NAME config show works; -w before a tool name reaches the tool', async () => {
    const r = await runCli('prov', ['-w', ws.path, 'config', 'show', 'workspace.name'], { env: { ...ws.env, PROV_WORKSPACE: undefined }, cwd: '/' })
    expect(r.code, r.stderr).toBe(0)
    expect(r.json()).toBe('demo')
    const bin = join(ws.root, 'bin2')
    mkdirSync(bin, { recursive: true })
    writeFileSync(join(bin, 'prov-args'), '#!/bin/sh\nprintf "%s " "$@"\n', { mode: 0o755 })
    const tool = await prov(['-w', 'x', 'args', 'list'], { env: { PATH: `${bin}:${process.env.PATH}` } })
    expect(tool.stdout.trim()).toBe('-w x list')
  })

  it('prov version and prov help [COMMAND] exist; -v is not a flag', async () => {
    expect((await prov(['version'])).stdout.trim()).toMatch(/^\d+\.\d+\.\d+$/)
    const help = await prov(['help', 'config', 'show'])
    expect(help.code).toBe(0)
    expect(help.stdout).toContain('USAGE\n  prov config show [KEY] [OPTIONS]')
    const v = await prov(['config', 'show', '-v'])
    expect(v.code).toBe(2)
    oneLine(v.stderr, /unknown option '-v'/)
  })
})
