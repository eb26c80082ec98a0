import { mkdirSync, writeFileSync } from 'node:fs'
import { join } from 'node:path'
import { describe, expect, it } from 'vitest'
import { useTempConfigHome } from '../../../tests/helpers/config-home'
import { probeConfigSettings } from '../src/config/probe'
import { registryMayName } from '../src/workspace'

// The settings read before a command runs are screened from the files' text before any is parsed;
// these pin that the screen never hides a setting a parse would find.
const home = useTempConfigHome('prov-probe-')

function write(path: string, text: string) {
  mkdirSync(join(path, '..'), { recursive: true })
  writeFileSync(path, text)
}

function workspace(name: string, config = 'workspace:\n  name: ws\n'): string {
  const path = join(home.root(), name)
  write(join(path, 'prov.config.yaml'), config)
  return path
}

const registry = (text: string) => write(join(home.root(), 'xdg', 'prov', 'workspaces.yaml'), text)

describe('settings probe', () => {
  it('finds output.format and limits.input_bytes in any layer, by path or by registered name', async () => {
    const ws = workspace('a', 'output:\n  format: yaml\nlimits:\n  input_bytes: 4096\n')
    registry(`workspaces:\n  - name: a\n    path: ${ws}\n    created: 2026-01-01T00:00:00.000Z\nactive: a\n`)
    expect(await probeConfigSettings({ workspace: ws })).toEqual({
      outputFormat: 'yaml',
      outputFormatSource: `${join(ws, 'prov.config.yaml')}:2`,
      inputBytes: 4096,
      mode: 'solo',
    })
    expect((await probeConfigSettings({ workspace: 'a' })).outputFormat).toBe('yaml')
  })

  it('reads a user layer when the workspace file says nothing, and the infra layer above it', async () => {
    write(join(home.root(), 'xdg', 'prov', 'config.toml'), '[output]\nformat = "ndjson"\n')
    const ws = workspace('b')
    expect((await probeConfigSettings({ workspace: ws })).outputFormat).toBe('ndjson')
    write(join(ws, 'infra', 'demo', 'config.json'), '{"output": {"format": "json"}}')
    expect((await probeConfigSettings({ workspace: ws, infra: 'demo' })).outputFormat).toBe('json')
  })

  it('finds a key spelled through escapes', async () => {
    const ws = join(home.root(), 'c')
    write(join(ws, 'prov.config.json'), '{"output": {"form\\u0061t": "yaml"}}')
    expect((await probeConfigSettings({ workspace: ws })).outputFormat).toBe('yaml')
    const quoted = workspace('d', 'output:\n  "form\\x61t": ndjson\n')
    expect((await probeConfigSettings({ workspace: quoted })).outputFormat).toBe('ndjson')
  })

  it('finds the mode a command runs in: a top-level key of a file (YAML, TOML, JSON), never a nested one', async () => {
    expect((await probeConfigSettings({ workspace: workspace('m1', 'mode: ci\n') })).mode).toBe('ci')
    expect((await probeConfigSettings({ workspace: workspace('m2', 'orchestrator:\n  auth:\n    mode: jwt\n') })).mode).toBe('solo')
    const toml = join(home.root(), 'm3')
    write(join(toml, 'prov.config.toml'), 'mode = "ci"\n[workspace]\nname = "m3"\n')
    expect((await probeConfigSettings({ workspace: toml })).mode).toBe('ci')
    const json = join(home.root(), 'm4')
    write(join(json, 'prov.config.json'), '{"workspace": {"name": "m4"}, "mode": "ci"}')
    expect((await probeConfigSettings({ workspace: json })).mode).toBe('ci')
  })

  it('follows a registry entry named like the path given, as the command itself does', async () => {
    const elsewhere = workspace('e', 'output:\n  format: yaml\n')
    const given = workspace('f')
    registry(`workspaces:\n  - name: ${given}\n    path: ${elsewhere}\n    created: 2026-01-01T00:00:00.000Z\n`)
    expect((await probeConfigSettings({ workspace: given })).outputFormat).toBe('yaml')
  })

  it('answers the defaults when nothing sets the keys, and parses a file that could set one (a broken one fails)', async () => {
    const ws = workspace('g')
    registry(`workspaces:\n  - name: g\n    path: ${ws}\n    created: 2026-01-01T00:00:00.000Z\n`)
    expect(await probeConfigSettings({ workspace: ws })).toEqual({
      outputFormat: undefined,
      outputFormatSource: 'built-in',
      inputBytes: 64 * 1024 * 1024,
      mode: 'solo',
    })
    const broken = workspace('h', 'output:\n  format: yaml\n  format: json\n')
    await expect(probeConfigSettings({ workspace: broken })).rejects.toThrow(/malformed YAML: Map keys must be unique/)
  })
})

describe('registryMayName', () => {
  it('is false only when the name stands as nothing but whole path values', () => {
    expect(registryMayName('/srv/ws')).toBe(false)
    registry('workspaces:\n  - name: ws\n    path: /srv/ws\n    created: 2026-01-01T00:00:00.000Z\n  - path: "/srv/ws"\n    name: other\n')
    expect(registryMayName('/srv/ws')).toBe(false)
    expect(registryMayName('ws')).toBe(true)
    expect(registryMayName('/srv/w')).toBe(true)
  })

  it('is true where YAML could spell the name another way', () => {
    registry('workspaces:\n  - {name: /srv/ws, path: /srv/ws}\n')
    expect(registryMayName('/srv/ws')).toBe(true)
    registry('workspaces:\n  - name: "/srv/\\x77s"\n    path: /srv/other\n')
    expect(registryMayName('/srv/ws')).toBe(true)
    registry('workspaces:\n  - name: &p /srv/ws\n    path: *p\n')
    expect(registryMayName('/srv/ws')).toBe(true)
    registry('workspaces:\n  - name: ws\n    path: /srv/ws\n')
    expect(registryMayName('/srv/my ws')).toBe(true)
  })
})
