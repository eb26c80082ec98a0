import { execFileSync } from 'node:child_process'
import { configError } from '../errors'
import { didYouMean } from '../suggest'
import { flattenLeaves, getPath, isPlainObject } from './merge'

/** Values the special roots `workspace.*`, `now.*`, `git.*` and `env.*` provide. */
export interface InterpolationContext {
  workspacePath?: string
  env?: NodeJS.ProcessEnv
  now?: Date
  /** Where `git.*` is read (defaults to the workspace). */
  gitDir?: string
  /** Describes where a key was set, for messages (`file:line`). */
  locate?: (key: string) => string | undefined
}

type Term = { kind: 'ref'; path: string } | { kind: 'literal'; value: string | number | boolean }

const refPattern = /^[A-Za-z_][A-Za-z0-9_-]*(\.[A-Za-z0-9_-]+)*$/

/** Parses the inside of `{{ ... }}`: alternatives joined by `||`, each a reference or a literal. */
export function parseExpression(expression: string, key: string): Term[] {
  const source = expression.trim()
  if (!source) throw configError(`empty interpolation '{{}}' in '${key}'`, { location: key })
  const terms: Term[] = []
  let rest = source
  for (;;) {
    rest = rest.trimStart()
    let term: Term
    const quote = rest[0]
    if (quote === "'" || quote === '"') {
      const end = rest.indexOf(quote, 1)
      if (end < 0) throw configError(`unterminated string in '{{${expression}}}' of '${key}'`, { location: key })
      term = { kind: 'literal', value: rest.slice(1, end) }
      rest = rest.slice(end + 1)
    } else {
      const match = /^[^|\s]+/.exec(rest)
      const word = match?.[0] ?? ''
      rest = rest.slice(word.length)
      if (/^-?\d+(\.\d+)?$/.test(word)) term = { kind: 'literal', value: Number(word) }
      else if (word === 'true' || word === 'false') term = { kind: 'literal', value: word === 'true' }
      else if (refPattern.test(word)) term = { kind: 'ref', path: word }
      else
        throw configError(`invalid reference '${word || rest}' in '{{${expression}}}' of '${key}'`, {
          location: key,
          hint: "use {{section.key}}, {{env.NAME || 'default'}}",
        })
    }
    terms.push(term)
    rest = rest.trimStart()
    if (!rest) return terms
    if (!rest.startsWith('||'))
      throw configError(`unexpected '${rest}' in '{{${expression}}}' of '${key}'`, { location: key, hint: 'alternatives are joined with ||' })
    rest = rest.slice(2)
  }
}

interface Segment {
  text?: string
  terms?: Term[]
  raw?: string
}

/** Splits a string into literal text and `{{...}}` expressions. `\{{` stays literal. */
export function parseTemplate(value: string, key: string): Segment[] {
  const segments: Segment[] = []
  let index = 0
  let text = ''
  while (index < value.length) {
    if (value.startsWith('\\{{', index)) {
      text += '{{'
      index += 3
      continue
    }
    if (value.startsWith('{{', index)) {
      const end = value.indexOf('}}', index + 2)
      if (end < 0) throw configError(`unclosed '{{' in '${key}'`, { location: key, hint: "close it with '}}' or write '\\{{' for a literal" })
      if (text) segments.push({ text })
      text = ''
      const inner = value.slice(index + 2, end)
      if (inner.includes('{{')) throw configError(`nested '{{' in '${key}'`, { location: key })
      segments.push({ terms: parseExpression(inner, key), raw: inner })
      index = end + 2
      continue
    }
    text += value[index]
    index++
  }
  if (text) segments.push({ text })
  return segments
}

export const hasTemplate = (value: string) => value.includes('{{')

function git(args: string[], cwd: string | undefined, key: string): string {
  try {
    return execFileSync('git', args, { cwd, stdio: ['ignore', 'pipe', 'ignore'], encoding: 'utf8' }).trim()
  } catch {
    throw configError(`'{{git.*}}' used in '${key}' but ${cwd ?? 'the current folder'} is not a git repository`, { location: key })
  }
}

/**
 * Resolves every `{{...}}` in the config, in place on a copy. References to other keys may be
 * nested (a.b -> c.d -> ...); unknown references and cycles fail fast naming the chain.
 */
export function interpolateConfig(config: Record<string, unknown>, context: InterpolationContext = {}): Record<string, unknown> {
  const result = structuredClone(config)
  const env = context.env ?? process.env
  const now = context.now ?? new Date()
  const resolved = new Set<string>()
  const stack: string[] = []
  const gitCache = new Map<string, string>()
  const where = (key: string) => context.locate?.(key) ?? key

  const specialValue = (path: string, from: string): { found: boolean; value?: unknown } => {
    const [root, ...restParts] = path.split('.')
    const rest = restParts.join('.')
    switch (root) {
      case 'env': {
        if (!rest) throw configError(`'{{env}}' needs a variable name in '${from}'`, { location: where(from) })
        const value = env[rest]
        return value === undefined ? { found: true, value: undefined } : { found: true, value }
      }
      case 'now':
        if (rest === 'date') return { found: true, value: now.toISOString().slice(0, 10) }
        if (rest === 'timestamp') return { found: true, value: now.toISOString() }
        if (rest === 'unix') return { found: true, value: Math.floor(now.getTime() / 1000) }
        throw configError(`unknown reference '{{${path}}}' in '${from}'`, { location: where(from), hint: 'now.date, now.timestamp or now.unix' })
      case 'git': {
        if (rest !== 'branch' && rest !== 'commit') {
          throw configError(`unknown reference '{{${path}}}' in '${from}'`, { location: where(from), hint: 'git.branch or git.commit' })
        }
        if (!gitCache.has(rest)) {
          const dir = context.gitDir ?? context.workspacePath
          gitCache.set(rest, git(rest === 'branch' ? ['rev-parse', '--abbrev-ref', 'HEAD'] : ['rev-parse', 'HEAD'], dir, from))
        }
        return { found: true, value: gitCache.get(rest) }
      }
      case 'workspace':
        if (rest === 'path') {
          if (!context.workspacePath)
            throw configError(`'{{workspace.path}}' used in '${from}' outside a workspace`, {
              location: where(from),
              hint: 'run inside a workspace or pass --workspace',
            })
          return { found: true, value: context.workspacePath }
        }
        return { found: false }
      default:
        return { found: false }
    }
  }

  const resolveKey = (path: string, from: string): unknown => {
    const special = specialValue(path, from)
    if (special.found) return special.value
    const value = getPath(result, path)
    if (value === undefined) {
      const keys = [...flattenLeaves(result).keys()]
      throw configError(`unknown reference '{{${path}}}' in '${from}'`, {
        location: where(from),
        hint: didYouMean(path, keys) ?? 'references name other config keys (section.key), env.NAME, workspace.path, now.*, git.*',
      })
    }
    resolveNode(path)
    return getPath(result, path)
  }

  const evaluate = (value: string, key: string): unknown => {
    const segments = parseTemplate(value, key)
    const evalTerms = (terms: Term[]): unknown => {
      for (const term of terms) {
        const candidate = term.kind === 'literal' ? term.value : resolveKey(term.path, key)
        if (candidate !== undefined && candidate !== null && candidate !== '') return candidate
      }
      const last = terms[terms.length - 1]
      if (last.kind === 'ref' && last.path.startsWith('env.')) {
        throw configError(`environment variable ${last.path.slice(4)} is not set (used in '${key}')`, {
          location: where(key),
          hint: `set it, or give a default: {{${last.path} || 'value'}}`,
        })
      }
      return ''
    }
    if (segments.length === 1 && segments[0].terms) return evalTerms(segments[0].terms)
    return segments
      .map((segment) => {
        if (segment.text !== undefined) return segment.text
        const v = evalTerms(segment.terms ?? [])
        return typeof v === 'object' ? JSON.stringify(v) : String(v)
      })
      .join('')
  }

  const resolveNode = (path: string): void => {
    if (resolved.has(path)) return
    const cycleAt = stack.indexOf(path)
    if (cycleAt >= 0) {
      const chain = [...stack.slice(cycleAt), path]
      throw configError(`interpolation cycle: ${chain.join(' -> ')}`, {
        location: where(chain[0]),
        hint: 'break the loop: one of these keys must hold a plain value',
      })
    }
    stack.push(path)
    try {
      const value = getPath(result, path)
      if (typeof value === 'string' && hasTemplate(value)) {
        setAt(result, path, evaluate(value, path))
      } else if (Array.isArray(value)) {
        value.forEach((item, index) => {
          if (typeof item === 'string' && hasTemplate(item)) value[index] = evaluate(item, `${path}.${index}`)
        })
      } else if (isPlainObject(value)) {
        for (const key of Object.keys(value)) resolveNode(`${path}.${key}`)
      }
    } finally {
      stack.pop()
    }
    resolved.add(path)
  }

  for (const key of Object.keys(result)) resolveNode(key)
  return result
}

function setAt(root: Record<string, unknown>, path: string, value: unknown) {
  const parts = path.split('.')
  let node: Record<string, unknown> = root
  for (const part of parts.slice(0, -1)) node = node[part] as Record<string, unknown>
  node[parts[parts.length - 1]] = value
}
