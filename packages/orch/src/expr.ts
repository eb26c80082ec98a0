/**
 * References to earlier results: `steps.<id>.output.servers[0].name`, `steps.<id>.status`,
 * `target`, `target.name`, and `when` conditions over them (`<ref> <op> <json>`, `<ref>`, `!<ref>`).
 */

export type Segment = string | number

export function parseRef(ref: string): Segment[] {
  const segments: Segment[] = []
  const re = /([A-Za-z0-9_:-]+)|\[(\d+)\]|\[["']([^"']*)["']\]|(\.)/gy
  let expectName = true
  let m: RegExpExecArray | null
  const text = ref.trim()
  re.lastIndex = 0
  while (re.lastIndex < text.length) {
    m = re.exec(text)
    if (!m) throw new Error(`'${ref}' is not a reference (use steps.<id>.output.a[0].b)`)
    if (m[1] !== undefined) {
      if (!expectName) throw new Error(`'${ref}' is not a reference (missing '.')`)
      segments.push(m[1])
      expectName = false
    } else if (m[2] !== undefined) segments.push(Number(m[2]))
    else if (m[3] !== undefined) segments.push(m[3])
    else expectName = true
  }
  if (!segments.length || expectName) throw new Error(`'${ref}' is not a reference (use steps.<id>.output.a[0].b)`)
  return segments
}

/** The step id a reference reads from, or undefined for `target...` references. */
export function refStep(ref: string): string | undefined {
  const segments = parseRef(ref)
  if (segments[0] === 'target' || segments[0] === 'workflow') return undefined
  if (segments[0] !== 'steps' || typeof segments[1] !== 'string') {
    throw new Error(`'${ref}' must start with steps.<id>. or target`)
  }
  if (segments[2] !== 'output' && segments[2] !== 'status') throw new Error(`'${ref}': after steps.<id> use .output or .status`)
  return segments[1]
}

export const MISSING = Symbol('missing')

export function select(root: unknown, segments: Segment[]): unknown {
  let value: unknown = root
  for (const segment of segments) {
    if (value === null || typeof value !== 'object') return MISSING
    if (Array.isArray(value) && typeof segment === 'number') {
      if (segment >= value.length) return MISSING
      value = value[segment]
    } else if (!Array.isArray(value) && Object.hasOwn(value, segment)) {
      value = (value as Record<string, unknown>)[segment as string]
    } else return MISSING
  }
  return value
}

export interface RefScope {
  steps: Record<string, { status: string; output: unknown }>
  target?: unknown
  workflow?: { id: string; name: string }
}

export class MissingRefError extends Error {}

export function resolveRef(ref: string, scope: RefScope): unknown {
  const value = select(scope, parseRef(ref))
  if (value === MISSING) {
    const step = refStep(ref)
    const where = step ? ` (output of step '${step}': ${JSON.stringify(scope.steps[step]?.output ?? null).slice(0, 120)})` : ''
    throw new MissingRefError(`${ref} does not exist${where}`)
  }
  return value
}

const TEMPLATE = /\{\{\s*([^}]+?)\s*\}\}/g

/** References used by `{{ ... }}` templates in a string. */
export function templateRefs(text: string): string[] {
  return [...text.matchAll(TEMPLATE)].map((m) => m[1])
}

const asText = (value: unknown) => (typeof value === 'string' ? value : JSON.stringify(value))

export function renderTemplate(text: string, scope: RefScope): string {
  return text.replace(TEMPLATE, (_, ref: string) => asText(resolveRef(ref, scope)))
}

/** Environment variables that carry interpolated values into a shell script. */
export const TEMPLATE_VALUE_PREFIX = 'PROV_ORCH_VALUE_'

/**
 * A shell script with its `{{ref}}` templates replaced by references to environment variables
 * that hold the values, so that a value (an earlier step's output, a target name) is never
 * parsed as shell code: `x; touch /tmp/p` stays one word. Each template becomes, by the quoting
 * around it, `"${V}"` (unquoted), `${V}` (inside double quotes) or `'"${V}"'` (inside single
 * quotes): the value is one word, or part of the quoted string, exactly as written.
 */
export function renderShellTemplate(script: string, scope: RefScope): { script: string; env: Record<string, string> } {
  const env: Record<string, string> = {}
  const names = new Map<string, string>()
  let out = ''
  let quote: 'none' | 'single' | 'double' = 'none'
  const template = /\{\{\s*([^}]+?)\s*\}\}/y
  for (let i = 0; i < script.length; ) {
    const ch = script[i]
    template.lastIndex = i
    const m = ch === '{' ? template.exec(script) : null
    if (m) {
      const ref = m[1]
      let name = names.get(ref)
      if (!name) {
        name = `${TEMPLATE_VALUE_PREFIX}${names.size + 1}`
        names.set(ref, name)
        env[name] = asText(resolveRef(ref, scope))
      }
      out += quote === 'none' ? `"\${${name}}"` : quote === 'double' ? `\${${name}}` : `'"\${${name}}"'`
      i += m[0].length
      continue
    }
    if (ch === '\\' && quote !== 'single') {
      out += script.slice(i, i + 2)
      i += 2
      continue
    }
    if (ch === "'" && quote !== 'double') quote = quote === 'single' ? 'none' : 'single'
    else if (ch === '"' && quote !== 'single') quote = quote === 'double' ? 'none' : 'double'
    out += ch
    i++
  }
  return { script: out, env }
}

const COMPARISON = /^(.+?)\s*(==|!=|>=|<=|>|<)\s*(.+)$/

export interface Condition {
  ref: string
  op: '==' | '!=' | '>=' | '<=' | '>' | '<' | 'truthy' | 'falsy'
  value?: unknown
}

export function parseCondition(text: string): Condition {
  const trimmed = text.trim()
  const m = COMPARISON.exec(trimmed)
  if (m) {
    let value: unknown
    try {
      value = JSON.parse(m[3])
    } catch {
      value = m[3].replace(/^'(.*)'$/, '$1')
    }
    parseRef(m[1])
    return { ref: m[1].trim(), op: m[2] as Condition['op'], value }
  }
  if (trimmed.startsWith('!')) {
    parseRef(trimmed.slice(1))
    return { ref: trimmed.slice(1).trim(), op: 'falsy' }
  }
  parseRef(trimmed)
  return { ref: trimmed, op: 'truthy' }
}

export function evaluateCondition(text: string, scope: RefScope): boolean {
  const c = parseCondition(text)
  const found = select(scope, parseRef(c.ref))
  const value = found === MISSING ? undefined : found
  switch (c.op) {
    case 'truthy':
      return Boolean(value)
    case 'falsy':
      return !value
    case '==':
      return JSON.stringify(value) === JSON.stringify(c.value)
    case '!=':
      return JSON.stringify(value) !== JSON.stringify(c.value)
    default: {
      const a = Number(value)
      const b = Number(c.value)
      if (c.op === '>') return a > b
      if (c.op === '<') return a < b
      if (c.op === '>=') return a >= b
      return a <= b
    }
  }
}
