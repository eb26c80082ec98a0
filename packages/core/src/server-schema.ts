import { isIP } from 'node:net'
import { zodLib } from './lazy'

/**
 * The rules every server field follows wherever it comes from: servers.yaml, a plan, piped
 * records, command-line flags. Values that reach command lines (addresses, login names) are
 * checked strictly enough that they can never be read as an option or as shell code.
 */

/** Schema id of one server record. */
export const SERVER_SCHEMA = 'prov.server/v1'

export const serverStatuses = ['running', 'stopped', 'creating', 'error', 'unknown'] as const
export type ServerStatus = (typeof serverStatuses)[number]

/** One server as every prov binary sees it (`prov.server/v1`). */
export interface ServerRecord {
  schema: typeof SERVER_SCHEMA
  name: string
  provider: string
  status: ServerStatus
  hostname: string
  ip_address: string
  ssh: { user: string; port: number }
  labels: Record<string, string>
  infra: string | null
  cores: number | null
  memory_mb: number | null
  disk_gb: number | null
  zone: string | null
  plan: string | null
  image: string | null
  created_at: string
}

/** Server names: usable as hostnames, file names and in namespace names. */
export const serverNamePattern = /^[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?$/

/** Infra folder names (`infra/<name>/`), as recorded on servers. */
export const infraNamePattern = /^[A-Za-z0-9][A-Za-z0-9_.-]{0,62}$/

const hostLabel = /^[A-Za-z0-9]([A-Za-z0-9-]{0,61}[A-Za-z0-9])?$/

/**
 * Why `value` cannot be an SSH address, or undefined when it can: an IPv4 or IPv6 address, or a
 * DNS host name. Addresses end up as arguments of ssh and ssh-keyscan, where a value starting
 * with `-` would be read as an option (`-oProxyCommand=...` runs a command), so nothing else passes.
 */
export function addressProblem(value: string): string | undefined {
  if (isIP(value) && !value.includes('%')) return undefined
  const labels = value.split('.')
  if (!value || value.length > 253 || !labels.every((label) => hostLabel.test(label))) {
    return `${JSON.stringify(value)} is not an IP address or host name (letters, digits, '-' and '.', not starting with '-')`
  }
  if (/^\d+$/.test(labels[labels.length - 1])) return `${JSON.stringify(value)} is neither a valid IPv4 address nor a host name`
  return undefined
}

/** Why `value` cannot be a login name on a server (it is passed to `ssh -l`), or undefined. */
export function loginNameProblem(value: string): string | undefined {
  return /^[A-Za-z_][A-Za-z0-9_.-]{0,31}$/.test(value)
    ? undefined
    : `${JSON.stringify(value)} is not a login name (letters, digits, '_', '.', '-', at most 32, not starting with '-' or a digit)`
}

/** Marks zod issues of values that reach command lines: they are hostile input (exit 2) wherever they come from. */
export const unsafeValueIssue = { unsafe: true } as const

function buildServerRecordSchema() {
  const { z } = zodLib()
  return z.looseObject({
    schema: z.literal(SERVER_SCHEMA),
    name: z.string().regex(serverNamePattern, 'a hostname-like name: lower-case letters, digits and -'),
    provider: z.string().min(1),
    status: z.enum(serverStatuses),
    hostname: z.string(),
    ip_address: z.string().superRefine((value, ctx) => {
      const problem = value === '' ? undefined : addressProblem(value)
      if (problem) ctx.addIssue({ code: 'custom', message: problem, params: unsafeValueIssue })
    }),
    ssh: z.looseObject({
      user: z
        .string()
        .min(1)
        .superRefine((value, ctx) => {
          const problem = loginNameProblem(value)
          if (problem) ctx.addIssue({ code: 'custom', message: problem, params: unsafeValueIssue })
        }),
      port: z.number().int().min(1).max(65535),
    }),
    labels: z.record(z.string(), z.string()),
    infra: z.string().nullable(),
    cores: z.number().nullable(),
    memory_mb: z.number().nullable(),
    disk_gb: z.number().nullable(),
    zone: z.string().nullable(),
    plan: z.string().nullable(),
    image: z.string().nullable(),
    created_at: z.string(),
  })
}

let builtRecordSchema: ReturnType<typeof buildServerRecordSchema> | undefined
/** The zod schema of a server record (built on first use: zod loads only when needed). */
export function serverRecordSchema(): ReturnType<typeof buildServerRecordSchema> {
  builtRecordSchema ??= buildServerRecordSchema()
  return builtRecordSchema
}

/** One desired server: an entry of servers.yaml after defaults are applied, or a plan's `spec`. */
export interface ServerSpec {
  name: string
  provider: string
  infra: string | null
  plan: string | null
  cores: number | null
  memory_mb: number | null
  disk_gb: number | null
  zone: string | null
  image: string | null
  labels: Record<string, string>
  ssh: { user: string; port: number }
  /** Fixed address (required by `ssh`, optional for `local`). */
  address: string | null
  /** Provider-specific settings (free-form, validated by the provider). */
  options: Record<string, unknown>
}

/** Keys that would reach an object's prototype when merged; never accepted in input. */
const prototypeKeys = new Set(['__proto__', 'constructor', 'prototype'])
/** Deepest nesting accepted in free-form values (provider options). */
export const maxDataDepth = 32

/** Where a value is not plain data (path of keys and indexes from the top) and why. */
export interface DataProblem {
  path: (string | number)[]
  message: string
}

/**
 * Why a free-form value (a file, a plan, provider options) is not plain data, or undefined: a key
 * such as `__proto__` (zod drops it silently, a merge would pollute the prototype) or nesting
 * deeper than `maxDataDepth` (bounded so that no later walk over it can exhaust the stack).
 */
export function plainDataProblem(value: unknown): DataProblem | undefined {
  const stack: { value: unknown; path: (string | number)[] }[] = [{ value, path: [] }]
  while (stack.length) {
    const item = stack.pop() as { value: unknown; path: (string | number)[] }
    if (item.value === null || typeof item.value !== 'object') continue
    const shown = () => item.path.join('.') || 'the value'
    if (item.path.length >= maxDataDepth) return { path: item.path, message: `${shown()} is nested more than ${maxDataDepth} levels deep` }
    const isArray = Array.isArray(item.value)
    for (const [key, child] of Object.entries(item.value)) {
      if (prototypeKeys.has(key)) return { path: item.path, message: `the key '${key}' is not allowed (in ${shown()})` }
      stack.push({ value: child, path: [...item.path, isArray ? Number(key) : key] })
    }
  }
  return undefined
}

function buildServerSpecSchemas() {
  const { z } = zodLib()
  const hostile = (check: (value: string) => string | undefined) =>
    z.string().superRefine((value, ctx) => {
      const problem = check(value)
      if (problem) ctx.addIssue({ code: 'custom', message: problem, params: unsafeValueIssue })
    })
  const token = z
    .string()
    .max(255)
    .regex(/^[A-Za-z0-9][A-Za-z0-9._:/@+=-]*$/, 'letters, digits and . _ : / @ + = - (starting with a letter or digit), at most 255')
  const plain = z.record(z.string(), z.unknown()).superRefine((value, ctx) => {
    const problem = plainDataProblem(value)
    if (problem) ctx.addIssue({ code: 'custom', message: problem.message, path: problem.path })
  })
  const labelKey = z.string().regex(/^[A-Za-z0-9]([A-Za-z0-9._/-]{0,61}[A-Za-z0-9])?$/, 'label keys: letters, digits and . _ / - (at most 63)')
  const labelValue = z
    .string()
    .max(256)
    .regex(/^[^\u0000-\u001f\u007f]*$/, 'label values: at most 256 characters, no control characters')
  const fields = {
    name: z
      .string()
      .regex(serverNamePattern, 'a hostname-like name: lower-case letters, digits and - (at most 63)')
      .refine((name) => name !== 'all', "'all' is reserved: it names every server"),
    provider: z.string().regex(/^[a-z0-9][a-z0-9_.-]{0,62}$/, 'a provider name: lower-case letters, digits, dot, dash, underscore'),
    plan: token,
    cores: z.number().int().positive().max(4096),
    memory_mb: z
      .number()
      .int()
      .positive()
      .max(2 ** 32),
    disk_gb: z
      .number()
      .int()
      .positive()
      .max(2 ** 24),
    zone: token,
    image: token,
    labelKey,
    labelValue,
    user: hostile(loginNameProblem),
    port: z.number().int().min(1).max(65535),
    address: hostile(addressProblem),
    options: plain,
  }
  const spec = z.strictObject({
    name: fields.name,
    provider: fields.provider,
    infra: z.string().regex(infraNamePattern, 'an infra folder name: letters, digits, _ . - (at most 63)').nullable(),
    plan: fields.plan.nullable(),
    cores: fields.cores.nullable(),
    memory_mb: fields.memory_mb.nullable(),
    disk_gb: fields.disk_gb.nullable(),
    zone: fields.zone.nullable(),
    image: fields.image.nullable(),
    labels: z.record(labelKey, labelValue),
    ssh: z.strictObject({ user: fields.user, port: fields.port }),
    address: fields.address.nullable(),
    options: fields.options,
  })
  /** One entry of servers.yaml: the same fields, optional, label values may be numbers or booleans. */
  const entry = z.strictObject({
    name: fields.name,
    provider: fields.provider.optional(),
    plan: fields.plan.optional(),
    cores: fields.cores.optional(),
    memory_mb: fields.memory_mb.optional(),
    disk_gb: fields.disk_gb.optional(),
    zone: fields.zone.optional(),
    image: fields.image.optional(),
    labels: z.record(labelKey, z.union([z.string(), z.number(), z.boolean()]).transform(String).pipe(labelValue)).optional(),
    ssh: z.strictObject({ user: fields.user.optional(), port: fields.port.optional() }).optional(),
    address: fields.address.optional(),
    options: fields.options.optional(),
  })
  /** `defaults:` of servers.yaml and `servers.defaults` of the configuration. */
  const defaults = entry.omit({ name: true, address: true }).partial()
  /** A whole servers.yaml (entries are checked one by one, to name the failing one). */
  const file = z.strictObject({ defaults: defaults.optional(), servers: z.array(z.unknown()).max(10_000) })
  return { fields, spec, entry, defaults, file }
}

let builtSpecSchemas: ReturnType<typeof buildServerSpecSchemas> | undefined
/**
 * The rules of one server's fields and of a whole `ServerSpec`: servers.yaml entries and plan
 * actions are checked by the same rules (built on first use).
 */
export function serverSpecSchemas(): ReturnType<typeof buildServerSpecSchemas> {
  builtSpecSchemas ??= buildServerSpecSchemas()
  return builtSpecSchemas
}

/** Schema id of a `prov-server plan` record. */
export const SERVER_PLAN_SCHEMA = 'prov.server.plan/v1'
export const planActionKinds = ['create', 'delete', 'keep', 'update'] as const

function buildServerPlanSchemas() {
  const { z } = zodLib()
  const { fields, spec } = serverSpecSchemas()
  const count = z.number().int().min(0)
  const action = z.strictObject({
    action: z.enum(planActionKinds),
    server: fields.name,
    provider: fields.provider,
    reason: z.string().max(4096),
    /** Field changes of an update: `field: [from, to]` (shown to people, not carried out). */
    changes: z.record(z.string().max(64), z.tuple([z.unknown(), z.unknown()])).optional(),
    /** Start a stopped server as part of an update. */
    start: z.boolean().optional(),
    /**
     * The desired server. `provision` (first-boot configuration, plain data here) and `butane` are
     * the server package's own fields: it renders and checks them again before a machine is made.
     */
    spec: spec
      .extend({
        provision: fields.options.optional(),
        butane: z
          .string()
          .max(4096)
          .regex(/^[^/\0][^\0]*\.bu$/, 'a workspace-relative .bu file')
          .refine((p) => !p.split('/').includes('..'), { message: 'no .. in the path' })
          .optional(),
      })
      .optional(),
    /** Fingerprint of the server's first-boot document; `previous` when it changed. */
    day_zero: z
      .strictObject({
        format: z.string().max(32),
        fingerprint: z.string().max(80),
        source: z.string().max(4096),
        previous: z.string().max(80).nullable().optional(),
        needs_recreation: z.boolean().optional(),
      })
      .optional(),
    /** What a server to create costs, from its provider's catalog (null: no price known). */
    price: z
      .strictObject({
        currency: z.string().regex(/^[A-Z]{3}$/, 'a currency code such as EUR'),
        hourly: z.number().min(0).max(1e9),
        monthly: z.number().min(0).max(1e9),
      })
      .nullable()
      .optional(),
  })
  /** Everything but the actions (checked one by one, to name the failing one). */
  const envelope = z.strictObject({
    schema: z.literal(SERVER_PLAN_SCHEMA),
    workspace: z.string().min(1).max(4096),
    infra: z.string().regex(infraNamePattern, 'an infra folder name').nullable(),
    source: z.string().max(4096),
    created_at: z.string().max(64),
    state_fingerprint: z.string().regex(/^sha256:[0-9a-f]{64}$/, 'sha256:<64 hex digits>'),
    actions: z.array(z.unknown()).max(10_000),
    summary: z.strictObject({ create: count, delete: count, keep: count, update: count }),
  })
  return { action, envelope }
}

let builtPlanSchemas: ReturnType<typeof buildServerPlanSchemas> | undefined
/** The rules of a `prov.server.plan/v1` record: its envelope and each action (built on first use). */
export function serverPlanSchemas(): ReturnType<typeof buildServerPlanSchemas> {
  builtPlanSchemas ??= buildServerPlanSchemas()
  return builtPlanSchemas
}
