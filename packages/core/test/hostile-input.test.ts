import { mkdirSync, writeFileSync } from 'node:fs'
import { join } from 'node:path'
import { PassThrough } from 'node:stream'
import { beforeEach, describe, expect, it } from 'vitest'
import { useTempConfigHome } from '../../../tests/helpers/config-home'
import { presentableError } from '../src/command'
import { envLayer, loadConfig, parseSetFlags } from '../src/config/index'
import { ProvError } from '../src/errors'
import { readManifest } from '../src/extensions'
import { readJsonFile } from '../src/state'
import { parseInput, readStdinBuffer } from '../src/stdin'
import { assertSafeStructure, jsonNestingDepth } from '../src/util/structure'
import { readRegistry } from '../src/workspace'

const home = useTempConfigHome('prov-hostile-')
let root: string
beforeEach(() => {
  root = home.root()
})

function write(path: string, text: string) {
  mkdirSync(join(path, '..'), { recursive: true })
  writeFileSync(path, text)
}

/** The ProvError a call throws (sync or async); fails the test when it does not throw one. */
async function provError(run: () => unknown): Promise<ProvError> {
  try {
    await run()
  } catch (error) {
    expect(error, String(error)).toBeInstanceOf(ProvError)
    return error as ProvError
  }
  throw new Error('expected a ProvError')
}

const deepJson = (levels: number) => `${'['.repeat(levels)}${']'.repeat(levels)}`
const deepObject = (levels: number) => `${'{"a":'.repeat(levels)}1${'}'.repeat(levels)}`

describe('deeply nested input: exit 2 with a message, never a stack overflow', () => {
  const documents: [string, string][] = [
    ['JSON arrays', deepJson(100_000)],
    ['JSON objects', deepObject(100_000)],
    ['NDJSON', `{"a":1}\n${deepObject(100_000)}\n`],
    ['YAML flow', `a: ${deepJson(100_000)}`],
    ['YAML compact sequences', `a:\n${'- '.repeat(100_000)}x`],
    ['YAML block mappings', Array.from({ length: 3_000 }, (_, i) => `${' '.repeat(i)}k${i}:`).join('\n') + ` 1`],
  ]
  for (const [kind, text] of documents) {
    it(`stdin records: ${kind}`, async () => {
      const error = await provError(() => parseInput(text, 'stdin'))
      expect(error.code).toBe(2)
      expect(error.message).toMatch(/stdin is nested too deeply/)
    })
  }

  it('accepts ordinary nesting', () => {
    expect(parseInput(deepObject(50)).records).toHaveLength(1)
    expect(jsonNestingDepth('{"a":"[[[[[[["}')).toBe(1)
  })

  for (const [ext, text] of [
    ['yaml', `x: ${deepJson(100_000)}`],
    ['json', `{"x": ${deepJson(100_000)}}`],
    ['toml', `x = ${deepJson(100_000)}`],
  ] as const) {
    it(`config file: ${ext}`, async () => {
      const ws = join(root, 'ws')
      write(join(ws, `prov.config.${ext}`), text)
      const error = await provError(() => loadConfig({ workspacePath: ws, environment: {} }))
      expect(error.code).toBe(2)
      expect(error.message).toMatch(/nested too deeply/)
      expect(error.location).toContain(`prov.config.${ext}`)
    })
  }

  it('state files and the workspace registry', async () => {
    write(join(root, 'state.json'), deepObject(100_000))
    expect((await provError(() => readJsonFile(join(root, 'state.json'), {}))).message).toMatch(/nested too deeply/)
    write(join(root, 'xdg', 'prov', 'workspaces.yaml'), `workspaces: ${deepJson(100_000)}`)
    expect((await provError(() => readRegistry())).message).toMatch(/nested too deeply/)
  })

  it('extension manifests (a published extension is input too)', async () => {
    for (const text of [`name: x\nkind: taskserv\nversion: 1.0.0\nrequires: ${deepJson(100_000)}\n`, `a: ${'['.repeat(100_000)}${']'.repeat(100_000)}\n`]) {
      write(join(root, 'ext', 'manifest.yaml'), text)
      const error = await provError(() => readManifest(join(root, 'ext')))
      expect(error.code).toBe(2)
      expect(error.message).toMatch(/nested too deeply/)
    }
  })
})

describe('prototype keys are refused, naming where', () => {
  it('in stdin records (exit 2), while constructor stays a usable field name', async () => {
    for (const text of ['{"__proto__": {"polluted": 1}}', '[{"a": {"__proto__": {"x": 1}}}]', 'a:\n  __proto__:\n    x: 1\n']) {
      const error = await provError(() => parseInput(text))
      expect(error.code).toBe(2)
      expect(error.message).toMatch(/forbidden key '__proto__'/)
    }
    expect(parseInput('{"labels": {"constructor": "x"}}').records).toEqual([{ labels: { constructor: 'x' } }])
    expect(({} as Record<string, unknown>).polluted).toBeUndefined()
  })

  for (const [ext, text, line] of [
    ['yaml', 'workspace:\n  name: w\ndebug:\n  __proto__:\n    enabled: true\n', 4],
    ['yaml', 'providers:\n  constructor:\n    x: 1\n', 2],
    ['json', '{\n  "debug": {\n    "prototype": {"enabled": true}\n  }\n}\n', 3],
    ['toml', '[debug.__proto__]\nenabled = true\n', 1],
  ] as const) {
    it(`in a ${ext} config file (exit 3, file:line)`, async () => {
      const ws = join(root, 'ws')
      write(join(ws, `prov.config.${ext}`), text)
      const error = await provError(() => loadConfig({ workspacePath: ws, environment: {} }))
      expect(error.code).toBe(3)
      expect(error.message).toMatch(/forbidden key '(__proto__|constructor|prototype)'/)
      expect(error.location).toBe(`${join(ws, `prov.config.${ext}`)}:${line}`)
      expect(({} as Record<string, unknown>).enabled).toBeUndefined()
    })
  }

  it('in PROV_* variables, names and JSON values (exit 3, env:NAME)', async () => {
    for (const [name, value, key] of [
      ['PROV_DEBUG__CONSTRUCTOR__X', '1', 'constructor'],
      ['PROV_X__PROTOTYPE', '1', 'prototype'],
      ['PROV___PROTO____ENABLED', 'true', '__proto__'],
      ['PROV_DEBUG__METADATA', '{"__proto__": {"enabled": true}}', '__proto__'],
    ]) {
      const error = await provError(() => envLayer({ [name]: value }))
      expect(error.code).toBe(3)
      expect(error.message).toContain(`'${key}'`)
      expect(error.location).toBe(`env:${name}`)
    }
  })

  it('in --set keys and JSON values (exit 3), and --set without = is exit 2', async () => {
    for (const word of ['__proto__.polluted=1', 'debug.constructor.x=1', 'a.prototype=1', 'servers.defaults={"__proto__":{"x":1}}']) {
      const error = await provError(() => parseSetFlags([word]))
      expect(error.code, word).toBe(3)
      expect(error.message).toMatch(/forbidden key/)
      expect(error.location).toMatch(/^--set /)
    }
    expect((await provError(() => parseSetFlags(['debug.enabled']))).code).toBe(2)
    expect(parseSetFlags(['debug.enabled=true', 'ssh.port=2222'])).toEqual({ 'debug.enabled': true, 'ssh.port': 2222 })
  })

  it('in extension manifests (exit 3)', async () => {
    write(join(root, 'ext', 'manifest.yaml'), 'name: x\nkind: taskserv\nversion: 1.0.0\nsettings: {__proto__: {polluted: 1}}\n')
    const error = await provError(() => readManifest(join(root, 'ext')))
    expect(error.code).toBe(3)
    expect(error.message).toMatch(/forbidden key '__proto__'/)
  })

  it('assertSafeStructure finds keys at any depth without recursion', async () => {
    const value = JSON.parse('{"a":[{"b":{"__proto__":1}}]}')
    const error = await provError(() => assertSafeStructure(value, { source: 'x' }))
    expect(error.message).toContain("key path 'a.0.b.__proto__'")
  })
})

describe('size caps', () => {
  it('stdin larger than the limit is exit 2 naming the setting', async () => {
    const stream = new PassThrough() as unknown as NodeJS.ReadStream
    const reading = readStdinBuffer(stream, 4096)
    ;(stream as unknown as PassThrough).end(Buffer.alloc(10_000, 'a'))
    const error = await provError(() => reading)
    expect(error.code).toBe(2)
    expect(error.message).toMatch(/larger than the input limit of 4 KiB/)
    expect(error.hint).toMatch(/limits\.input_bytes/)
  })

  it('a config file over 4 MiB is refused before parsing (exit 3)', async () => {
    const ws = join(root, 'ws')
    write(join(ws, 'prov.config.yaml'), `# ${'x'.repeat(5 * 1024 * 1024)}\n`)
    const error = await provError(() => loadConfig({ workspacePath: ws, environment: {} }))
    expect(error.code).toBe(3)
    expect(error.message).toMatch(/larger than 4 MiB/)
  })

  it('limits.input_bytes is a validated config key', async () => {
    const resolved = await loadConfig({ environment: { PROV_LIMITS__INPUT_BYTES: '2048' } })
    expect(resolved.config.limits.input_bytes).toBe(2048)
    const error = await provError(() => loadConfig({ environment: { PROV_LIMITS__INPUT_BYTES: '10' } }))
    expect(error.code).toBe(3)
  })
})

describe('error lines', () => {
  it('keep locations that name secret files while values stay redacted', () => {
    const shown = presentableError(
      new ProvError(2, 'step env PW: password=hunter2 is not allowed', { location: 'secret.yaml: steps[0].env.PW', hint: 'use {secret: db/password}' }),
    )
    expect(shown.toLine()).toBe('step env PW: password=[redacted] is not allowed (at secret.yaml: steps[0].env.PW); hint: use {secret: db/password}')
    expect(presentableError(new ProvError(3, 'bad', { location: 'secrets/db.yaml:12' })).location).toBe('secrets/db.yaml:12')
    expect(presentableError(new ProvError(3, 'token: abcdef12345 leaked', { location: 'x' })).message).toBe('token: [redacted] leaked')
  })

  it('are one line whatever the message holds', () => {
    const shown = presentableError(new ProvError(1, 'first\nsecond\r\n  third', { hint: 'a\nb' }))
    expect(shown.toLine()).toBe('first second third; hint: a b')
    expect(shown.toJSON()).toMatchObject({ code: 1, kind: 'failed' })
  })

  it('quote at most the first 200 characters of a value, and stay short whatever they quote', () => {
    const huge = 'x'.repeat(3_000_000)
    const error = new ProvError(3, `unknown config key '${huge}'`, { location: `"${huge}"`, hint: `did you mean \`${huge}\`?` })
    expect(error.message).toBe(`unknown config key '${'x'.repeat(200)}…'`)
    expect(error.location).toBe(`"${'x'.repeat(200)}…"`)
    expect(error.hint).toBe(`did you mean \`${'x'.repeat(200)}…\`?`)
    const unquoted = new ProvError(2, `bad words ${'y '.repeat(5000)}`)
    expect(unquoted.message.length).toBe(2001)
    expect(new ProvError(2, "short 'value' stays").message).toBe("short 'value' stays")
    expect(presentableError(error).toLine().length).toBeLessThan(700)
  })
})
