import { readFileSync } from 'node:fs'
import { dirname, resolve } from 'node:path'
import { assertSafeStructure, didYouMean, parseInput, type SecretRef, usageError, validateSecretName } from '@prov/core'
import { z } from 'zod'
import { argvTemplateProblem, shellScriptIndex, shellTemplateProblem } from './command'
import { parseCondition, refStep, templateRefs } from './expr'
import { parseDuration, parseSize } from './units'

export const WORKFLOW_SCHEMA = 'prov.orch.workflow/v1'

const duration = z.union([z.number().nonnegative(), z.string().min(1)])
const builtin = z.strictObject({
  builtin: z.enum(['noop', 'sleep', 'fail']),
  ms: z.number().int().nonnegative().optional(),
  message: z.string().optional(),
})
const runSpec = z.union([z.string().min(1), z.array(z.string()).min(1), builtin])
const retries = z.strictObject({
  max: z.number().int().min(0).max(100),
  backoff: duration.optional(),
})

/** A value, or `{secret: name}`: resolved when the step runs, passed in its environment, never stored. */
const envValue = z.union([z.string(), z.strictObject({ secret: z.string().min(1) })])
const envMap = z.record(z.string().regex(/^[A-Za-z_][A-Za-z0-9_]*$/, 'environment variable names are letters, digits and _'), envValue)
const size = z.union([z.number().int().min(1), z.string().min(1)])
const overflow = z.enum(['fail', 'truncate'])

const stepFields = {
  run: runSpec,
  input: z.unknown().optional(),
  env: envMap.optional(),
  cwd: z.string().optional(),
  depends_on: z.array(z.string()).optional(),
  retries: retries.optional(),
  timeout: duration.optional(),
  rollback: runSpec.optional(),
  when: z.string().optional(),
  idempotent: z.boolean().optional(),
  expect_json: z.boolean().optional(),
  /** Cap of the step's stdout (default 16 MiB, or the engine's). */
  max_output: size.optional(),
  /** Past max_output: fail the step (default) or keep the first bytes and mark the output truncated. */
  output_overflow: overflow.optional(),
}

const stepSchema = z.strictObject({
  id: z.string().regex(/^[A-Za-z0-9_][A-Za-z0-9_.:-]*$/, 'letters, digits, _ . : - only'),
  ...stepFields,
})

const strategySchema = z
  .strictObject({
    name: z
      .string()
      .regex(/^[A-Za-z0-9_][A-Za-z0-9_.-]*$/)
      .optional(),
    targets: z.array(z.unknown()).min(1),
    depends_on: z.array(z.string()).optional(),
    step: z.strictObject({ ...stepFields }),
    rolling: z.strictObject({ batch_size: z.number().int().min(1), max_unavailable: z.number().int().min(1).optional() }).optional(),
    canary: z
      .strictObject({
        first: z.number().int().min(1),
        observe: z.strictObject({
          health: runSpec,
          duration: duration,
          interval: duration.optional(),
          /** Share of health checks that must pass (0..1). */
          threshold: z.number().min(0).max(1).optional(),
        }),
        // biome-ignore lint/suspicious/noThenProperty: the documented field name (canary ... then promote|rollback)
        then: z.enum(['promote', 'rollback']).optional(),
      })
      .optional(),
  })
  .refine((s) => s.rolling || s.canary, { message: 'needs rolling or canary' })

export const workflowSchema = z.strictObject({
  schema: z.literal(WORKFLOW_SCHEMA).optional(),
  name: z.string().min(1),
  version: z.string().optional(),
  description: z.string().optional(),
  parallel_limit: z.number().int().min(1).max(10_000).optional(),
  rollback_enabled: z.boolean().optional(),
  defaults: z
    .strictObject({
      retries: retries.optional(),
      timeout: duration.optional(),
      idempotent: z.boolean().optional(),
      expect_json: z.boolean().optional(),
      env: envMap.optional(),
      max_output: size.optional(),
      output_overflow: overflow.optional(),
    })
    .optional(),
  steps: z.array(stepSchema).optional(),
  strategy: strategySchema.optional(),
})

export type WorkflowDefinition = z.infer<typeof workflowSchema>

/** How a step runs: a process (argv, or a shell line), or a built-in kind executed in the engine. */
export type RunSpec =
  | { argv: string[] }
  | { shell: string }
  | { builtin: 'noop' | 'sleep' | 'fail'; ms?: number; message?: string }
  | { builtin: 'observe'; health: RunSpec; durationMs: number; intervalMs: number; threshold: number; then: 'promote' | 'rollback' }

export type EnvValue = string | SecretRef

export interface CompiledStep {
  id: string
  run: RunSpec
  input?: unknown
  env?: Record<string, EnvValue>
  cwd?: string
  deps: string[]
  retries: { max: number; backoffMs: number }
  timeoutMs?: number
  rollback?: RunSpec
  when?: string
  idempotent: boolean
  expectJson: boolean
  /** Main steps whose outputs templates read, when not just `deps` (a compensation also reads its own step). */
  refs?: string[]
  /** Bytes of stdout kept; undefined = the engine's default. */
  maxOutput?: number
  outputOverflow?: 'fail' | 'truncate'
  target?: unknown
}

export interface CompiledWorkflow {
  schema: typeof WORKFLOW_SCHEMA
  name: string
  parallelLimit: number
  rollbackEnabled: boolean
  steps: CompiledStep[]
}

function toRun(spec: z.infer<typeof runSpec>): RunSpec {
  if (typeof spec === 'string') return { shell: spec }
  if (Array.isArray(spec)) return { argv: spec }
  return spec
}

/** Field names other tools use for ours (GitHub Actions, Argo, Ansible, Compose): `command:` means `run:`. */
const FIELD_SYNONYMS: Record<string, string> = {
  command: 'run',
  cmd: 'run',
  script: 'run',
  shell: 'run',
  exec: 'run',
  needs: 'depends_on',
  dependencies: 'depends_on',
  depends: 'depends_on',
  after: 'depends_on',
  requires: 'depends_on',
  name: 'id',
  environment: 'env',
  working_dir: 'cwd',
  workdir: 'cwd',
  dir: 'cwd',
  if: 'when',
  condition: 'when',
  retry: 'retries',
  undo: 'rollback',
  compensate: 'rollback',
  stdin: 'input',
}

/** The field names of the object schema at `path` (through optional, array, union and refinement layers). */
function fieldsAt(schema: z.ZodTypeAny, path: PropertyKey[]): string[] {
  const unwrap = (list: z.ZodTypeAny[]): z.ZodTypeAny[] =>
    list.flatMap((s) => {
      if (s instanceof z.ZodOptional || s instanceof z.ZodNullable) return unwrap([s.unwrap()])
      if (s instanceof z.ZodDefault) return unwrap([s.removeDefault()])
      if (s instanceof z.ZodEffects) return unwrap([s.innerType()])
      if (s instanceof z.ZodUnion) return unwrap([...s.options])
      return [s]
    })
  let current = [schema]
  for (const segment of path) {
    current = unwrap(current).flatMap((s) => {
      if (typeof segment === 'number') return s instanceof z.ZodArray ? [s.element] : []
      return s instanceof z.ZodObject && typeof segment === 'string' && segment in s.shape ? [s.shape[segment]] : []
    })
  }
  return unwrap(current).flatMap((s) => (s instanceof z.ZodObject ? Object.keys(s.shape) : []))
}

/** "unknown field 'command' (did you mean 'run'?)", suggesting among the fields allowed there. */
function unknownFieldsMessage(keys: string[], fields: string[]): string {
  const named = `unknown field${keys.length > 1 ? 's' : ''} ${keys.map((k) => `'${k}'`).join(', ')}`
  const allowed = new Set(fields)
  for (const key of keys) {
    const synonym = FIELD_SYNONYMS[key.toLowerCase()]
    const suggestion = synonym && allowed.has(synonym) ? `did you mean '${synonym}'?` : didYouMean(key, allowed)
    if (suggestion) return `${named} (${suggestion})`
  }
  return fields.length ? `${named} (allowed: ${fields.join(', ')})` : named
}

function issuePath(path: (string | number)[]): string {
  return path.map((p, i) => (typeof p === 'number' ? `[${p}]` : i === 0 ? p : `.${p}`)).join('') || '(top)'
}

/** Reads a workflow file (or `-` = the given stdin text), validates and compiles it. */
export function loadWorkflowFile(file: string, stdinText?: string): CompiledWorkflow {
  let text: string
  let baseDir = process.cwd()
  if (file === '-') {
    if (stdinText === undefined) throw usageError('no workflow on stdin', { hint: 'prov-orch run - < workflow.yaml' })
    text = stdinText
  } else {
    try {
      text = readFileSync(file, 'utf8')
    } catch (error) {
      throw usageError(`cannot read workflow ${file}: ${(error as NodeJS.ErrnoException).code ?? (error as Error).message}`, { location: file })
    }
    baseDir = dirname(resolve(file))
  }
  const source = file === '-' ? 'stdin' : file
  const parsed = parseInput(text, source)
  if (parsed.records.length !== 1) throw usageError(`${source} must hold one workflow document, found ${parsed.records.length}`, { location: source })
  return compileWorkflow(parsed.records[0], { source, baseDir })
}

const MAX_OUTPUT_CEILING = 256 * 1024 * 1024

export interface CompileOptions {
  /** Names the document in errors (a file name, `stdin`, `body`). */
  source?: string
  /** Relative `cwd` and `input: {file}` paths start here. */
  baseDir?: string
  /** `input: {file: ...}` reads a file of this host: allowed for local files, not for API submissions. */
  allowFiles?: boolean
}

export function compileWorkflow(raw: unknown, { source = 'workflow', baseDir = process.cwd(), allowFiles = true }: CompileOptions = {}): CompiledWorkflow {
  assertSafeStructure(raw, { source })
  const result = workflowSchema.safeParse(raw)
  if (!result.success) {
    // A misspelt field also makes the field it stands for "missing": name the misspelling first.
    const issue = result.error.issues.find((i) => i.code === 'unrecognized_keys') ?? result.error.issues[0]
    let message = issue.message
    if (issue.code === 'unrecognized_keys') message = unknownFieldsMessage(issue.keys, fieldsAt(workflowSchema, issue.path))
    if (issue.code === 'invalid_literal' && issue.path[0] === 'schema') message = `schema must be '${WORKFLOW_SCHEMA}'`
    throw usageError(`invalid workflow: ${issuePath(issue.path)}: ${message}`, { location: `${source}: ${issuePath(issue.path)}` })
  }
  const def = result.data
  const fail = (path: string, message: string, hint?: string) => usageError(`invalid workflow: ${path}: ${message}`, { location: `${source}: ${path}`, hint })
  const dur = (value: string | number | undefined, path: string) => {
    if (value === undefined) return undefined
    try {
      return parseDuration(value)
    } catch (error) {
      throw fail(path, (error as Error).message)
    }
  }
  const defaults = def.defaults ?? {}
  const steps: CompiledStep[] = []
  type StepFields = Omit<z.infer<typeof stepSchema>, 'id'>
  const size = (value: string | number | undefined, path: string) => {
    if (value === undefined) return undefined
    let bytes: number
    try {
      bytes = parseSize(value)
    } catch (error) {
      throw fail(path, (error as Error).message)
    }
    if (bytes > MAX_OUTPUT_CEILING) throw fail(path, `at most ${MAX_OUTPUT_CEILING / 1024 / 1024}MiB`)
    return bytes
  }
  const envOf = (env: Record<string, EnvValue> | undefined, path: string) => {
    for (const [name, value] of Object.entries(env ?? {})) {
      if (typeof value === 'string') continue
      try {
        validateSecretName(value.secret)
      } catch (error) {
        throw fail(`${path}.${name}.secret`, (error as Error).message, 'secret names are segments of letters, digits, _ . - separated by /')
      }
    }
    return env
  }
  const shellScript = (script: string, path: string, id: string | undefined) => {
    const problem = shellTemplateProblem(script)
    if (problem)
      throw fail(
        path,
        `${id ? `step '${id}': ` : ''}${problem}`,
        'use the argv form without a shell ([prog, "{{steps.a.output.x}}"]), or pass the value in env: {X: "{{...}}"} and validate it before the script uses it',
      )
  }
  const argvProgram = (run: z.infer<typeof runSpec>, path: string, id?: string) => {
    if (typeof run === 'string') return shellScript(run, path, id)
    if (!Array.isArray(run)) return
    const argv = run.map(String)
    const script = shellScriptIndex(argv)
    if (script >= 0) shellScript(argv[script], `${path}[${script}]`, id)
    for (let i = 0; i < argv.length; i++) {
      const problem = argvTemplateProblem(argv, i, (text) => templateRefs(text).length > 0)
      if (problem)
        throw fail(
          `${path}[${i}]`,
          problem,
          i === 0
            ? 'name the program; pass values as arguments or in env'
            : 'make the template a whole argument ("{{steps.a.output.x}}"), or pass the value in env: {X: "{{...}}"} and read "$X"',
        )
    }
  }
  envOf(defaults.env, 'defaults.env')
  const build = (id: string, s: StepFields, path: string, extra: Partial<CompiledStep> = {}): CompiledStep => {
    argvProgram(s.run, `${path}.run`, id)
    if (s.rollback) argvProgram(s.rollback, `${path}.rollback`, id)
    let input = s.input
    if (input && typeof input === 'object' && !Array.isArray(input) && Object.keys(input).length === 1 && 'file' in input) {
      if (!allowFiles) throw fail(`${path}.input.file`, 'files of the server cannot be read by a submitted workflow', 'send the content as input')
      const file = resolve(baseDir, String((input as { file: unknown }).file))
      try {
        const text = readFileSync(file, 'utf8')
        try {
          input = JSON.parse(text)
        } catch {
          input = text
        }
      } catch (error) {
        throw fail(`${path}.input.file`, `cannot read ${file}: ${(error as NodeJS.ErrnoException).code}`)
      }
    }
    const retry = s.retries ?? defaults.retries
    return {
      id,
      run: toRun(s.run),
      input,
      env: s.env || defaults.env ? { ...defaults.env, ...envOf(s.env, `${path}.env`) } : undefined,
      cwd: s.cwd ? resolve(baseDir, s.cwd) : undefined,
      deps: [...(s.depends_on ?? [])],
      retries: { max: retry?.max ?? 0, backoffMs: dur(retry?.backoff, `${path}.retries.backoff`) ?? 1000 },
      timeoutMs: dur(s.timeout ?? defaults.timeout, `${path}.timeout`),
      rollback: s.rollback ? toRun(s.rollback) : undefined,
      when: s.when,
      idempotent: s.idempotent ?? defaults.idempotent ?? false,
      expectJson: s.expect_json ?? defaults.expect_json ?? false,
      maxOutput: size(s.max_output ?? defaults.max_output, `${path}.max_output`),
      outputOverflow: s.output_overflow ?? defaults.output_overflow,
      ...extra,
    }
  }
  for (const [i, s] of (def.steps ?? []).entries()) steps.push(build(s.id, s, `steps[${i}]`))
  let rollbackEnabled = def.rollback_enabled ?? false
  if (def.strategy) {
    const st = def.strategy
    const prefix = st.name ?? 'update'
    const lanes = st.rolling?.max_unavailable ?? Number.POSITIVE_INFINITY
    const targetId = (t: unknown, i: number) => {
      const name = typeof t === 'string' ? t : t && typeof t === 'object' && 'name' in t ? String((t as { name: unknown }).name) : undefined
      return `${prefix}:${name && /^[A-Za-z0-9_.:-]+$/.test(name) ? name : i + 1}`
    }
    const ids = st.targets.map(targetId)
    if (new Set(ids).size !== ids.length) throw fail('strategy.targets', 'target names must be unique')
    // Batches run one after the other; inside a batch at most max_unavailable targets at once (lanes).
    const addBatches = (indexes: number[], after: string[]) => {
      const size = st.rolling?.batch_size ?? indexes.length
      let previous = after
      for (let b = 0; b < indexes.length; b += size) {
        const batch = indexes.slice(b, b + size)
        const laneTail = new Map<number, string>()
        for (const [j, idx] of batch.entries()) {
          const lane = Number.isFinite(lanes) ? j % lanes : j
          const deps = [...previous, ...(laneTail.has(lane) ? [laneTail.get(lane) as string] : [])]
          steps.push(build(ids[idx], { ...st.step, depends_on: [...(st.step.depends_on ?? []), ...deps] }, 'strategy.step', { target: st.targets[idx] }))
          laneTail.set(lane, ids[idx])
        }
        previous = batch.map((idx) => ids[idx])
      }
      return previous
    }
    const all = st.targets.map((_, i) => i)
    const base = st.depends_on ?? []
    if (st.canary) {
      const c = st.canary
      if (c.first >= st.targets.length && c.then !== 'rollback') throw fail('strategy.canary.first', `must be less than the ${st.targets.length} targets`)
      rollbackEnabled = true
      argvProgram(c.observe.health, 'strategy.canary.observe.health')
      addBatches(all.slice(0, c.first), base)
      const durationMs = dur(c.observe.duration, 'strategy.canary.observe.duration') ?? 0
      const observeId = `${prefix}:observe`
      steps.push({
        id: observeId,
        run: {
          builtin: 'observe',
          health: toRun(c.observe.health),
          durationMs,
          intervalMs: dur(c.observe.interval, 'strategy.canary.observe.interval') ?? Math.max(200, Math.round(durationMs / 5)),
          threshold: c.observe.threshold ?? 1,
          // biome-ignore lint/suspicious/noThenProperty: the documented field name
          then: c.then ?? 'promote',
        },
        deps: all.slice(0, c.first).map((i) => ids[i]),
        retries: { max: 0, backoffMs: 0 },
        idempotent: true,
        expectJson: false,
        target: st.targets.slice(0, c.first),
      })
      addBatches(all.slice(c.first), [observeId])
    } else addBatches(all, base)
  }
  if (!steps.length) throw fail('steps', 'a workflow needs at least one step (steps or strategy)')
  // Unique ids, known dependencies, references imply dependencies.
  const byId = new Map<string, CompiledStep>()
  for (const [i, s] of steps.entries()) {
    if (byId.has(s.id)) throw fail(`steps[${i}].id`, `duplicate step id '${s.id}'`)
    byId.set(s.id, s)
  }
  const where = (s: CompiledStep) => {
    const i = (def.steps ?? []).findIndex((d) => d.id === s.id)
    return i >= 0 ? `steps[${i}] (${s.id})` : `strategy (${s.id})`
  }
  for (const s of steps) {
    for (const dep of s.deps) {
      if (!byId.has(dep)) throw fail(`${where(s)}.depends_on`, `'${dep}' is not a step`, didYouMean(dep, byId.keys()))
      if (dep === s.id) throw fail(`${where(s)}.depends_on`, `step depends on itself`)
    }
    const refs: { ref: string; field: string }[] = []
    const collect = (value: unknown, field: string) => {
      if (typeof value === 'string') for (const ref of templateRefs(value)) refs.push({ ref, field })
      else if (Array.isArray(value)) {
        for (const [k, v] of value.entries()) collect(v, `${field}[${k}]`)
      } else if (value && typeof value === 'object') {
        if ('from' in value && Object.keys(value).length === 1) refs.push({ ref: String((value as { from: unknown }).from), field })
        else for (const [k, v] of Object.entries(value)) if (k !== 'builtin') collect(v, `${field}.${k}`)
      }
    }
    collect(s.run, 'run')
    collect(s.input, 'input')
    collect(s.env, 'env')
    collect(s.rollback, 'rollback')
    if (s.when) {
      try {
        refs.push({ ref: parseCondition(s.when).ref, field: 'when' })
      } catch (error) {
        throw fail(`${where(s)}.when`, (error as Error).message)
      }
    }
    for (const { ref, field } of refs) {
      let step: string | undefined
      try {
        step = refStep(ref)
      } catch (error) {
        throw fail(`${where(s)}.${field}`, (error as Error).message)
      }
      if (step === undefined) {
        if (ref.startsWith('target') && s.target === undefined) throw fail(`${where(s)}.${field}`, `'${ref}': only strategy steps have a target`)
        continue
      }
      if (!byId.has(step)) throw fail(`${where(s)}.${field}`, `'${ref}' refers to step '${step}', which does not exist`, didYouMean(step, byId.keys()))
      if (step === s.id) {
        // A compensation may read the output of the step it undoes.
        if (field.startsWith('rollback')) continue
        throw fail(`${where(s)}.${field}`, `'${ref}' refers to the step itself`)
      }
      if (!s.deps.includes(step)) s.deps.push(step)
    }
  }
  const cycle = findCycle(steps)
  if (cycle) throw usageError(`invalid workflow: depends_on cycle: ${cycle.join(' -> ')}`, { location: `${source}: depends_on` })
  return { schema: WORKFLOW_SCHEMA, name: def.name, parallelLimit: def.parallel_limit ?? 10, rollbackEnabled, steps }
}

function findCycle(steps: CompiledStep[]): string[] | undefined {
  const deps = new Map(steps.map((s) => [s.id, s.deps]))
  const state = new Map<string, 1 | 2>()
  const stack: string[] = []
  // Iterative DFS: workflows can have 10,000+ steps.
  for (const start of deps.keys()) {
    if (state.has(start)) continue
    const work: { id: string; next: number }[] = [{ id: start, next: 0 }]
    state.set(start, 1)
    stack.push(start)
    while (work.length) {
      const top = work[work.length - 1]
      const list = deps.get(top.id) ?? []
      if (top.next < list.length) {
        const dep = list[top.next++]
        const st = state.get(dep)
        if (st === 1) return [...stack.slice(stack.indexOf(dep)), dep]
        if (st === undefined) {
          state.set(dep, 1)
          stack.push(dep)
          work.push({ id: dep, next: 0 })
        }
      } else {
        state.set(top.id, 2)
        stack.pop()
        work.pop()
      }
    }
  }
  return undefined
}
