import { mkdirSync, writeFileSync } from 'node:fs'
import { join } from 'node:path'
import { beforeEach, describe, expect, it } from 'vitest'
import { useTempConfigHome } from '../../../tests/helpers/config-home'
import { loadConfig, modeRules } from '../src/config/index'
import { ProvError } from '../src/errors'

const home = useTempConfigHome()
let ws: string
beforeEach(() => {
  ws = join(home.root(), 'ws')
  mkdirSync(ws, { recursive: true })
})

const workspaceWith = (text: string) => writeFileSync(join(ws, 'prov.config.yaml'), `workspace:\n  name: ws\n${text}`)
const load = (flags?: Record<string, unknown>) => loadConfig({ workspacePath: ws, environment: { HOME: home.root() }, flags })

describe('modes', () => {
  it('without a mode there is no mode layer and the mode is solo (the defaults)', async () => {
    workspaceWith('')
    const resolved = await load()
    expect(resolved.config.mode).toBe('solo')
    expect(resolved.layers.map((l) => l.name)).not.toContain('mode')
  })

  it('a chosen mode is a layer right above the defaults, visible in --explain as [mode NAME]', async () => {
    workspaceWith('mode: enterprise\n')
    const resolved = await load()
    expect(resolved.layers.map((l) => l.name).slice(0, 2)).toEqual(['defaults', 'mode'])
    const explained = resolved.explain()
    expect(explained.find((k) => k.key === 'oci.require_signatures')).toMatchObject({ value: true, layer: 'mode', source: 'mode enterprise' })
    expect(explained.find((k) => k.key === 'orchestrator.auth.mode')).toMatchObject({ value: 'jwt', layer: 'mode' })
    expect(explained.find((k) => k.key === 'mode')).toMatchObject({ value: 'enterprise', layer: 'workspace', line: 3 })
  })

  it('any later layer overrides what the mode sets, and the highest layer chooses the mode', async () => {
    workspaceWith('mode: enterprise\noci:\n  require_signatures: false\n')
    let resolved = await load()
    expect(resolved.explain().find((k) => k.key === 'oci.require_signatures')).toMatchObject({ value: false, layer: 'workspace' })
    resolved = await load({ mode: 'solo' })
    expect(resolved.config.mode).toBe('solo')
    expect(resolved.layers.find((l) => l.name === 'mode')?.source).toBe('mode solo')
    expect(resolved.config.orchestrator.auth.mode).toBe('token')
  })

  it('an unknown mode is a configuration error naming the file and the known modes', async () => {
    workspaceWith('mode: yolo\n')
    const error = await load().catch((e: unknown) => e)
    expect(error).toBeInstanceOf(ProvError)
    expect((error as ProvError).code).toBe(3)
    expect((error as ProvError).message).toBe("unknown mode 'yolo'")
    expect((error as ProvError).location).toBe(`${join(ws, 'prov.config.yaml')}:3`)
    expect((error as ProvError).hint).toMatch(/solo, multi-user, ci, enterprise/)
  })

  it('rules: multi-user and enterprise need PostgreSQL and JWT; enterprise also signatures and Vault or AWS KMS', async () => {
    workspaceWith('mode: enterprise\n')
    const broken = modeRules('enterprise', (await load()).config)
    expect(broken.filter((r) => !r.ok).map((r) => r.key)).toEqual(['orchestrator.store', 'kms.backend'])
    workspaceWith('mode: enterprise\norchestrator:\n  store: postgres://prov@db:5432/prov\nkms:\n  backend: vault\n')
    expect(modeRules('enterprise', (await load()).config).every((r) => r.ok)).toBe(true)
    workspaceWith('mode: multi-user\norchestrator:\n  auth:\n    mode: token\n')
    expect(
      modeRules('multi-user', (await load()).config)
        .filter((r) => !r.ok)
        .map((r) => r.rule),
    ).toEqual(['a PostgreSQL store', '--auth jwt'])
    expect(modeRules('solo', (await load()).config)).toEqual([])
  })
})
