/** Reading and writing SOPS files as ordered trees (Maps keep key order, which the MAC depends on). */
import { basename, extname } from 'node:path'
import { assertYamlDepth, isStackOverflow, jsonNestingDepth, MAX_INPUT_DEPTH, tooDeepError, usageError } from '@prov/core'
import type { SopsMap, SopsValue } from './cipher'

export type SopsFormat = 'yaml' | 'json' | 'dotenv'

export function detectFormat(path: string, override?: string): SopsFormat {
  if (override) {
    if (override === 'yaml' || override === 'json' || override === 'dotenv') return override
    throw usageError(`unknown input type '${override}'`, { location: '--input-type', hint: 'use yaml, json or dotenv' })
  }
  const ext = extname(path).toLowerCase()
  const name = basename(path).toLowerCase()
  if (ext === '.json') return 'json'
  if (ext === '.env' || name === '.env' || name.startsWith('.env.') || ext === '.dotenv') return 'dotenv'
  if (ext === '.yaml' || ext === '.yml') return 'yaml'
  throw usageError(`cannot tell the format of ${path}`, { location: path, hint: 'name it .yaml, .json or .env, or pass --input-type' })
}

function toTree(value: unknown): SopsValue {
  if (value instanceof Map) {
    const out: SopsMap = new Map()
    for (const [k, v] of value) out.set(String(k), toTree(v))
    return out
  }
  if (Array.isArray(value)) return value.map(toTree)
  if (value === undefined || value === null) return null
  if (typeof value === 'string' || typeof value === 'number' || typeof value === 'boolean') return value
  if (value instanceof Date) return value.toISOString()
  if (value instanceof Uint8Array) return Buffer.from(value).toString('base64')
  return String(value)
}

/**
 * Refuses a tree (Maps and arrays) nested deeper than any SOPS file needs, without recursion:
 * encrypting, decrypting, hashing and writing all walk the tree recursively.
 */
export function assertTreeDepth(tree: unknown, source: string): void {
  const stack: Array<[unknown, number]> = [[tree, 0]]
  while (stack.length) {
    const [node, depth] = stack.pop() as [unknown, number]
    const children = node instanceof Map ? [...node.values()] : Array.isArray(node) ? node : undefined
    if (!children) continue
    if (depth >= MAX_INPUT_DEPTH) throw tooDeepError(source)
    for (const child of children) stack.push([child, depth + 1])
  }
}

export async function parseTree(text: string, format: SopsFormat, source: string): Promise<SopsMap> {
  if (format === 'dotenv') return parseDotenv(text, source)
  const { parseDocument } = await import('yaml')
  if (format === 'json') {
    // JSON.parse copes with any depth, the YAML parser and the tree walks do not: refuse first.
    if (jsonNestingDepth(text) > MAX_INPUT_DEPTH) throw tooDeepError(source)
    try {
      JSON.parse(text)
    } catch (error) {
      throw usageError(`${source} is not valid JSON: ${(error as Error).message}`, { location: source })
    }
  } else assertYamlDepth(text, source)
  const doc = parseDocument(text, { uniqueKeys: true, prettyErrors: false })
  if (doc.errors.length) {
    const error = doc.errors[0]
    if (isStackOverflow(error)) throw tooDeepError(source)
    const line = error.linePos?.[0]?.line
    throw usageError(`${source} is not valid ${format.toUpperCase()}: ${error.message.split('\n')[0]}`, { location: line ? `${source}:${line}` : source })
  }
  let value: SopsValue
  try {
    value = toTree(doc.toJS({ mapAsMap: true, maxAliasCount: 100 }))
  } catch (error) {
    if (isStackOverflow(error)) throw tooDeepError(source)
    throw usageError(`${source} is not valid ${format.toUpperCase()}: ${(error as Error).message.split('\n')[0]}`, { location: source })
  }
  assertTreeDepth(value, source)
  if (value === null) return new Map()
  if (!(value instanceof Map)) throw usageError(`${source} must hold a mapping at the top level`, { location: source })
  return value
}

function parseDotenv(text: string, source: string): SopsMap {
  const tree: SopsMap = new Map()
  const lines = text.split('\n')
  for (let i = 0; i < lines.length; i++) {
    const line = lines[i].replace(/\r$/, '')
    if (!line || line.startsWith('#')) continue
    const eq = line.indexOf('=')
    if (eq <= 0) throw usageError(`${source} has an invalid dotenv line (no KEY=)`, { location: `${source}:${i + 1}` })
    tree.set(line.slice(0, eq), line.slice(eq + 1).replace(/\\n/g, '\n'))
  }
  return tree
}

function jsonString(value: SopsValue, indent: string): string {
  if (value instanceof Map) {
    if (!value.size) return '{}'
    const inner = `${indent}    `
    return `{\n${[...value].map(([k, v]) => `${inner}${JSON.stringify(k)}: ${jsonString(v, inner)}`).join(',\n')}\n${indent}}`
  }
  if (Array.isArray(value)) {
    if (!value.length) return '[]'
    const inner = `${indent}    `
    return `[\n${value.map((v) => `${inner}${jsonString(v, inner)}`).join(',\n')}\n${indent}]`
  }
  return JSON.stringify(value)
}

export async function emitTree(tree: SopsMap, format: SopsFormat): Promise<string> {
  if (format === 'json') return `${jsonString(tree, '')}\n`
  if (format === 'dotenv') {
    const lines: string[] = []
    for (const [key, value] of tree) {
      if (value instanceof Map || Array.isArray(value)) throw usageError(`dotenv files cannot hold nested values (key ${key})`)
      lines.push(`${key}=${value === null ? '' : String(value).replace(/\n/g, '\\n')}`)
    }
    return `${lines.join('\n')}\n`
  }
  const { stringify } = await import('yaml')
  return stringify(tree, { lineWidth: 0 })
}

/** sops' flattening of metadata for dotenv: age[0].enc -> age__list_0__map_enc. */
export function flattenMetadata(value: SopsValue, prefix: string, out: Array<[string, string]>): void {
  if (value instanceof Map) {
    for (const [k, v] of value) flattenMetadata(v, prefix ? `${prefix}__map_${k}` : k, out)
  } else if (Array.isArray(value)) {
    for (let i = 0; i < value.length; i++) flattenMetadata(value[i], `${prefix}__list_${i}`, out)
  } else if (value !== null) {
    out.push([prefix, String(value)])
  }
}

export function unflattenMetadata(entries: Array<[string, string]>, source = 'sops metadata'): SopsMap {
  const root: SopsMap = new Map()
  for (const [flat, value] of entries) {
    const tokens = flat.split(/(__map_|__list_)/)
    if (tokens.length > 2 * MAX_INPUT_DEPTH) throw tooDeepError(source)
    // A list index names one of the entries: anything larger would only make a huge sparse list.
    for (let i = 1; i < tokens.length; i += 2) {
      if (tokens[i] === '__list_' && !(/^\d{1,6}$/.test(tokens[i + 1]) && Number(tokens[i + 1]) < entries.length)) {
        throw usageError(`bad sops metadata key 'sops_${flat}'`, { location: source, hint: 'the dotenv file was edited by hand; restore it' })
      }
    }
    let node: SopsMap | SopsValue[] = root
    let key: string | number = tokens[0]
    for (let i = 1; i < tokens.length; i += 2) {
      const nextKey: string | number = tokens[i] === '__list_' ? Number(tokens[i + 1]) : tokens[i + 1]
      const existing: SopsValue | undefined = node instanceof Map ? node.get(key as string) : node[key as number]
      let child = existing
      if (!(child instanceof Map) && !Array.isArray(child)) {
        child = typeof nextKey === 'number' ? [] : new Map()
        if (node instanceof Map) node.set(key as string, child)
        else node[key as number] = child
      }
      node = child as SopsMap | SopsValue[]
      key = nextKey
    }
    if (node instanceof Map) node.set(key as string, value)
    else node[key as number] = value
  }
  return root
}
