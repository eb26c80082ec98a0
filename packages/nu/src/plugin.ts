import { readFileSync } from 'node:fs'
import { join } from 'node:path'
import { PassThrough, type Readable, type Writable } from 'node:stream'
import { commandLine, type EvaluatedCall, flagName } from './command-line'
import { dynamicKindOf, dynamicValues } from './dynamic'
import { OutputStream } from './output-stream'
import { anyVersionEnv, LineSplitter, type Message, MessageReader, MessageWriter, supportedRange, versionProblem } from './protocol'
import { execute, interruptChildren, stopAllChildren } from './runner'
import { signatureOf } from './signatures'
import { type CommandSpec, commandSpecs, findCommand, installRoot, loadTree } from './spec'
import { bytesToNu, type LabeledError, type NuValue, type Span, toNu, ValueError, valueToLine, valueToStdin } from './values'

/**
 * nu_plugin_prov: the prov commands as Nushell commands. Each call runs the command the binary
 * would run (same definitions, same flags, same exit codes) and answers with Nushell values.
 */

interface RunCall {
  name: string
  call: EvaluatedCall
  input: unknown
}

/** Commands whose stdout is the bytes they produce (ciphertext, plaintext), not JSON records. */
const rawOutput = new Set(['prov-kms encrypt', 'prov-kms decrypt', 'prov-kms rewrap', 'prov-kms secret get', 'prov-kms sops decrypt', 'prov-kms sops encrypt'])

interface InputStream {
  data(item: { List?: NuValue; Raw?: { Ok?: number[]; Err?: unknown } }): void
  end(): void
}

function labeled(msg: string, span: Span, options: { label?: string; code?: string; help?: string; inner?: LabeledError[] } = {}): LabeledError {
  return {
    msg,
    labels: [{ text: options.label ?? msg, span }],
    code: options.code ?? null,
    url: null,
    help: options.help ?? null,
    inner: options.inner ?? [],
  }
}

/** The one error line a binary printed (`--log-format json`), or undefined. */
interface ErrorRecord {
  code?: number
  kind?: string
  message?: string
  location?: string
  hint?: string
}

/** Nushell environment values as the strings a process environment holds (lists: PATH-style). */
function envFromNu(map: Record<string, NuValue>): Record<string, string> {
  const env: Record<string, string> = {}
  for (const [name, value] of Object.entries(map ?? {})) {
    const [variant, body] = Object.entries(value ?? {})[0] ?? []
    if (!variant || !body) continue
    if (variant === 'String' || variant === 'Int' || variant === 'Float' || variant === 'Bool') env[name] = String(body.val)
    else if (variant === 'List') {
      const items = (body.vals as NuValue[]).map((v) => Object.values(v)[0]?.val).filter((v) => typeof v === 'string')
      env[name] = items.join(':')
    }
  }
  return env
}

export class Plugin {
  private readonly writer: MessageWriter
  private engineVersion?: string
  private refusal?: string
  private nextEngineCallId = 0
  private nextStreamId = 0
  private readonly engineCalls = new Map<number, { resolve(value: Record<string, unknown>): void; reject(error: Error): void }>()
  private readonly inputs = new Map<number, InputStream>()
  private readonly outputs = new Map<number, OutputStream>()
  private active = 0
  private closing = false

  constructor(
    input: Readable,
    output: Writable,
    private readonly errors: Writable,
    private readonly exit: (code: number) => void,
  ) {
    this.writer = new MessageWriter(output, () => this.shutdown())
    new MessageReader(
      input,
      (message) => this.onMessage(message),
      () => this.shutdown(),
      (line, error) => this.errors.write(`nu_plugin_prov: unreadable message from Nushell (${error.message}): ${line.slice(0, 200)}\n`),
    )
  }

  send(message: Message): void {
    this.writer.send(message)
  }

  streamEnded(id: number): void {
    this.outputs.delete(id)
    this.maybeExit()
  }

  private shutdown(): void {
    if (this.closing && this.active === 0) {
      this.exit(0)
      return
    }
    // Nushell is gone: nothing can be answered any more. Stop what runs, gently first.
    this.closing = true
    stopAllChildren(250)
    setTimeout(() => this.exit(0), 300).unref()
  }

  private maybeExit(): void {
    if (this.closing && this.active === 0 && this.outputs.size === 0) this.exit(0)
  }

  private onMessage(message: Message): void {
    if (message === 'Goodbye') {
      this.closing = true
      this.maybeExit()
      return
    }
    if (typeof message !== 'object' || message === null) return
    const [kind, body] = Object.entries(message)[0] ?? []
    switch (kind) {
      case 'Hello':
        this.hello(body as { version?: string })
        break
      case 'Call': {
        const [id, call] = body as [number, unknown]
        this.active++
        this.call(id, call)
          .catch((error: unknown) => this.send({ CallResponse: [id, { Error: labeled(String((error as Error)?.message ?? error), { start: 0, end: 0 }) }] }))
          .finally(() => {
            this.active--
            this.maybeExit()
          })
        break
      }
      case 'EngineCallResponse': {
        const [id, response] = body as [number, Record<string, unknown>]
        const pending = this.engineCalls.get(id)
        if (!pending) return
        this.engineCalls.delete(id)
        if (response && typeof response === 'object' && 'Error' in response) pending.reject(new Error(String((response.Error as LabeledError)?.msg)))
        else pending.resolve(response)
        break
      }
      case 'Signal':
        if (body === 'Interrupt') interruptChildren()
        break
      case 'Data': {
        const [id, data] = body as [number, Parameters<InputStream['data']>[0]]
        this.inputs.get(id)?.data(data)
        break
      }
      case 'End': {
        const id = body as number
        const input = this.inputs.get(id)
        this.inputs.delete(id)
        input?.end()
        // The consumer confirms the end of a stream it did not drop.
        this.send({ Drop: id })
        break
      }
      case 'Ack':
        this.outputs.get(body as number)?.ack()
        break
      case 'Drop':
        this.outputs.get(body as number)?.drop()
        break
    }
  }

  private hello(engine: { version?: string }): void {
    this.engineVersion = String(engine?.version ?? '')
    this.refusal = versionProblem(this.engineVersion)
    // Answer in the engine's own version: a refusal is then a readable error on every call
    // instead of the engine's generic "incompatible plugin".
    this.send({ Hello: { protocol: 'nu-plugin', version: this.engineVersion || '0.0.0', features: [] } })
    if (this.refusal) this.errors.write(`nu_plugin_prov: error: ${this.refusal}; hint: ${this.refusalHint()}\n`)
  }

  private refusalHint(): string {
    return `use a Nushell ${supportedRange()}, or set ${anyVersionEnv}=1 to try this one anyway`
  }

  engineCall(context: number, call: unknown): Promise<Record<string, unknown>> {
    const id = this.nextEngineCallId++
    return new Promise((resolve, reject) => {
      this.engineCalls.set(id, { resolve, reject })
      this.send({ EngineCall: { context, id, call } })
    })
  }

  private respond(id: number, response: Record<string, unknown>): void {
    this.send({ CallResponse: [id, response] })
  }

  private async call(id: number, call: unknown): Promise<void> {
    if (call === 'Metadata') return this.respond(id, { Metadata: { version: pluginVersion() } })
    const head = (call as { Run?: RunCall })?.Run?.call?.head ?? { start: 0, end: 0 }
    if (this.refusal) {
      return this.respond(id, { Error: labeled(this.refusal, head, { label: 'this Nushell version', code: 'prov::nu::version', help: this.refusalHint() }) })
    }
    if (call === 'Signature') {
      const specs = await commandSpecs()
      return this.respond(id, { Signature: specs.map(signatureOf) })
    }
    if (call && typeof call === 'object') {
      if ('Run' in call) return this.run(id, (call as { Run: RunCall }).Run)
      if ('GetCompletion' in call) return this.complete(id, (call as { GetCompletion: { name: string; arg_type: Record<string, unknown> } }).GetCompletion)
    }
    return this.respond(id, { Error: labeled('nu_plugin_prov does not support this call', head) })
  }

  /** Argument values offered while typing (Nushell 0.109 and later ask plugins for them). */
  private async complete(id: number, request: { name: string; arg_type: Record<string, unknown> }): Promise<void> {
    const found = await findCommand(request.name)
    let values: string[] | undefined
    if (found && !found.spec.group) {
      const flag = typeof request.arg_type?.Flag === 'string' ? (request.arg_type.Flag as string) : undefined
      const index = typeof request.arg_type?.Positional === 'number' ? (request.arg_type.Positional as number) : undefined
      const positionals = found.spec.positionals
      const argument = flag ?? (index !== undefined ? (positionals[Math.min(index, positionals.length - 1)]?.name ?? '') : '')
      const kind = dynamicKindOf(found.spec, argument, flag !== undefined)
      if (kind) values = await dynamicValues(kind, await this.completionContext(id))
    }
    this.respond(id, {
      CompletionItems:
        values?.map((value) => ({
          value,
          display_override: null,
          description: null,
          extra: null,
          append_whitespace: true,
          match_indices: null,
          span: null,
          kind: null,
        })) ?? null,
    })
  }

  /**
   * The workspace and folder the shell is in while completing: the plugin process stays where it
   * was started (and `cd` in Nushell does not move it), so both come from the engine.
   */
  private async completionContext(id: number): Promise<{ workspace?: string; cwd?: string }> {
    const asked = Promise.all([this.engineCall(id, 'GetEnvVars'), this.engineCall(id, 'GetCurrentDir')]).then(
      ([envResponse, cwdResponse]) => {
        const env = envFromNu((envResponse.ValueMap ?? {}) as Record<string, NuValue>)
        const cwdValue = pipelineValue(cwdResponse)
        const cwd = cwdValue ? Object.values(cwdValue)[0]?.val : undefined
        return { workspace: env.PROV_WORKSPACE || undefined, cwd: typeof cwd === 'string' ? cwd : undefined }
      },
      () => ({}),
    )
    // An engine that does not answer engine calls while completing leaves the plugin's own view.
    const late = new Promise<Record<string, never>>((resolve) => setTimeout(() => resolve({}), 2000).unref())
    return Promise.race([asked, late])
  }

  private async run(id: number, run: RunCall): Promise<void> {
    const head = run.call.head
    // Take the input stream before anything else: its data may already be on the way.
    let stdin: PassThrough
    try {
      stdin = this.stdinFrom(run.input)
    } catch (error) {
      const span = (error as ValueError).span ?? head
      return this.respond(id, { Error: (error as ValueError).labeled ?? labeled((error as Error).message, span, { code: 'prov::exit::2' }) })
    }
    const refuse = (error: LabeledError) => {
      stdin.destroy()
      this.respond(id, { Error: error })
    }
    const found = await findCommand(run.name)
    if (!found) return refuse(labeled(`unknown prov command '${run.name}'`, head))
    const { spec, binary } = found
    if (spec.group) {
      stdin.destroy()
      const help = await this.engineCall(id, 'GetHelp')
      const value = pipelineValue(help)
      return this.respond(id, { PipelineData: { Value: [value ?? toNu('', head), null] } })
    }
    const [envResponse, cwdResponse] = await Promise.all([this.engineCall(id, 'GetEnvVars'), this.engineCall(id, 'GetCurrentDir')])
    const env = envFromNu((envResponse.ValueMap ?? {}) as Record<string, NuValue>)
    let argv: string[]
    let streaming: boolean
    let logFormat: 'text' | 'json'
    try {
      ;({ argv, streaming, logFormat } = commandLine(spec, run.call, env))
    } catch (error) {
      return refuse(labeled((error as Error).message, (error as ValueError).span ?? head, { code: 'prov::exit::2' }))
    }
    const cwdValue = pipelineValue(cwdResponse)
    const cwd = cwdValue ? String(Object.values(cwdValue)[0]?.val ?? process.cwd()) : process.cwd()
    const execution = execute({ tree: await loadTree(binary), spec, argv, env, cwd, stdin, streaming })
    const raw = rawOutput.has([spec.program, ...spec.path].join(' ')) && !run.call.named.some(([name]) => flagName(name) === 'field')
    await this.answer(id, head, spec, execution, { raw, streaming, logFormat })
  }

  /** The command's stdin: the pipeline input as raw text/bytes, JSON, or NDJSON lines of a stream. */
  private stdinFrom(input: unknown): PassThrough {
    const stdin = new PassThrough()
    if (input === 'Empty' || input === undefined || input === null) {
      stdin.end()
      return stdin
    }
    const header = input as Record<string, unknown>
    if ('Value' in header) {
      const value = (Array.isArray(header.Value) ? header.Value[0] : header.Value) as NuValue
      stdin.end(valueToStdin(value))
      return stdin
    }
    const info = (header.ListStream ?? header.ByteStream) as { id: number } | undefined
    if (!info) throw new ValueError('unsupported pipeline input')
    const id = info.id
    const write = (bytes: Buffer) => {
      // Acknowledge when the command has taken the data: a slow reader slows the producer down.
      if (stdin.write(bytes)) this.send({ Ack: id })
      else stdin.once('drain', () => this.send({ Ack: id }))
    }
    this.inputs.set(id, {
      data: (item) => {
        if (item.List) {
          try {
            write(valueToLine(item.List))
          } catch (error) {
            stdin.destroy(error as Error)
          }
        } else if (item.Raw?.Ok) write(Buffer.from(item.Raw.Ok))
        else if (item.Raw?.Err) stdin.destroy(new Error('input stream failed'))
      },
      end: () => stdin.end(),
    })
    // Not needed after all (the command failed or ended early): tell the engine to stop sending.
    stdin.on('close', () => {
      if (this.inputs.delete(id)) this.send({ Drop: id })
    })
    stdin.on('error', () => {})
    return stdin
  }

  /** Turns the command's output into the call's answer: one value, or a list stream of records. */
  private async answer(
    id: number,
    head: Span,
    spec: CommandSpec,
    execution: ReturnType<typeof execute>,
    options: { raw: boolean; streaming: boolean; logFormat: 'text' | 'json' },
  ): Promise<void> {
    const program = spec.program
    let errorRecord: ErrorRecord | undefined
    const stderrTail: string[] = []
    const stderrDone = forEachLine(execution.stderr, (line) => {
      const record = parseJsonLine(line) as (ErrorRecord & { level?: string }) | undefined
      if (record && typeof record === 'object' && typeof record.level === 'string') {
        if (record.level === 'error' || record.level === 'fatal') errorRecord = record
        else if (options.logFormat === 'json') this.errors.write(`${line}\n`)
        else this.errors.write(`${program}: ${record.level === 'warn' ? 'warning: ' : record.level === 'debug' ? 'debug: ' : ''}${record.message ?? ''}\n`)
        return
      }
      stderrTail.push(line)
      if (stderrTail.length > 5) stderrTail.shift()
      this.errors.write(`${line}\n`)
    })
    const { exitCodeNames } = await import('@prov/core')
    const failure = (code: number): LabeledError => {
      const kind = exitCodeNames[code as keyof typeof exitCodeNames] ?? 'failed'
      const where = errorRecord?.location ? ` at ${errorRecord.location}` : ''
      return labeled(errorRecord?.message ?? `${program} exited with code ${code}`, head, {
        label: `${[program, ...spec.path].join(' ')}: ${kind}${where}`,
        code: `prov::exit::${code}`,
        help: errorRecord?.hint ?? (stderrTail.length ? stderrTail.join('\n') : undefined),
      })
    }

    if (options.raw) {
      const bytes = await collect(execution.stdout)
      const code = await execution.exit
      await stderrDone
      if (code !== 0) return this.respond(id, { Error: failure(code) })
      return this.respond(id, { PipelineData: { Value: [bytesToNu(bytes, head), null] } })
    }

    // Records as they come: a whole JSON document (`--out json`), or NDJSON lines that become a
    // list stream as soon as a second line shows the output is a stream (or `--out ndjson`).
    let stream: OutputStream | undefined
    const firstLines: unknown[] = []
    let document: string[] | undefined
    const startStream = () => {
      const streamId = this.nextStreamId++
      stream = new OutputStream(streamId, this, execution)
      this.outputs.set(streamId, stream)
      this.respond(id, { PipelineData: { ListStream: { id: streamId, span: head, metadata: null } } })
      for (const item of firstLines.splice(0)) stream.push(toNu(item, head))
    }
    await forEachLine(execution.stdout, (line) => {
      if (document) return void document.push(line)
      if (!line.trim()) return
      const parsed = parseJsonLine(line)
      if (parsed === undefined) {
        if (stream) return stream.push(toNu(line, head))
        document = [...firstLines.map((item) => JSON.stringify(item)), line]
        firstLines.length = 0
        return
      }
      if (stream) return stream.push(toNu(parsed, head))
      firstLines.push(parsed)
      if (options.streaming || firstLines.length > 1) startStream()
    })
    const code = await execution.exit
    await stderrDone
    if (stream) {
      const open = stream as OutputStream
      if (code !== 0 && !open.dropped) open.push({ Error: { error: failure(code), span: head } })
      open.end()
      return
    }
    if (code !== 0) return this.respond(id, { Error: failure(code) })
    if (document) {
      const text = document.join('\n')
      let value: unknown
      try {
        value = JSON.parse(text)
      } catch {
        return this.respond(id, { PipelineData: { Value: [toNu(text, head), null] } })
      }
      return this.respond(id, { PipelineData: { Value: [toNu(value, head), null] } })
    }
    if (options.streaming) return this.respond(id, { PipelineData: { Value: [toNu(firstLines, head), null] } })
    if (!firstLines.length) return this.respond(id, { PipelineData: 'Empty' })
    return this.respond(id, { PipelineData: { Value: [toNu(firstLines[0], head), null] } })
  }
}

/** The prov release this plugin belongs to. */
function pluginVersion(): string {
  try {
    return String(JSON.parse(readFileSync(join(installRoot(), 'packages', 'nu', 'package.json'), 'utf8')).version)
  } catch {
    return '0.0.0'
  }
}

function parseJsonLine(line: string): unknown {
  const text = line.trim()
  if (!/^[[{"\d-]|^(true|false|null)$/.test(text)) return undefined
  try {
    return JSON.parse(text)
  } catch {
    return undefined
  }
}

/** The value inside an engine call's PipelineData answer. */
function pipelineValue(response: Record<string, unknown>): NuValue | undefined {
  const header = (response.PipelineData ?? response) as Record<string, unknown>
  if (!header || typeof header !== 'object' || !('Value' in header)) return undefined
  return (Array.isArray(header.Value) ? header.Value[0] : header.Value) as NuValue
}

function collect(stream: Readable): Promise<Buffer> {
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = []
    stream.on('data', (chunk: Buffer) => chunks.push(chunk))
    stream.on('end', () => resolve(Buffer.concat(chunks)))
    stream.on('error', reject)
  })
}

/** Calls `onLine` for each line of a text stream; resolves at its end. */
function forEachLine(stream: Readable, onLine: (line: string) => void): Promise<void> {
  return new Promise((resolve) => {
    const lines = new LineSplitter(onLine)
    stream.setEncoding('utf8')
    stream.on('data', (chunk: string) => lines.push(chunk))
    let done = false
    const finish = () => {
      if (done) return
      done = true
      lines.end()
      resolve()
    }
    stream.on('end', finish)
    stream.on('error', finish)
  })
}
