import { mkdirSync, rmSync, writeFileSync } from 'node:fs'
import { join } from 'node:path'
import { beforeEach, describe, expect, it } from 'vitest'
import { useTempConfigHome } from '../../../tests/helpers/config-home'
import { collectLayers, envLayer, loadConfig, mergeLayers, resolveLayers } from '../src/config/index'
import { ProvError } from '../src/errors'

const home = useTempConfigHome()
let root: string
let env: NodeJS.ProcessEnv
beforeEach(() => {
  root = home.root()
  env = { HOME: root }
})

function write(path: string, text: string) {
  mkdirSync(join(path, '..'), { recursive: true })
  writeFileSync(path, text)
}

async function configError(promise: Promise<unknown>): Promise<ProvError> {
  try {
    await promise
  } catch (error) {
    expect(error).toBeInstanceOf(ProvError)
    expect((error as ProvError).code).toBe(3)
    return error as ProvError
  }
  throw new Error('expected a configuration error')
}

describe('layers', () => {
  it('merges user + dev overlay as the seed example E1', async () => {
    write(
      join(root, 'xdg/prov/config.toml'),
      '[core]\nname = "my-provisioning"\n[debug]\nenabled = false\nlog_level = "info"\n[providers]\ndefault = "local"\n[output]\nformat = "yaml"\n',
    )
    const ws = join(root, 'ws')
    write(join(ws, 'prov.config.yaml'), 'workspace:\n  name: ws\n')
    write(join(ws, 'config/dev.toml'), '[debug]\nenabled = true\nlog_level = "debug"\ncheck = true\n[cache]\nenabled = false\n')
    const resolved = await loadConfig({ workspacePath: ws, env: 'dev', environment: env })
    expect(resolved.config.debug).toEqual({ enabled: true, log_level: 'debug', check: true })
    expect(resolved.config.providers.default).toBe('local')
    expect(resolved.config.output.format).toBe('yaml')
    expect(resolved.config.cache.enabled).toBe(false)
    expect(resolved.origin('debug.enabled')).toMatchObject({ layer: 'environment', line: 2 })
    expect(resolved.origin('core.name')).toMatchObject({ layer: 'user', line: 2 })
  })

  it('gives the highest layer the win, and the next one when it is removed (E2)', async () => {
    const ws = join(root, 'ws')
    write(join(root, 'etc/config.yaml'), 'core:\n  name: system\n')
    write(join(root, 'xdg/prov/config.yaml'), 'core:\n  name: user\n')
    write(join(ws, 'prov.config.yaml'), 'core:\n  name: workspace\n')
    write(join(ws, 'config/prod.yaml'), 'core:\n  name: env\n')
    write(join(ws, 'infra/web/config.yaml'), 'core:\n  name: infra\n')
    const load = () => loadConfig({ workspacePath: ws, env: 'prod', infra: 'web', environment: env })
    expect((await load()).config.core.name).toBe('infra')
    rmSync(join(ws, 'infra/web/config.yaml'))
    expect((await load()).config.core.name).toBe('env')
    rmSync(join(ws, 'config/prod.yaml'))
    expect((await load()).config.core.name).toBe('workspace')
    rmSync(join(ws, 'prov.config.yaml'))
    write(join(ws, 'prov.config.json'), '{}')
    expect((await load()).config.core.name).toBe('user')
    rmSync(join(root, 'xdg/prov/config.yaml'))
    expect((await load()).config.core.name).toBe('system')
    const envWins = await loadConfig({ workspacePath: ws, environment: { PROV_CORE__NAME: 'from-env' }, flags: {} })
    expect(envWins.config.core.name).toBe('from-env')
    const flagWins = await loadConfig({ workspacePath: ws, environment: { PROV_CORE__NAME: 'from-env' }, flags: { 'core.name': 'flag' } })
    expect(flagWins.config.core.name).toBe('flag')
    expect(flagWins.origin('core.name')?.layer).toBe('flags')
  })

  it('replaces arrays and scalars, merges objects', () => {
    const merged = mergeLayers({ a: { list: [3] }, s: 'high' }, { a: { list: [1, 2], keep: true }, s: 'low' })
    expect(merged).toEqual({ a: { list: [3], keep: true }, s: 'high' })
  })

  it('maps PROV_<SECTION>__<KEY> with double-underscore nesting and typed values', () => {
    const layer = envLayer({
      PROV_DEBUG__ENABLED: 'true',
      PROV_SSH__PORT: '2222',
      PROV_DEBUG__LOG_LEVEL: 'debug',
      PROV_ENV: 'x',
      PROV_KMS__RECIPIENTS: '["age1x"]',
    })
    expect(layer.data).toEqual({ debug: { enabled: true, log_level: 'debug' }, ssh: { port: 2222 }, kms: { recipients: ['age1x'] } })
  })

  it('loads a TypeScript workspace config through c12/jiti', async () => {
    const ws = join(root, 'ws')
    write(join(ws, 'prov.config.ts'), "export default { workspace: { name: 'typed' }, ssh: { port: 2200 + 22 } }\n")
    const resolved = await loadConfig({ workspacePath: ws, environment: env })
    expect(resolved.config.workspace.name).toBe('typed')
    expect(resolved.config.ssh.port).toBe(2222)
  })
})

describe('interpolation', () => {
  const layer = (data: Record<string, unknown>) => [{ name: 'defaults' as const, data, lines: new Map() }]
  const defaults = async () => (await collectLayers({ environment: {} }))[0].data

  it('resolves nested references, env with defaults, workspace.path and now.* (E24)', async () => {
    const base = await defaults()
    const resolved = await resolveLayers(
      [
        ...layer(base),
        {
          name: 'workspace',
          source: 'ws.yaml',
          lines: new Map(),
          data: {
            orchestrator: {
              paths: {
                base: '{{workspace.path}}/.orchestrator',
                data_dir: '{{orchestrator.paths.base}}/data',
                queue: '{{orchestrator.paths.data_dir}}/queue.db',
              },
            },
            paths: { home: "{{env.PROV_TEST_HOME || '/fallback'}}", user: '{{env.USER_X}}', date: '{{now.date}}' },
            ssh: { port: '{{orchestrator.port}}' },
          },
        },
      ],
      { workspacePath: '/w', environment: { USER_X: 'alice' } },
    )
    expect(resolved.config.orchestrator.paths.queue).toBe('/w/.orchestrator/data/queue.db')
    expect(resolved.config.paths.home).toBe('/fallback')
    expect(resolved.config.paths.user).toBe('alice')
    expect(resolved.config.paths.date).toMatch(/^\d{4}-\d{2}-\d{2}$/)
    expect(resolved.config.ssh.port).toBe(9090) // a whole-value reference keeps its type
  })

  it('fails fast on an unknown reference, naming key and nearest name', async () => {
    const base = await defaults()
    let error: ProvError | undefined
    try {
      await resolveLayers(
        [...layer(base), { name: 'workspace', source: 'ws.yaml', lines: new Map([['paths.x', 7]]), data: { paths: { x: '{{ssh.prot}}' } } }],
        {},
      )
    } catch (e) {
      error = e as ProvError
    }
    expect(error?.message).toBe("unknown reference '{{ssh.prot}}' in 'paths.x'")
    expect(error?.location).toBe('ws.yaml:7')
    expect(error?.hint).toMatch(/ssh\.port/)
    expect(error?.code).toBe(3)
  })

  it('reports a reference cycle with its chain', async () => {
    const base = await defaults()
    await expect(
      resolveLayers([...layer(base), { name: 'workspace', lines: new Map(), data: { paths: { a: '{{paths.b}}', b: 'x{{paths.c}}', c: '{{paths.a}}' } } }], {}),
    ).rejects.toThrow('interpolation cycle: paths.a -> paths.b -> paths.c -> paths.a')
  })

  it('refuses an unset env variable without default', async () => {
    const base = await defaults()
    await expect(
      resolveLayers([...layer(base), { name: 'workspace', lines: new Map(), data: { paths: { a: '{{env.NOPE_NOT_SET}}' } } }], { environment: {} }),
    ).rejects.toThrow(/NOPE_NOT_SET is not set/)
  })
})

describe('bad config', () => {
  it('names file and line of malformed YAML', async () => {
    const ws = join(root, 'ws')
    write(join(ws, 'prov.config.yaml'), 'workspace:\n  name: ok\ndebug:\n  enabled: [true\n')
    const error = await configError(loadConfig({ workspacePath: ws, environment: env }))
    expect(error.location).toMatch(/prov\.config\.yaml:\d+$/)
    expect(error.message).toMatch(/malformed YAML/)
  })

  it('names file and line of malformed TOML', async () => {
    write(join(root, 'xdg/prov/config.toml'), '[debug]\nenabled = true\nlog_level = \n')
    const error = await configError(loadConfig({ environment: env }))
    expect(error.location).toMatch(/config\.toml:3$/)
  })

  it('names file and line of malformed JSON', async () => {
    const ws = join(root, 'ws')
    write(join(ws, 'prov.config.json'), '{\n  "debug": {\n    "enabled": true,\n  }\n')
    const error = await configError(loadConfig({ workspacePath: ws, environment: env }))
    expect(error.location).toMatch(/prov\.config\.json:\d+$/)
  })

  it('rejects an unknown key with the nearest valid name and its line', async () => {
    const ws = join(root, 'ws')
    write(join(ws, 'prov.config.yaml'), 'workspace:\n  name: ok\ndebug:\n  enabeld: true\n')
    const error = await configError(loadConfig({ workspacePath: ws, environment: env }))
    expect(error.message).toBe("unknown config key 'debug.enabeld'")
    expect(error.hint).toMatch(/'enabled'/)
    expect(error.location).toMatch(/prov\.config\.yaml:4$/)
  })

  it('rejects a wrong type naming key, value and line', async () => {
    const ws = join(root, 'ws')
    write(join(ws, 'prov.config.yaml'), 'ssh:\n  port: "twenty-two"\n')
    const error = await configError(loadConfig({ workspacePath: ws, environment: env }))
    expect(error.message).toMatch(/ssh\.port/)
    expect(error.message).toMatch(/twenty-two/)
    expect(error.location).toMatch(/prov\.config\.yaml:2$/)
  })

  it('validates again after a cached valid config changes, and a cached one skips nothing observable', async () => {
    const ws = join(root, 'ws')
    write(join(ws, 'prov.config.yaml'), 'ssh:\n  port: 2222\n')
    expect((await loadConfig({ workspacePath: ws, environment: env })).config.ssh.port).toBe(2222)
    expect((await loadConfig({ workspacePath: ws, environment: env })).config.ssh.port).toBe(2222)
    write(join(ws, 'prov.config.yaml'), 'ssh:\n  port: "x"\n')
    await configError(loadConfig({ workspacePath: ws, environment: env }))
  })

  it('rejects a wrong type from an environment variable naming the variable', async () => {
    const error = await configError(loadConfig({ environment: { PROV_SSH__PORT: 'abc' } }))
    expect(error.location).toBe('env:PROV_SSH__PORT')
  })
})
