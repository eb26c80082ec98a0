import { ExitCode, ProvError } from '../errors'
import { yamlLib } from '../lazy'

/**
 * Structural limits of parsed input (stdin records, config files, state files, plans). Parsers and
 * everything downstream of them (merging, validation, redaction, cloning) recurse over the value, so
 * a hostile document nested 100,000 levels deep would crash any of them with a stack overflow; and
 * keys such as `__proto__` reach `Object.prototype` through naive merges and assignments.
 * Both are refused here, once, with one clear error.
 */

/** Deepest nesting of objects and arrays accepted in any input document. */
export const MAX_INPUT_DEPTH = 100

/** Keys that can reach an object's prototype through assignment or merging. */
export const PROTOTYPE_KEYS: ReadonlySet<string> = new Set(['__proto__', 'constructor', 'prototype'])

export interface StructureCheckOptions {
  /** Names the input in messages: `stdin`, a file path, `--set`. */
  source: string
  /** Deepest nesting allowed (default MAX_INPUT_DEPTH). */
  maxDepth?: number
  /** Which keys are refused (default PROTOTYPE_KEYS; an empty set checks depth only). */
  forbiddenKeys?: ReadonlySet<string>
  /** Exit code of a forbidden key (config inputs: 3; records: 2). */
  keyCode?: ExitCode
  /** `file:line` of a dotted key path, when the caller knows lines. */
  locate?: (path: string) => string | undefined
}

const hasOwn = (value: object, key: string) => Object.hasOwn(value, key)

/** The error for input nested deeper than the limit (exit 2). */
export function tooDeepError(source: string, maxDepth = MAX_INPUT_DEPTH): ProvError {
  return new ProvError(ExitCode.USAGE, `${source} is nested too deeply (more than ${maxDepth} levels)`, {
    location: source,
    hint: 'flatten the document; prov never needs that much nesting',
  })
}

/**
 * Walks a parsed value without recursion and throws when it is nested deeper than the limit or
 * holds a prototype key. The path of a bad key is given in dotted form (`a.b.0.__proto__`).
 */
export function assertSafeStructure(value: unknown, options: StructureCheckOptions): void {
  const maxDepth = options.maxDepth ?? MAX_INPUT_DEPTH
  const forbidden = options.forbiddenKeys ?? PROTOTYPE_KEYS
  const stack: { node: unknown; depth: number; path: string }[] = [{ node: value, depth: 0, path: '' }]
  while (stack.length) {
    const { node, depth, path } = stack.pop() as { node: unknown; depth: number; path: string }
    if (node === null || typeof node !== 'object') continue
    if (depth >= maxDepth) throw tooDeepError(options.source, maxDepth)
    if (Array.isArray(node)) {
      for (let i = 0; i < node.length; i++) stack.push({ node: node[i], depth: depth + 1, path: path ? `${path}.${i}` : String(i) })
      continue
    }
    for (const key of Object.keys(node)) {
      const childPath = path ? `${path}.${key}` : key
      if (forbidden.has(key) && hasOwn(node, key)) throw forbiddenKeyError(key, childPath, options)
      stack.push({ node: (node as Record<string, unknown>)[key], depth: depth + 1, path: childPath })
    }
  }
}

function forbiddenKeyError(key: string, path: string, options: StructureCheckOptions): ProvError {
  const where = options.locate?.(path) ?? options.source
  return new ProvError(options.keyCode ?? ExitCode.USAGE, `forbidden key '${key}' in ${options.source} (key path '${path}')`, {
    location: where,
    hint: `'__proto__', 'constructor' and 'prototype' are never valid keys; remove it`,
  })
}

/**
 * Deepest bracket nesting of JSON text, counted without parsing (strings skipped); stops counting
 * once `limit` is passed. Used to refuse a hostile document before any parser sees it.
 */
export function jsonNestingDepth(text: string, limit = MAX_INPUT_DEPTH): number {
  let depth = 0
  let deepest = 0
  let inString = false
  for (let i = 0; i < text.length; i++) {
    const c = text.charCodeAt(i)
    if (inString) {
      if (c === 92 /* \ */) i++
      else if (c === 34 /* " */) inString = false
      continue
    }
    if (c === 34) inString = true
    else if (c === 91 /* [ */ || c === 123 /* { */) {
      depth++
      if (depth > deepest) {
        deepest = depth
        if (deepest > limit) return deepest
      }
    } else if (c === 93 /* ] */ || c === 125 /* } */) depth--
  }
  return deepest
}

/**
 * True for the RangeError V8 throws when a recursive parser runs out of stack, also when a parser
 * caught it and reports it as one of its own errors (the YAML parser does).
 */
export function isStackOverflow(error: unknown): boolean {
  const message = error instanceof Error ? error.message : typeof error === 'string' ? error : ''
  return /maximum call stack size exceeded/i.test(message)
}

/**
 * A cheap upper bound of the nesting of YAML text: per line, the indentation plus the block
 * indicators on it (`- `, `? `, `: `), plus the deepest flow bracket nesting (quotes ignored, so
 * brackets inside strings only make the bound larger).
 */
function yamlNestingBound(text: string): number {
  let bound = 0
  let flow = 0
  let deepestFlow = 0
  let lineStart = true
  let indent = 0
  let indicators = 0
  for (let i = 0; i < text.length; i++) {
    const c = text.charCodeAt(i)
    if (c === 10 /* \n */) {
      bound = Math.max(bound, indent + indicators)
      lineStart = true
      indent = 0
      indicators = 0
      continue
    }
    if (lineStart && c === 32) {
      indent++
      continue
    }
    lineStart = false
    if (c === 91 || c === 123) {
      flow++
      if (flow > deepestFlow) deepestFlow = flow
    } else if (c === 93 || c === 125) flow = Math.max(0, flow - 1)
    else if ((c === 45 /* - */ || c === 63 /* ? */ || c === 58) /* : */ && (text.charCodeAt(i + 1) === 32 || i + 1 === text.length)) indicators++
  }
  return Math.max(bound, indent + indicators) + deepestFlow
}

/** The exact nesting of YAML text from its syntax tree, built without recursion. */
function yamlSyntaxDepth(text: string, limit: number): number {
  const { Parser } = yamlLib()
  let deepest = 0
  for (const token of new Parser().parse(text)) {
    const stack: [unknown, number][] = [[token, 0]]
    while (stack.length) {
      const [node, depth] = stack.pop() as [{ type?: string; value?: unknown; items?: { key?: unknown; value?: unknown }[] } | undefined, number]
      if (!node || typeof node !== 'object') continue
      if (depth > deepest) {
        deepest = depth
        if (deepest > limit) return deepest
      }
      if (node.type === 'document') stack.push([node.value, depth])
      else if (node.type === 'block-map' || node.type === 'block-seq' || node.type === 'flow-collection') {
        for (const item of node.items ?? []) stack.push([item.key, depth + 1], [item.value, depth + 1])
      }
    }
  }
  return deepest
}

/**
 * Refuses YAML (or JSON) text nested deeper than the limit before it is composed: the YAML
 * composer recurses per level, and running out of stack inside it can abort the process instead of
 * throwing. Ordinary documents pass on a linear scan; only suspicious ones get the syntax-tree check.
 */
export function assertYamlDepth(text: string, source: string, maxDepth = MAX_INPUT_DEPTH): void {
  if (yamlNestingBound(text) <= maxDepth) return
  if (/^\s*[[{]/.test(text) && jsonNestingDepth(text, maxDepth) > maxDepth) throw tooDeepError(source, maxDepth)
  if (yamlSyntaxDepth(text, maxDepth) > maxDepth) throw tooDeepError(source, maxDepth)
}
