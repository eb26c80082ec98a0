import { existsSync, readFileSync, statSync } from 'node:fs'
import { extname } from 'node:path'
import type { LineCounter, Node, ScalarTag } from 'yaml'
import { configError, ExitCode, isProvError } from '../errors'
import { yamlLib } from '../lazy'
import { formatBytes, MAX_CONFIG_FILE_BYTES } from '../limits'
import { assertSafeStructure, assertYamlDepth, isStackOverflow, tooDeepError } from '../util/structure'

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
  const { isMap, isScalar, isSeq } = yamlLib()
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

const noKeys: ReadonlySet<string> = new Set()

/**
 * The structural checks every config file passes: not nested deeper than MAX_INPUT_DEPTH (exit 2),
 * no `__proto__`/`constructor`/`prototype` keys (exit 3, at the key's line when known).
 */
function checkConfigStructure(parsed: ParsedFile, lines?: Map<string, number>): void {
  assertSafeStructure(parsed.data, { source: parsed.file, forbiddenKeys: noKeys })
  assertSafeStructure(parsed.data, {
    source: parsed.file,
    keyCode: ExitCode.CONFIG,
    locate: (path) => {
      const line = (lines ?? parsed.lines).get(path)
      return line ? `${parsed.file}:${line}` : parsed.file
    },
  })
}

/** Runs a parser; a stack overflow (hostile nesting) becomes the "nested too deeply" error. */
function guardDepth<T>(file: string, parse: () => T): T {
  try {
    return parse()
  } catch (error) {
    if (isStackOverflow(error)) throw tooDeepError(file)
    throw error
  }
}

/** Parses YAML or JSON text with line numbers; errors name `file:line`. */
/**
 * YAML 1.2 reads `0o640` as the number 416, and a file mode written that way would then be read
 * digit by digit like `640` is: the literal is kept as written ('0o640'), so a mode field reads it
 * as octal and a number field refuses it by name instead of taking another value.
 */
const octalAsWritten: ScalarTag = {
  identify: () => false,
  default: true,
  tag: 'tag:yaml.org,2002:int',
  format: 'OCT',
  test: /^0o[0-7]+$/,
  resolve: (text: string) => text,
}

export function parseYamlText(text: string, file: string): ParsedFile {
  assertYamlDepth(text, file)
  return guardDepth(file, () => parseYamlUnchecked(text, file))
}

function parseYamlUnchecked(text: string, file: string): ParsedFile {
  const { LineCounter, parseDocument } = yamlLib()
  const counter = new LineCounter()
  const doc = parseDocument(text, {
    lineCounter: counter,
    uniqueKeys: true,
    prettyErrors: false,
    customTags: (tags) => [octalAsWritten, ...(tags as ScalarTag[])],
  })
  const error = doc.errors[0]
  if (error && isStackOverflow(error)) throw tooDeepError(file)
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
    if (isStackOverflow(error)) throw tooDeepError(file)
    throw configError(`malformed YAML: ${(error as Error).message.split('\n')[0]}`, { location: `${file}:1` })
  }
  if (typeof data !== 'object' || Array.isArray(data) || data === null) {
    throw configError('a config file must hold a mapping of sections (key: value)', { location: `${file}:1` })
  }
  // Depth first: collecting line numbers recurses over the document.
  assertSafeStructure(data, { source: file, forbiddenKeys: noKeys })
  const lines = new Map<string, number>()
  collectYamlLines(doc.contents as Node, '', counter, lines)
  const parsed = { file, data: data as Record<string, unknown>, lines }
  checkConfigStructure(parsed)
  return parsed
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
    const data = guardDepth(file, () => parse(text) as Record<string, unknown>)
    assertSafeStructure(data, { source: file, forbiddenKeys: noKeys })
    const parsed = { file, data: JSON.parse(JSON.stringify(data)) as Record<string, unknown>, lines: tomlLines(text) }
    checkConfigStructure(parsed)
    return parsed
  } catch (error) {
    if (error instanceof TomlError && /excessively nested/i.test(error.message)) throw tooDeepError(file)
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
    const size = statSync(file).size
    if (size > MAX_CONFIG_FILE_BYTES) {
      throw configError(`config file is larger than ${formatBytes(MAX_CONFIG_FILE_BYTES)} (${size} bytes)`, {
        location: file,
        hint: 'configuration files are small; split data into infra/ files',
      })
    }
    text = readFileSync(file, 'utf8')
  } catch (error) {
    if (isProvError(error)) throw error
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
    const parsed = { file, data: (config ?? {}) as Record<string, unknown>, lines: new Map<string, number>() }
    checkConfigStructure(parsed)
    return parsed
  } catch (error) {
    if (isProvError(error)) throw error
    if (isStackOverflow(error)) throw tooDeepError(file)
    throw configError(`cannot load config module: ${(error as Error).message.split('\n')[0]}`, { location: file })
  }
}

const parsedFiles = new Map<string, { stamp: string; parsed: Promise<ParsedFile> }>()

/**
 * Loads a config file of any supported kind. Parsed files are kept for the life of the process
 * (keyed by path, size and modification time): settings read before a command runs and the
 * command's own configuration load parse each file once.
 */
export async function loadAnyConfigFile(file: string): Promise<ParsedFile> {
  let stamp: string
  try {
    const stat = statSync(file)
    stamp = `${stat.size}:${stat.mtimeMs}`
  } catch {
    stamp = 'missing'
  }
  const cached = parsedFiles.get(file)
  if (cached && cached.stamp === stamp) return cached.parsed.then(copyParsed)
  const parsed = (codeExtensions as readonly string[]).includes(extname(file)) ? loadCodeFile(file) : loadDataFile(file)
  parsedFiles.set(file, { stamp, parsed })
  parsed.catch(() => parsedFiles.delete(file))
  return parsed.then(copyParsed)
}

/** Callers may change the data they get (interpolation works on copies, but layers are shared). */
const copyParsed = (parsed: ParsedFile): ParsedFile => ({ file: parsed.file, data: structuredClone(parsed.data), lines: parsed.lines })

/**
 * The text of a YAML or JSON configuration file with top-level `key` set to `value`. YAML is
 * edited as a document, so the comments and layout of the rest of the file stay as they are.
 * Other formats (TOML, code) are not rewritten: undefined.
 */
export function withTopLevelKey(file: string, text: string, key: string, value: unknown): string | undefined {
  if (/\.json$/.test(file)) return `${JSON.stringify({ ...(JSON.parse(text) as Record<string, unknown>), [key]: value }, null, 2)}\n`
  if (!/\.ya?ml$/.test(file)) return undefined
  const doc = yamlLib().parseDocument(text)
  doc.set(key, value)
  return doc.toString()
}
