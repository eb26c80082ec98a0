import { type ChildProcess, spawn } from 'node:child_process'
import { readdirSync, readFileSync } from 'node:fs'
import { join } from 'node:path'
import { PassThrough, type Readable, Writable } from 'node:stream'
import type { CommandDef } from 'citty'
import { type CommandSpec, installRoot } from './spec'

/**
 * Runs one prov command for the plugin: in the plugin process when that is safe (quick read-only
 * commands: the modules stay loaded between calls), otherwise as the binary in a child process
 * that a dropped stream or Ctrl-C can stop.
 */

export interface RunOptions {
  /** The binary's command tree (for in-process runs). */
  tree: CommandDef<any>
  spec: CommandSpec
  /** Words after the binary: command path, positionals, flags. */
  argv: string[]
  env: Record<string, string>
  cwd: string
  /** What the command reads on stdin (ends when the pipeline input ends). */
  stdin: Readable
  /** The caller wants records streamed (`--out ndjson`). */
  streaming: boolean
}

export interface Execution {
  stdout: Readable
  stderr: Readable
  /** The exit code, once the command has finished and its output is flushed. */
  exit: Promise<number>
  /** Stops the command (a dropped stream, Ctrl-C); a no-op for in-process runs, which are short. */
  stop(): void
  /** Pauses/resumes the producer (flow control of list streams). */
  pause(): void
  resume(): void
  inProcess: boolean
}

/** Verbs of commands that only read and answer quickly: they run inside the plugin process. */
const quickReadOnlyVerbs = new Set([
  'show',
  'get',
  'explain',
  'list',
  'current',
  'info',
  'resolve',
  'tree',
  'validate',
  'plan',
  'providers',
  'plans',
  'zones',
  'price',
  'catalog',
])

/**
 * prov-kms reads and writes the raw descriptors (binary-safe streaming), which are the plugin's
 * protocol channel here: it always runs as its own process.
 */
const ownDescriptors = new Set(['prov-kms'])

export function runsInProcess(spec: CommandSpec, streaming: boolean): boolean {
  if (process.env.PROV_NU_IN_PROCESS === '0' || streaming) return false
  if (ownDescriptors.has(spec.program)) return false
  if (spec.metadata.mutating || spec.metadata.destructive) return false
  return quickReadOnlyVerbs.has(spec.path[spec.path.length - 1] ?? '')
}

export function execute(options: RunOptions): Execution {
  return runsInProcess(options.spec, options.streaming) ? inProcess(options) : childProcess(options)
}

/** A running binary and everything it started, which a dropped stream or Nushell's exit stops. */
class Child {
  /** Processes it started, as last seen (a workflow engine runs steps in process groups of their own). */
  private readonly descendants = new Set<number>()
  private stopping = false
  private killTimer?: NodeJS.Timeout

  constructor(readonly process: ChildProcess) {}

  private get alive(): boolean {
    return this.process.exitCode === null && this.process.signalCode === null
  }

  /** Sends `name` to the child, its process group, and every process it started (and their groups). */
  signal(name: NodeJS.Signals): void {
    const pid = this.process.pid
    if (pid === undefined) return
    if (this.alive) for (const descendant of descendantsOf(pid)) this.descendants.add(descendant)
    for (const target of [pid, ...this.descendants]) {
      sendSignal(-target, name)
      sendSignal(target, name)
    }
  }

  /** SIGTERM now (it may finish its current write and clean up), SIGKILL after `graceMs`. */
  stop(graceMs = 2000): void {
    this.stopping = true
    this.signal('SIGTERM')
    this.killTimer ??= setTimeout(() => this.signal('SIGKILL'), graceMs)
    this.killTimer.unref()
  }

  /** After it exited: when it was stopped, nothing it started may outlive it. */
  exited(): void {
    if (this.killTimer) clearTimeout(this.killTimer)
    if (this.stopping) this.signal('SIGKILL')
  }
}

const children = new Set<Child>()

/** Every process below `pid`, read from /proc. */
export function descendantsOf(pid: number): number[] {
  const parents = new Map<number, number[]>()
  let entries: string[]
  try {
    entries = readdirSync('/proc')
  } catch {
    return []
  }
  for (const entry of entries) {
    if (!/^\d+$/.test(entry)) continue
    try {
      const stat = readFileSync(`/proc/${entry}/stat`, 'utf8')
      // pid (comm) state ppid …: comm may hold spaces and parentheses, so read after the last ')'.
      const ppid = Number(stat.slice(stat.lastIndexOf(')') + 2).split(' ')[1])
      const list = parents.get(ppid) ?? []
      list.push(Number(entry))
      parents.set(ppid, list)
    } catch {
      // the process ended meanwhile
    }
  }
  const found: number[] = []
  const queue = [pid]
  while (queue.length) {
    for (const child of parents.get(queue.shift()!) ?? []) {
      found.push(child)
      queue.push(child)
    }
  }
  return found
}

function sendSignal(pid: number, name: NodeJS.Signals): void {
  try {
    process.kill(pid, name)
  } catch {
    // gone already, or not a process group
  }
}

/** Stops every running child and what it started (Nushell is gone): gently, then for good. */
export function stopAllChildren(graceMs: number): void {
  for (const child of children) child.stop(graceMs)
}

/** Kills every running child and what it started, now (the plugin exits). */
export function killAllChildren(): void {
  for (const child of children) child.signal('SIGKILL')
}

/** Sends SIGINT to every running child (Ctrl-C in Nushell). */
export function interruptChildren(): void {
  for (const child of children) child.signal('SIGINT')
}

function childProcess(options: RunOptions): Execution {
  const bin = join(installRoot(), 'bin', options.spec.program)
  // Its own process group, so stopping it also stops what it started (ssh, scripts).
  const spawned = spawn(process.execPath, [bin, ...options.argv], {
    cwd: options.cwd,
    env: options.env,
    stdio: ['pipe', 'pipe', 'pipe'],
    detached: true,
  })
  const child = new Child(spawned)
  children.add(child)
  spawned.stdin!.on('error', () => {})
  options.stdin.pipe(spawned.stdin!)
  const exit = new Promise<number>((resolve) => {
    spawned.on('error', () => resolve(127))
    spawned.on('close', (code, signalName) => {
      children.delete(child)
      child.exited()
      // Input it did not read is not needed any more.
      options.stdin.destroy()
      resolve(code ?? (signalName ? 128 + (signalNumbers[signalName] ?? 1) : 1))
    })
  })
  return {
    stdout: spawned.stdout!,
    stderr: spawned.stderr!,
    exit,
    inProcess: false,
    stop: () => child.stop(),
    pause: () => spawned.stdout!.pause(),
    resume: () => spawned.stdout!.resume(),
  }
}

const signalNumbers: Partial<Record<NodeJS.Signals, number>> = { SIGINT: 2, SIGKILL: 9, SIGTERM: 15, SIGPIPE: 13 }

class ExitCalled extends Error {
  constructor(readonly code: number) {
    super(`process.exit(${code})`)
  }
}

let inProcessQueue: Promise<unknown> = Promise.resolve()

/** A stand-in stdout/stderr: what the command writes goes to `sink`. */
function captureStream(sink: PassThrough): NodeJS.WriteStream {
  const stream = new Writable({
    write(chunk, _encoding, callback) {
      sink.write(chunk)
      callback()
    },
    final(callback) {
      callback()
    },
  }) as unknown as NodeJS.WriteStream
  Object.assign(stream, { isTTY: false })
  return stream
}

/**
 * Runs the command inside this process, as if it were its own: stdin, stdout, stderr, argv, cwd,
 * environment and exit code are the command's for the duration of the call. One call at a time.
 */
function inProcess(options: RunOptions): Execution {
  const stdout = new PassThrough()
  const stderr = new PassThrough()
  const run = async (): Promise<number> => {
    const saved = {
      argv: process.argv,
      cwd: process.cwd(),
      env: { ...process.env },
      exitCode: process.exitCode,
      exit: process.exit,
      descriptors: ['stdin', 'stdout', 'stderr'].map((name) => [name, Object.getOwnPropertyDescriptor(process, name)!] as const),
    }
    const fakeStdin = options.stdin as NodeJS.ReadStream
    Object.assign(fakeStdin, { isTTY: false })
    const streams: Record<string, unknown> = { stdin: fakeStdin, stdout: captureStream(stdout), stderr: captureStream(stderr) }
    try {
      for (const key of Object.keys(process.env)) if (!(key in options.env)) delete process.env[key]
      Object.assign(process.env, options.env)
      process.chdir(options.cwd)
      process.argv = [process.execPath, join(installRoot(), 'bin', options.spec.program), ...options.argv]
      for (const [name] of saved.descriptors) Object.defineProperty(process, name, { configurable: true, enumerable: true, get: () => streams[name] })
      process.exit = ((code?: number) => {
        throw new ExitCalled(code ?? 0)
      }) as typeof process.exit
      try {
        const { runProvMain } = await import('@prov/core')
        return await runProvMain(options.tree, options.argv)
      } catch (error) {
        if (error instanceof ExitCalled) return error.code
        throw error
      }
    } finally {
      for (const [name, descriptor] of saved.descriptors) Object.defineProperty(process, name, descriptor)
      process.exit = saved.exit
      process.exitCode = saved.exitCode
      process.argv = saved.argv
      for (const key of Object.keys(process.env)) if (!(key in saved.env)) delete process.env[key]
      Object.assign(process.env, saved.env)
      try {
        process.chdir(saved.cwd)
      } catch {
        // the folder we started in is gone; stay where the command left us
      }
    }
  }
  const exit = inProcessQueue.then(run, run).then(
    (code) => code,
    (error: unknown) => {
      stderr.write(`${JSON.stringify({ level: 'error', code: 1, kind: 'failed', message: (error as Error)?.message ?? String(error) })}\n`)
      return 1
    },
  )
  inProcessQueue = exit.finally(() => {
    stdout.end()
    stderr.end()
    options.stdin.destroy()
  })
  return {
    stdout,
    stderr,
    exit: inProcessQueue.then(() => exit),
    inProcess: true,
    stop() {},
    pause: () => stdout.pause(),
    resume: () => stdout.resume(),
  }
}
