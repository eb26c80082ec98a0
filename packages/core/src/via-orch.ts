/**
 * Hand-off of a command to a running orchestrator: a command declared with `orchestrated: 'server.apply'` gets `--via-orch` / `--direct`; when the execution
 * mode says orchestrated, the runner submits a one-step workflow that runs the same binary with the
 * same argv plus `--direct`, relays its events on stderr, then its stdout and exit code. The job
 * survives the terminal that started it (Ctrl-C detaches, the workflow keeps running).
 */
import type { ArgsDef } from 'citty'
import type { CommonOptions } from './command'
import { ExitCode, failedError, usageError } from './errors'
import { log } from './log'
import { chooseExecutionMode, endpointOf, type OrchClientConfig, type OrchClientOptions, orchGet, submitWorkflow, watchWorkflow } from './orch-client'
import { formatOutput, writeStdout } from './output'
import { readStdinBuffer } from './stdin'

/** The flags an orchestrated command gets. */
export const viaOrchArgs = {
  'via-orch': { type: 'boolean', description: 'Hand the work to the running orchestrator (prov-orch serve): it survives this terminal' },
  direct: { type: 'boolean', description: 'Run here, never through the orchestrator (overrides execution.default_mode)' },
} as const satisfies ArgsDef

export interface ViaOrchRequest {
  /** Operation name for the execution rules (`server.apply`, `taskserv.install`). */
  operation: string
  common: CommonOptions
  viaOrch: boolean
  direct: boolean
  /** The binary's whole argv (after the script path). */
  argv?: string[]
  /** The script to run in the step (default: this process's script, e.g. bin/prov-server). */
  script?: string
}

interface StepStatus {
  id: string
  status: string
  output: unknown
  error: string | null
  exit_code: number | null
  attempts: number
}

interface WorkflowStatus {
  id: string
  status: string
  error?: string | null
  steps?: StepStatus[]
}

interface StepLog {
  step: string
  attempt: number
  stream: string
  text: string
}

/** Exit code of a command interrupted by Ctrl-C (128 + SIGINT), as shells report it. */
const INTERRUPTED = 130

/** Environment the step needs to behave like this shell: prov settings and the config home; no tokens or keys. */
function stepEnv(): Record<string, string> {
  const env: Record<string, string> = {}
  for (const [key, value] of Object.entries(process.env)) {
    if (value === undefined) continue
    if (
      (key.startsWith('PROV_') && !/TOKEN|SECRET|PASSWORD|KEY|ORCH_(WORKFLOW|STEP)_ID|ORCH_ATTEMPT/.test(key)) ||
      key === 'XDG_CONFIG_HOME' ||
      key === 'NO_COLOR'
    ) {
      env[key] = value
    }
  }
  return env
}

/** The step's argv: same words, `--via-orch` dropped, `--direct` (no recursion) and the resolved `--out` added before a `--`. */
export function stepArgv(argv: string[], out: string): string[] {
  const dash = argv.indexOf('--')
  const own = (dash >= 0 ? argv.slice(0, dash) : argv).filter((a) => a !== '--via-orch' && !a.startsWith('--via-orch='))
  const hasOut = own.some((a) => a === '--out' || a === '-o' || a.startsWith('--out=') || /^-o./.test(a))
  return [...own, '--direct', ...(hasOut ? [] : ['--out', out]), ...(dash >= 0 ? argv.slice(dash) : [])]
}

/**
 * Decides the execution mode (flag > execution config > direct) and, when orchestrated, runs the
 * command through the orchestrator. Returns undefined to run direct, else the exit code to use.
 */
export async function runViaOrchestrator(request: ViaOrchRequest): Promise<number | undefined> {
  const { operation, common } = request
  if (request.viaOrch && request.direct) throw usageError('--via-orch and --direct contradict each other', { hint: 'give one of them' })
  if (request.direct) return undefined
  // Inside an orchestrator step (a workflow someone wrote), never submit again; dry runs stay local.
  if (!request.viaOrch && (process.env.PROV_ORCH_WORKFLOW_ID || common.check)) return undefined
  const { loadCommandConfig } = await import('@prov/core/config')
  const loaded = await loadCommandConfig(common)
  const config = loaded.config as unknown as OrchClientConfig
  const client: OrchClientOptions = { baseDir: loaded.workspace?.path ?? process.cwd() }
  const choice = await chooseExecutionMode(operation, config, { ...client, viaOrch: request.viaOrch })
  if (choice.mode === 'direct') {
    // auto means "the orchestrator if one is there": running here is what was asked, silently.
    if (choice.fallback && choice.wanted === 'orchestrated') {
      log().warn(`no orchestrator answers at ${endpointOf(config)}: running ${operation} here (orchestrator.fallback_to_direct)`)
    }
    return undefined
  }
  return runOrchestrated(request, config, client)
}

async function runOrchestrated(request: ViaOrchRequest, config: OrchClientConfig, client: OrchClientOptions): Promise<number> {
  const { operation, common } = request
  const input = await readStdinBuffer()
  const script = request.script ?? process.argv[1]
  const argv = stepArgv(request.argv ?? process.argv.slice(2), common.out)
  const stepId = operation
  // From the submission on, Ctrl-C detaches instead of killing us: the workflow is the orchestrator's.
  const abort = new AbortController()
  let detached = false
  const onSignal = () => {
    detached = true
    abort.abort()
  }
  process.once('SIGINT', onSignal)
  let submitted: string | undefined
  try {
    const { workflow_id: id } = await submitWorkflow(
      config,
      {
        name: operation,
        steps: [
          {
            id: stepId,
            run: [process.execPath, script, ...argv],
            // `value` keeps the text literal: no template rendering, byte for byte on the step's stdin.
            ...(input?.length ? { input: { value: input.toString('utf8') } } : {}),
            cwd: process.cwd(),
            env: stepEnv(),
          },
        ],
      },
      client,
    )
    submitted = id
    log().info(`${operation}: workflow ${id} on the orchestrator at ${endpointOf(config)} (prov-orch watch ${id})`)
    if (!detached) {
      for await (const event of watchWorkflow(config, id, { ...client, signal: abort.signal })) {
        // The reason of a step that exited non-zero is left out: its stderr is relayed in full at the end.
        const exited = typeof event.data?.exit_code === 'number' && event.data.exit_code !== 0
        const detail = event.type === 'workflow.failed' || exited ? undefined : (event.data?.reason ?? event.data?.error)
        log().info(`${id}: ${event.type}${event.step ? ` ${event.step}` : ''}${detail ? `: ${String(detail)}` : ''}`)
      }
    }
  } catch (error) {
    if (!detached || !submitted) throw error
  } finally {
    process.removeListener('SIGINT', onSignal)
  }
  const id = submitted as string
  if (detached) {
    process.stderr.write(`detached: workflow ${id} keeps running on the orchestrator; follow it with prov-orch watch ${id}\n`)
    return INTERRUPTED
  }

  const status = await orchGet<WorkflowStatus>(config, `/v1/workflows/${encodeURIComponent(id)}`, client)
  const step = status.steps?.find((s) => s.id === stepId)
  const logs = await orchGet<StepLog[]>(config, `/v1/workflows/${encodeURIComponent(id)}/logs?step=${encodeURIComponent(stepId)}`, client)
  const lastAttempt = Math.max(0, ...logs.map((l) => l.attempt))
  const ofLast = (stream: string) =>
    logs
      .filter((l) => l.attempt === lastAttempt && l.stream === stream)
      .map((l) => l.text)
      .join('')
  // The step's own stderr (its log lines and error line), as a direct run would have shown it.
  const stderr = ofLast('stderr')
  if (stderr) process.stderr.write(stderr.endsWith('\n') ? stderr : `${stderr}\n`)
  if (step?.status === 'succeeded') {
    const output = step.output
    if (typeof output === 'string') writeStdout(`${output}\n`)
    else if (output !== null && output !== undefined) writeStdout(formatOutput(output, common.out))
    return ExitCode.OK
  }
  writeStdout(ofLast('stdout'))
  if (step?.exit_code !== null && step?.exit_code !== undefined && step.exit_code !== 0) return step.exit_code
  throw failedError(`workflow ${id} ${status.status}${step?.error ? `: ${step.error}` : status.error ? `: ${status.error}` : ''}`, {
    hint: `prov-orch status ${id}`,
  })
}
