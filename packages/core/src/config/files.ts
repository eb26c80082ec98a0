import { existsSync, readFileSync } from 'node:fs'
import { extname } from 'node:path'
import { isMap, isScalar, isSeq, LineCounter, type Node, parseDocument } from 'yaml'
import { configError } from '../errors'

/** A parsed data file plus the line of every key path (dotted) for provenance and messages. */
export interface ParsedFile {
  file: string
  data: Record<string, unknown>
  lines: Map<string, number>
}

export const dataExtensions = ['.yaml', '.yml', '.toml', '.json'] as const
export const codeExtensions = ['.ts', '.mts', '.js', '.mjs'] as const

/** The first existing `<base><ext>` among the extensions, in order. */
export function findConfigFile(base: string, extensions: readonly string[] = dataExtensions): string | undefined {
  for (const ext of extensions) if (existsSync(base + ext)) return base + ext
  return undefined
}

function collectYamlLines(node: Node | null | undefined, prefix: string, counter: LineCounter, lines: Map<string, number>) {
  if (!node) return
  if (isMap(node)) {
    for (const pair of node.items) {
      const key = isScalar(pair.key) ? String(pair.key.value) : String(pair.key)
      const path = prefix ? `${prefix}.${key}` : key
      const range = (pair.key as Node | null)?.range
      if (range) lines.set(path, counter.linePos(range[0]).line)
      collectYamlLines(pair.value as Node, path, counter, lines)
    }
  } else if (isSeq(node)) {
    node.items.forEach((item, index) => {
      const range = (item as Node | null)?.range
      const path = `${prefix}.${index}`
      if (range) lines.set(path, counter.linePos(range[0]).line)
      collectYamlLines(item as Node, path, counter, lines)
    })
  }
}

/** Parses YAML or JSON text with line numbers; errors name `file:line`. */
export function parseYamlText(text: string, file: string): ParsedFile {
  const counter = new LineCounter()
  const doc = parseDocument(text, { lineCounter: counter, uniqueKeys: true, prettyErrors: false })
  const error = doc.errors[0]
  if (error) {
    const line = error.linePos?.[0]?.line ?? counter.linePos(error.pos[0]).line
    throw configError(`malformed ${extname(file) === '.json' ? 'JSON' : 'YAML'}: ${error.message.split('\n')[0]}`, {
      location: `${file}:${line}`,
    })
  }
  let data: unknown
  try {
    data = doc.toJS({ maxAliasCount: 100 }) ?? {}
  } catch (error) {
    throw configError(`malformed YAML: ${(error as Error).message.split('\n')[0]}`, { location: `${file}:1` })
  }
  if (typeof data !== 'object' || Array.isArray(data) || data === null) {
    throw configError('a config file must hold a mapping of sections (key: value)', { location: `${file}:1` })
  }
  const lines = new Map<string, number>()
  collectYamlLines(doc.contents as Node, '', counter, lines)
  return { file, data: data as Record<string, unknown>, lines }
}

/** Line numbers of TOML keys: `[a.b]` headers and `key =` lines (dotted keys included). */
function tomlLines(text: string): Map<string, number> {
  const lines = new Map<string, number>()
  let section = ''
  text.split(/\r?\n/).forEach((raw, index) => {
    const line = raw.trim()
    const header = /^\[\[?\s*([^\]]+?)\s*\]\]?/.exec(line)
    if (header) {
      section = header[1].replace(/["']/g, '')
      lines.set(section, index + 1)
      return
    }
    const assignment = /^([A-Za-z0-9_.\-"' ]+?)\s*=/.exec(line)
    if (assignment) {
      const key = assignment[1].replace(/["'\s]/g, '')
      lines.set(section ? `${section}.${key}` : key, index + 1)
    }
  })
  return lines
}

export async function parseTomlText(text: string, file: string): Promise<ParsedFile> {
  const { parse, TomlError } = await import('smol-toml')
  try {
    const data = parse(text) as Record<string, unknown>
    return { file, data: JSON.parse(JSON.stringify(data)) as Record<string, unknown>, lines: tomlLines(text) }
  } catch (error) {
    if (error instanceof TomlError) {
      throw configError(`malformed TOML: ${error.message.split('\n')[0]}`, { location: `${file}:${error.line}` })
    }
    throw error
  }
}

/** Loads a data config file (YAML, TOML or JSON) by extension. */
export async function loadDataFile(file: string): Promise<ParsedFile> {
  let text: string
  try {
    text = readFileSync(file, 'utf8')
  } catch (error) {
    throw configError(`cannot read config file: ${(error as Error).message}`, { location: file })
  }
  if (extname(file) === '.toml') return parseTomlText(text, file)
  return parseYamlText(text, file)
}

/** Loads a TypeScript/JavaScript config module with c12 (jiti underneath). */
export async function loadCodeFile(file: string): Promise<ParsedFile> {
  const { loadConfig } = await import('c12')
  try {
    const { config } = await loadConfig<Record<string, unknown>>({
      configFile: file,
      rcFile: false,
      globalRc: false,
      dotenv: false,
      packageJson: false,
      envName: false,
    })
    return { file, data: (config ?? {}) as Record<string, unknown>, lines: new Map() }
  } catch (error) {
    throw configError(`cannot load config module: ${(error as Error).message.split('\n')[0]}`, { location: file })
  }
}

export async function loadAnyConfigFile(file: string): Promise<ParsedFile> {
  return (codeExtensions as readonly string[]).includes(extname(file)) ? loadCodeFile(file) : loadDataFile(file)
}
