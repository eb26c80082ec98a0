import { colourAllowed, type OutputFormat, writeStdout } from '@prov/core'
import type { PlanAction, PlanPrice, ServerPlan } from './plan'
import type { ServerSpec } from './providers/types'

/**
 * The human view of a plan (a terminal, or `--out table`): one line per change, like Terraform
 * (`+ create web-01 (local, 1 core, 512 MB)`, `~ update`, `- delete`, `-/+ replace`), then a
 * summary. Pipes keep getting the JSON record.
 */

type Paint = (text: string) => string

const ansi =
  (code: number): Paint =>
  (text) =>
    `\x1b[${code}m${text}\x1b[0m`

/** Colours only for a terminal that wants them. */
export function painter(stream: NodeJS.WriteStream): { add: Paint; change: Paint; remove: Paint; dim: Paint } {
  const color = colourAllowed(stream)
  const plain: Paint = (text) => text
  return color ? { add: ansi(32), change: ansi(33), remove: ansi(31), dim: ansi(2) } : { add: plain, change: plain, remove: plain, dim: plain }
}

const plural = (n: number, word: string) => `${n} ${word}${n === 1 ? '' : 's'}`

/** `local, 1 core, 512 MB, 10 GB disk` — what a created server gets. */
export function describeSpec(provider: string, spec?: ServerSpec): string {
  const parts = [provider]
  if (spec?.plan) parts.push(`plan ${spec.plan}`)
  if (spec?.cores) parts.push(plural(spec.cores, 'core'))
  if (spec?.memory_mb) parts.push(`${spec.memory_mb} MB`)
  if (spec?.disk_gb) parts.push(`${spec.disk_gb} GB disk`)
  if (spec?.zone) parts.push(`zone ${spec.zone}`)
  if (spec?.address) parts.push(spec.address)
  return parts.join(', ')
}

function shown(value: unknown): string {
  if (value === null || value === undefined) return '(none)'
  if (typeof value !== 'object') return String(value)
  if (Array.isArray(value)) return `[${value.map(shown).join(', ')}]`
  return `{${Object.entries(value)
    .map(([k, v]) => `${k}: ${shown(v)}`)
    .join(', ')}}`
}

function updateLine(action: PlanAction): string {
  const changes = Object.entries(action.changes ?? {}).map(([field, [from, to]]) => `${field} ${shown(from)} -> ${shown(to)}`)
  if (action.start) changes.push('start it')
  return `: ${changes.length ? changes.join('; ') : action.reason}`
}

/** `0.0060 EUR/h  3.85 EUR/mo`; `-` when the provider has no price. */
export function priceText(price: PlanPrice | null | undefined): string {
  if (!price) return '-'
  return `${price.hourly.toFixed(4)} ${price.currency}/h  ${price.monthly.toFixed(2)} ${price.currency}/mo`
}

/** The monthly cost of what the plan creates, per currency (`3,850.00 EUR/mo`), or '' when nothing is priced. */
function totalText(actions: PlanAction[]): string {
  const totals = new Map<string, number>()
  let unpriced = 0
  for (const action of actions) {
    if (action.action !== 'create') continue
    if (action.price) totals.set(action.price.currency, (totals.get(action.price.currency) ?? 0) + action.price.monthly)
    else unpriced++
  }
  if (!totals.size) return ''
  const sums = [...totals].map(([currency, sum]) => `${sum.toLocaleString('en', { minimumFractionDigits: 2, maximumFractionDigits: 2 })} ${currency}/mo`)
  return ` New servers cost ${sums.join(' + ')}${unpriced ? ` (${unpriced} without a price)` : ''}.`
}

/** The plan as lines for people; `paint` colours the markers. */
export function renderPlan(plan: ServerPlan, paint: ReturnType<typeof painter>): string {
  const lines: string[] = []
  // Created servers show their price in a column of its own, when the plan has any.
  const priced = plan.actions.some((a) => a.action === 'create' && a.price)
  const createText = (action: PlanAction) => `create ${action.server} (${describeSpec(action.provider, action.spec)})`
  const width = priced ? Math.max(0, ...plan.actions.filter((a) => a.action === 'create').map((a) => createText(a).length)) : 0
  const priceColumn = (action: PlanAction, text: string) => (priced ? `${text.padEnd(width)}  ${priceText(action.price)}` : text)
  const deletes = new Map(plan.actions.filter((a) => a.action === 'delete').map((a) => [a.server, a]))
  const replaced = new Set(plan.actions.filter((a) => a.action === 'create' && deletes.has(a.server)).map((a) => a.server))
  for (const action of plan.actions) {
    const name = action.server
    switch (action.action) {
      case 'create':
        if (replaced.has(name)) {
          const old = deletes.get(name) as PlanAction
          lines.push(
            `${paint.remove('-')}/${paint.add('+')} replace ${name} (${old.provider} -> ${describeSpec(action.provider, action.spec)}) ${paint.dim(`# ${action.reason}`)}`,
          )
        } else {
          lines.push(`${paint.add('+')} ${priceColumn(action, createText(action))}`)
        }
        break
      case 'update':
        lines.push(`${paint.change('~')} update ${name} (${action.provider})${updateLine(action)}`)
        break
      case 'delete':
        if (!replaced.has(name)) lines.push(`${paint.remove('-')} delete ${name} (${action.provider}) ${paint.dim(`# ${action.reason}`)}`)
        break
      case 'keep':
        break
    }
  }
  const s = plan.summary
  if (!plan.actions.length) return 'Nothing to do: no servers.\n'
  if (!lines.length) return `No changes: ${plural(s.keep, 'server')} ${s.keep === 1 ? 'matches' : 'match'} ${plan.source}.\n`
  const summary = `Plan: ${s.create} to create, ${s.update} to update, ${s.delete} to delete, ${s.keep} unchanged.${totalText(plan.actions)}`
  return `${lines.join('\n')}\n\n${summary}\n`
}

/** Lines for a confirmation of an action on existing servers: `- delete web-01 (local)`. */
export function renderTargets(verb: string, servers: { name: string; provider: string }[], paint: ReturnType<typeof painter>): string {
  const marker = verb === 'delete' ? paint.remove('-') : paint.change('~')
  return `${servers.map((s) => `${marker} ${verb} ${s.name} (${s.provider})`).join('\n')}\n`
}

/** Prints a plan: the human view for `--out table` (a terminal by default), the record otherwise. */
export function emitPlan(ctx: { common: { out: OutputFormat }; emit(data: unknown): void }, plan: ServerPlan): void {
  if (ctx.common.out === 'table') writeStdout(renderPlan(plan, painter(process.stdout)))
  else ctx.emit(plan)
}
