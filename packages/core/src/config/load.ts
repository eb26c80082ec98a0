import { createHash } from 'node:crypto'
import { existsSync, mkdirSync, statSync, writeFileSync } from 'node:fs'
import { homedir } from 'node:os'
import { join } from 'node:path'
import { fileURLToPath } from 'node:url'
import { configError, ExitCode } from '../errors'
import { setConfiguredInputLimit } from '../limits'
import { systemConfigDir, userConfigDir } from '../paths'
import { assertSafeStructure, PROTOTYPE_KEYS } from '../util/structure'
import { PROV_VERSION } from '../version'
import { defaultConfig } from './defaults'
import { codeExtensions, dataExtensions, findConfigFile, loadAnyConfigFile, type ParsedFile } from './files'
import { interpolateConfig } from './interpolate'
import { flattenLeaves, getPath, isPlainObject, mergeLayers, setPath } from './merge'
import { isMode, MODES, modePresets } from './modes'
import type { ProvConfig } from './schema'

/** The configuration layers, lowest priority first (docs/configuration.md); `mode` only when a mode is chosen. */
export const layerNames = ['defaults', 'mode', 'system', 'user', 'workspace', 'environment', 'infra', 'env', 'flags'] as const
export type LayerName = (typeof layerNames)[number]

export interface ConfigLayer {
  name: LayerName
  /** File the layer came from (`env:NAME` for environment variables, `--flag` for flags). */
  source?: string
  data: Record<string, unknown>
  /** Line of each dotted key in `source`, where known. */
  lines: Map<string, number>
}

export interface Origin {
  layer: LayerName
  source?: string
  line?: number
}

export interface ExplainedKey {
  key: string
  value: unknown
  layer: LayerName
  source?: string
  line?: number
}

export interface LoadConfigOptions {
  /** Workspace root; without one only defaults, system, user, env and flags apply. */
  workspacePath?: string
  /** Environment overlay name (config/<env>.*). */
  env?: string
  /** Infrastructure name (infra/<name>/config.*). */
  infra?: string
  /** Layer 8: values from command-line flags, nested or dotted (`debug.enabled`). */
  flags?: Record<string, unknown>
  /** Environment variables (default process.env). */
  environment?: NodeJS.ProcessEnv
  /** Resolve `{{...}}` (default true). */
  interpolate?: boolean
  /** Validate against the schema (default true). */
  validate?: boolean
  /** Extra sources for tests and benchmarks: replaces the file lookup of a layer. */
  overrideLayers?: Partial<Record<LayerName, Record<string, unknown>>>
}

export interface ResolvedConfig {
  config: ProvConfig
  /** Merged, before interpolation. */
  raw: Record<string, unknown>
  layers: ConfigLayer[]
  origin(key: string): Origin | undefined
  /** Every resolved leaf key with the layer (file, line) it came from. */
  explain(): ExplainedKey[]
}

const ENV_PREFIX = 'PROV_'

/**
 * Top-level keys a variable may set without a section: a CI job sets its mode in its environment.
 * Other top-level PROV_* names (PROV_WORKSPACE, PROV_ENV, ...) are options of their own, not keys.
 */
const TOP_LEVEL_ENV: Record<string, string> = { PROV_MODE: 'mode' }

/** `PROV_DEBUG__ENABLED=true` -> { debug: { enabled: true } }. Double underscore = nesting. */
export function envLayer(environment: NodeJS.ProcessEnv): ConfigLayer {
  const data: Record<string, unknown> = {}
  const lines = new Map<string, number>()
  const sources: Record<string, string> = {}
  for (const [name, raw] of Object.entries(environment)) {
    if (raw !== undefined && TOP_LEVEL_ENV[name]) {
      data[TOP_LEVEL_ENV[name]] = raw.trim()
      sources[TOP_LEVEL_ENV[name]] = name
      continue
    }
    if (!name.startsWith(ENV_PREFIX) || !name.includes('__') || raw === undefined) continue
    const path = name
      .slice(ENV_PREFIX.length)
      .split('__')
      .map((part) => part.toLowerCase())
      .join('.')
    if (path.split('.').some((p) => !p)) {
      // `PROV___PROTO____X` splits into empty parts around `__PROTO__`: refuse it like a spelled-out key.
      if (/(^|_)_?PROTO_?(_|$)/i.test(name.slice(ENV_PREFIX.length))) throw envKeyError(name, '__proto__')
      continue
    }
    const bad = path.split('.').find((part) => PROTOTYPE_KEYS.has(part))
    if (bad) throw envKeyError(name, bad)
    const value = parseEnvValue(raw)
    assertSafeStructure(value, { source: `env:${name}`, keyCode: ExitCode.CONFIG })
    setPath(data, path, value)
    sources[path] = name
  }
  const layer: ConfigLayer & { envNames: Record<string, string> } = { name: 'env', source: 'environment', data, lines, envNames: sources }
  return layer
}

function envKeyError(name: string, key: string) {
  return configError(`forbidden key '${key}' in environment variable ${name}`, {
    location: `env:${name}`,
    hint: `'__proto__', 'constructor' and 'prototype' are never valid config keys; unset ${name}`,
  })
}

function parseEnvValue(raw: string): unknown {
  const text = raw.trim()
  if (text === 'true') return true
  if (text === 'false') return false
  if (/^-?\d+(\.\d+)?$/.test(text) && text.length < 16) return Number(text)
  if (/^[[{]/.test(text)) {
    try {
      return JSON.parse(text)
    } catch {
      return raw
    }
  }
  return raw
}

function fileLayer(name: LayerName, parsed: ParsedFile): ConfigLayer {
  return { name, source: parsed.file, data: parsed.data, lines: parsed.lines }
}

function normaliseFlags(flags: Record<string, unknown>): Record<string, unknown> {
  const out: Record<string, unknown> = {}
  for (const [key, value] of Object.entries(flags)) {
    if (value === undefined) continue
    if (isPlainObject(value)) out[key] = mergeLayers(normaliseFlags(value), (out[key] as Record<string, unknown>) ?? {})
    else setPath(out, key, value)
  }
  return out
}

/** How collectLayers reads a layer's file; undefined leaves the layer out. */
export type LayerFileReader = (file: string) => Promise<ParsedFile | undefined>

async function loadLayerFile(name: LayerName, base: string, extensions: readonly string[], read: LayerFileReader): Promise<ConfigLayer | undefined> {
  const file = findConfigFile(base, extensions)
  if (!file) return undefined
  const parsed = await read(file)
  return parsed && fileLayer(name, parsed)
}

/**
 * Collects the layers that exist, lowest priority first. `read` parses each layer's file (a
 * caller that only needs to know which files exist passes one that parses nothing).
 */
export async function collectLayers(options: LoadConfigOptions = {}, read: LayerFileReader = loadAnyConfigFile): Promise<ConfigLayer[]> {
  const environment = options.environment ?? process.env
  const override = options.overrideLayers ?? {}
  const layers: ConfigLayer[] = [{ name: 'defaults', source: 'built-in', data: structuredClone(defaultConfig) as Record<string, unknown>, lines: new Map() }]
  const push = (layer: ConfigLayer | undefined) => layer && layers.push(layer)
  const fromOverride = (name: LayerName) => (override[name] ? { name, source: `${name} (given)`, data: override[name], lines: new Map() } : undefined)

  push(fromOverride('system') ?? (await loadLayerFile('system', join(systemConfigDir(), 'config'), dataExtensions, read)))
  push(fromOverride('user') ?? (await loadLayerFile('user', join(userConfigDir(), 'config'), dataExtensions, read)))
  if (options.workspacePath) {
    const ws = options.workspacePath
    push(fromOverride('workspace') ?? (await loadLayerFile('workspace', join(ws, 'prov.config'), [...codeExtensions, ...dataExtensions], read)))
    if (options.env) {
      if (!/^[A-Za-z0-9_-]+$/.test(options.env)) throw configError(`invalid environment name '${options.env}'`, { location: '--env' })
      push(fromOverride('environment') ?? (await loadLayerFile('environment', join(ws, 'config', options.env), dataExtensions, read)))
    }
    if (options.infra) {
      if (!/^[A-Za-z0-9_.-]+$/.test(options.infra)) throw configError(`invalid infrastructure name '${options.infra}'`, { location: '--infra' })
      push(fromOverride('infra') ?? (await loadLayerFile('infra', join(ws, 'infra', options.infra, 'config'), dataExtensions, read)))
    }
  } else {
    push(fromOverride('workspace'))
    push(fromOverride('environment'))
    push(fromOverride('infra'))
  }
  const env = fromOverride('env') ?? envLayer(environment)
  if (Object.keys(env.data).length) layers.push(env)
  if (options.flags && Object.keys(options.flags).length) {
    layers.push({ name: 'flags', source: 'command line', data: normaliseFlags(options.flags), lines: new Map() })
  }
  const mode = modeLayer(layers)
  if (mode) layers.splice(1, 0, mode)
  return layers
}

/**
 * The preset of the chosen mode (`mode:` in the highest layer that sets it) as a layer right above
 * the defaults: every file, variable or flag still overrides what the mode sets.
 */
function modeLayer(layers: ConfigLayer[]): ConfigLayer | undefined {
  const chosen = [...layers].reverse().find((l) => l.name !== 'defaults' && l.data.mode !== undefined)
  if (!chosen) return undefined
  const mode = chosen.data.mode
  if (!isMode(mode)) {
    throw configError(`unknown mode '${String(mode)}'`, {
      location: locateIn([chosen], 'mode') ?? 'mode',
      hint: `one of ${MODES.join(', ')} (prov mode set NAME)`,
    })
  }
  return { name: 'mode', source: `mode ${mode}`, data: structuredClone(modePresets[mode]), lines: new Map() }
}

/** Which layer set each leaf: walk low -> high; a higher scalar/array replaces the whole subtree. */
function computeOrigins(layers: ConfigLayer[]): Map<string, Origin> {
  const origins = new Map<string, Origin>()
  for (const layer of layers) {
    const envNames = (layer as ConfigLayer & { envNames?: Record<string, string> }).envNames
    for (const [key, value] of flattenLeaves(layer.data)) {
      if (value === null || value === undefined) continue
      for (const existing of [...origins.keys()]) if (existing.startsWith(`${key}.`)) origins.delete(existing)
      // A leaf replacing a parent object's origin entry.
      const parts = key.split('.')
      for (let i = 1; i < parts.length; i++) origins.delete(parts.slice(0, i).join('.'))
      origins.set(key, {
        layer: layer.name,
        source: envNames?.[key] ? `env:${envNames[key]}` : layer.source,
        line: layer.lines.get(key),
      })
    }
  }
  return origins
}

/** `file:line` of the highest layer that sets `key` (or its nearest parent). */
export function locateIn(layers: ConfigLayer[], key: string): string | undefined {
  let probe = key
  for (;;) {
    for (let i = layers.length - 1; i >= 0; i--) {
      const layer = layers[i]
      if (getPath(layer.data, probe) === undefined) continue
      const envNames = (layer as ConfigLayer & { envNames?: Record<string, string> }).envNames
      const envName = envNames && Object.entries(envNames).find(([path]) => path === probe || path.startsWith(`${probe}.`))?.[1]
      if (envName) return `env:${envName}`
      const line = layer.lines.get(probe)
      return line ? `${layer.source}:${line}` : layer.source
    }
    const dot = probe.lastIndexOf('.')
    if (dot < 0) return undefined
    probe = probe.slice(0, dot)
  }
}

/** Loads, merges, interpolates and validates the configuration. */
export async function loadConfig(options: LoadConfigOptions = {}): Promise<ResolvedConfig> {
  const layers = await collectLayers(options)
  return resolveLayers(layers, options)
}

/**
 * Validation answers are remembered per exact config content (and build), so commands whose
 * configuration has not changed skip loading the schema library at all (cold start, P1).
 */
function validationCacheDir(): string {
  return join(process.env.XDG_CACHE_HOME || join(homedir(), '.cache'), 'prov', 'config-valid')
}

let buildStamp: string | undefined
function validationKey(config: Record<string, unknown>): string {
  if (buildStamp === undefined) {
    try {
      buildStamp = String(statSync(fileURLToPath(import.meta.url)).mtimeMs)
    } catch {
      buildStamp = 'unknown'
    }
  }
  return createHash('sha256')
    .update(`${PROV_VERSION}\u0000${buildStamp}\u0000${JSON.stringify(config)}`)
    .digest('hex')
}

async function validateCached(config: Record<string, unknown>, layers: ConfigLayer[]): Promise<ProvConfig> {
  const marker = join(validationCacheDir(), validationKey(config))
  if (existsSync(marker)) return config as ProvConfig
  const { validateConfig } = await import('./validate')
  const valid = validateConfig(config, layers)
  try {
    mkdirSync(validationCacheDir(), { recursive: true })
    writeFileSync(marker, '')
  } catch {
    // a read-only cache only costs speed
  }
  return valid
}

/** Merge + interpolate + validate given layers (in process; no I/O but the validation cache). */
export async function resolveLayers(layers: ConfigLayer[], options: LoadConfigOptions = {}): Promise<ResolvedConfig> {
  const raw = mergeLayers({}, ...[...layers].reverse().map((l) => l.data)) as Record<string, unknown>
  const origins = computeOrigins(layers)
  const interpolated =
    options.interpolate === false
      ? raw
      : interpolateConfig(raw, {
          workspacePath: options.workspacePath,
          env: options.environment ?? process.env,
          locate: (key) => locateIn(layers, key),
        })
  const config = options.validate === false ? (interpolated as ProvConfig) : await validateCached(interpolated, layers)
  if (typeof config.limits?.input_bytes === 'number') setConfiguredInputLimit(config.limits.input_bytes)
  return {
    config,
    raw,
    layers,
    origin: (key) => origins.get(key),
    explain: () =>
      [...flattenLeaves(interpolated as Record<string, unknown>)].map(([key, value]) => {
        const origin = origins.get(key) ?? { layer: 'defaults' as LayerName }
        return { key, value, layer: origin.layer, ...(origin.source ? { source: origin.source } : {}), ...(origin.line ? { line: origin.line } : {}) }
      }),
  }
}
