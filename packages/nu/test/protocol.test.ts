import { type ChildProcessWithoutNullStreams, spawn } from 'node:child_process'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { runCli, tempWorkspace } from '../../../tests/helpers/cli'
import { LineSplitter } from '../src/protocol'
import { pluginPath } from './helpers'

/**
 * The plugin driven by a scripted engine speaking the protocol (what nu itself does), for what a
 * real nu cannot show: engine versions outside the supported range and flow control.
 */
class ScriptedEngine {
  readonly child: ChildProcessWithoutNullStreams
  readonly messages: any[] = []
  stderr = ''
  preamble = ''
  private buffer = ''
  private waiters: (() => void)[] = []

  constructor(env: Record<string, string | undefined> = {}, cwd?: string) {
    this.child = spawn(process.execPath, [pluginPath, '--stdio'], {
      cwd,
      env: Object.fromEntries(Object.entries({ ...process.env, ...env }).filter(([, v]) => v !== undefined)) as NodeJS.ProcessEnv,
    })
    this.child.stderr.on('data', (d: Buffer) => (this.stderr += d.toString('utf8')))
    this.child.stdout.on('data', (d: Buffer) => {
      this.buffer += d.toString('utf8')
      if (!this.preamble && this.buffer.length >= 5) {
        this.preamble = this.buffer.slice(0, 5)
        this.buffer = this.buffer.slice(5)
      }
      if (!this.preamble) return
      let newline = this.buffer.indexOf('\n')
      while (newline >= 0) {
        const line = this.buffer.slice(0, newline)
        this.buffer = this.buffer.slice(newline + 1)
        if (line.trim()) this.messages.push(JSON.parse(line))
        newline = this.buffer.indexOf('\n')
      }
      for (const wake of this.waiters.splice(0)) wake()
    })
  }

  send(message: unknown): void {
    this.child.stdin.write(`${JSON.stringify(message)}\n`)
  }

  /** Waits for a message matching `test` (fails the test after 30 s). */
  async next(test: (message: any) => boolean): Promise<any> {
    const until = Date.now() + 30_000
    for (;;) {
      const index = this.messages.findIndex(test)
      if (index >= 0) return this.messages.splice(index, 1)[0]
      if (Date.now() > until) throw new Error(`no such message; got ${JSON.stringify(this.messages).slice(0, 2000)}\nstderr: ${this.stderr}`)
      await new Promise<void>((resolve) => {
        this.waiters.push(resolve)
        setTimeout(resolve, 200)
      })
    }
  }

  /** Waits until stderr has shown `text` (it may arrive after stdout); returns all of stderr. */
  async stderrWith(text: string): Promise<string> {
    const until = Date.now() + 10_000
    while (!this.stderr.includes(text) && Date.now() < until) await new Promise((r) => setTimeout(r, 50))
    return this.stderr
  }

  count(test: (message: any) => boolean): number {
    return this.messages.filter(test).length
  }

  async close(): Promise<number | null> {
    this.child.stdin.end()
    if (this.child.exitCode !== null) return this.child.exitCode
    return new Promise((resolve) => this.child.on('exit', (code) => resolve(code)))
  }

  /** Answers the engine calls a Run makes (environment, folder). */
  answerEngineCalls(env: Record<string, string>, cwd: string): void {
    const answer = () => {
      for (const message of this.messages.splice(0).filter((m) => {
        if (!m.EngineCall) {
          this.messages.push(m)
          return false
        }
        return true
      })) {
        const { id, call } = message.EngineCall
        const span = { start: 0, end: 0 }
        if (call === 'GetEnvVars') {
          const map = Object.fromEntries(Object.entries(env).map(([k, v]) => [k, { String: { val: v, span } }]))
          this.send({ EngineCallResponse: [id, { ValueMap: map }] })
        } else if (call === 'GetCurrentDir') this.send({ EngineCallResponse: [id, { PipelineData: { Value: [{ String: { val: cwd, span } }, null] } }] })
      }
    }
    const timer = setInterval(answer, 20)
    this.child.on('exit', () => clearInterval(timer))
  }
}

const hello = (version: string) => ({ Hello: { protocol: 'nu-plugin', version, features: [] } })

describe('plugin protocol', () => {
  it('announces JSON, answers Hello in the engine version and lists signatures', async () => {
    const engine = new ScriptedEngine()
    engine.send(hello('0.112.0'))
    const reply = await engine.next((m) => m.Hello)
    expect(engine.preamble).toBe('\x04json')
    expect(reply.Hello).toEqual({ protocol: 'nu-plugin', version: '0.112.0', features: [] })
    engine.send({ Call: [0, 'Signature'] })
    const signatures = await engine.next((m) => m.CallResponse)
    const names = signatures.CallResponse[1].Signature.map((s: any) => s.sig.name)
    for (const name of ['prov', 'prov config show', 'prov server list', 'prov taskserv install', 'prov kms secret get', 'prov oci tags', 'prov orch watch']) {
      expect(names).toContain(name)
    }
    engine.send('Goodbye')
    expect(await engine.close()).toBe(0)
  })

  it.each(['0.99.0', '0.116.0', '1.0.0'])('refuses engine %s with a message naming the supported range', async (version) => {
    const engine = new ScriptedEngine({ PROV_NU_ANY_VERSION: undefined })
    engine.send(hello(version))
    await engine.next((m) => m.Hello)
    engine.send({ Call: [0, 'Signature'] })
    const response = await engine.next((m) => m.CallResponse)
    const error = response.CallResponse[1].Error
    expect(error.msg).toBe(`Nushell ${version} is not supported by nu_plugin_prov (supported: Nushell 0.108 to 0.115)`)
    expect(error.help).toMatch(/PROV_NU_ANY_VERSION=1/)
    expect(error.code).toBe('prov::nu::version')
    const line = `nu_plugin_prov: error: Nushell ${version} is not supported`
    expect(await engine.stderrWith(line)).toContain(line)
    engine.send('Goodbye')
    await engine.close()
  })

  it('talks to an engine outside the range when PROV_NU_ANY_VERSION=1', async () => {
    const engine = new ScriptedEngine({ PROV_NU_ANY_VERSION: '1' })
    engine.send(hello('0.120.0'))
    await engine.next((m) => m.Hello)
    engine.send({ Call: [0, 'Signature'] })
    const response = await engine.next((m) => m.CallResponse)
    expect(response.CallResponse[1].Signature.length).toBeGreaterThan(50)
    engine.send('Goodbye')
    await engine.close()
  })

  describe('flow control', () => {
    let ws: Awaited<ReturnType<typeof tempWorkspace>>
    beforeAll(async () => {
      ws = await tempWorkspace('flow', 'minimal')
      const keygen = await runCli('prov-kms', ['keygen', '-q'], { env: ws.env, cwd: ws.path })
      expect(keygen.code, keygen.stderr).toBe(0)
    })
    afterAll(() => ws?.cleanup())

    it('sends at most 32 unacknowledged records, the rest after Acks; input streams are acknowledged', async () => {
      const engine = new ScriptedEngine()
      engine.send(hello('0.108.0'))
      await engine.next((m) => m.Hello)
      const env = Object.fromEntries(Object.entries({ ...process.env, ...ws.env }).filter(([, v]) => v !== undefined)) as Record<string, string>
      engine.answerEngineCalls(env, ws.path)
      const span = { start: 1, end: 9 }
      const named = [
        [{ item: 'field', span }, { String: { val: 'a', span } }],
        [{ item: 'out', span }, { String: { val: 'ndjson', span } }],
      ]
      engine.send({
        Call: [7, { Run: { name: 'prov kms encrypt', call: { head: span, positional: [], named }, input: { ListStream: { id: 0, span, metadata: null } } } }],
      })
      const records = 100
      for (let i = 0; i < records; i++) engine.send({ Data: [0, { List: { Record: { val: { a: { Int: { val: i, span } } }, span } } }] })
      engine.send({ End: 0 })
      const started = await engine.next((m) => m.CallResponse)
      expect(started.CallResponse[0]).toBe(7)
      const streamId = started.CallResponse[1].PipelineData.ListStream.id
      // The plugin acknowledged every input record and confirmed the end of the input stream.
      await engine.next((m) => m.Drop === 0)
      expect(engine.count((m) => m.Ack === 0)).toBe(records)
      await new Promise((r) => setTimeout(r, 1500))
      expect(engine.count((m) => m.Data?.[0] === streamId)).toBe(32)
      expect(engine.count((m) => m.End === streamId)).toBe(0)
      let received = 0
      while (received < records) {
        const data = await engine.next((m) => m.Data?.[0] === streamId)
        expect(data.Data[1].List.Record.val.a.String.val).toMatch(/^prov:age:v1:/)
        received++
        engine.send({ Ack: streamId })
      }
      await engine.next((m) => m.End === streamId)
      engine.send({ Drop: streamId })
      engine.send('Goodbye')
      expect(await engine.close()).toBe(0)
    })
  })
})

describe('LineSplitter', () => {
  it('gives each line once, whatever the chunks, and the unterminated last line at the end', () => {
    const lines: string[] = []
    const splitter = new LineSplitter((line) => lines.push(line))
    const big = 'x'.repeat(100_000)
    // One long line in many small chunks, then several lines in one chunk.
    for (let i = 0; i < big.length; i += 1000) splitter.push(big.slice(i, i + 1000))
    splitter.push('\na\n\nb')
    splitter.push('c\nd')
    expect(lines).toEqual([big, 'a', '', 'bc'])
    splitter.end()
    expect(lines).toEqual([big, 'a', '', 'bc', 'd'])
    splitter.end()
    expect(lines).toHaveLength(5)
  })
})
