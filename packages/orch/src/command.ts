import { basename } from 'node:path'
import { type RefScope, renderShellTemplate, renderTemplate, resolveRef } from './expr'
import type { RunSpec } from './workflow'

/** A step's stdin from its `input`: templates rendered, `{from: ref}` resolved, `{value: x}` literal. */
export function resolveInput(input: unknown, scope: RefScope): unknown {
  if (typeof input === 'string') return renderTemplate(input, scope)
  if (Array.isArray(input)) return input.map((v) => resolveInput(v, scope))
  if (input && typeof input === 'object') {
    const keys = Object.keys(input)
    if (keys.length === 1 && keys[0] === 'from') return resolveRef(String((input as { from: unknown }).from), scope)
    if (keys.length === 1 && keys[0] === 'value') return (input as { value: unknown }).value
    return Object.fromEntries(Object.entries(input).map(([k, v]) => [k, resolveInput(v, scope)]))
  }
  return input
}

export const DEFAULT_MAX_OUTPUT = 16 * 1024 * 1024
const SHELLS = /^(ba|da|k|z|a)?sh$/

/** Index of the script of `sh -c SCRIPT` (also `bash -ec SCRIPT`, `bash -c -- SCRIPT`), or -1. */
export function shellScriptIndex(argv: string[]): number {
  if (!SHELLS.test(basename(argv[0]))) return -1
  for (let i = 1; i < argv.length; i++) {
    const a = argv[i]
    if (!a.startsWith('-') || a === '--') return -1
    if (/^-[a-z]*c[a-z]*$/i.test(a)) {
      const script = argv[i + 1] === '--' ? i + 2 : i + 1
      return script < argv.length ? script : -1
    }
  }
  return -1
}

const WHOLE_TEMPLATE = /^\{\{\s*[^}]+?\s*\}\}$/
/** Flags after which many programs read code: sh/bash/python -c, perl/node/ruby -e, --command, --eval. */
const SCRIPT_FLAG = /^(-[A-Za-z]*[ce]|--(command|eval|exec|execute|script|expression)(=.*)?)$/

/**
 * Programs that run the program named by their arguments (after their own options and a fixed
 * number of operands): the program after any chain of them is the program. `valueOptions` take
 * the next argument as their value; `operands` come before the program (timeout's duration).
 */
const WRAPPERS: Record<string, { valueOptions?: string[]; operands?: number; assignments?: boolean }> = {
  env: { valueOptions: ['-u', '--unset', '-C', '--chdir'], assignments: true },
  timeout: { valueOptions: ['-s', '--signal', '-k', '--kill-after'], operands: 1 },
  nice: { valueOptions: ['-n', '--adjustment'] },
  nohup: {},
  stdbuf: { valueOptions: ['-i', '-o', '-e', '--input', '--output', '--error'] },
  setsid: {},
  sudo: {
    valueOptions: [
      '-u',
      '--user',
      '-g',
      '--group',
      '-h',
      '--host',
      '-p',
      '--prompt',
      '-C',
      '--close-from',
      '-D',
      '--chdir',
      '-r',
      '--role',
      '-t',
      '--type',
      '-U',
      '--other-user',
      '-T',
      '--command-timeout',
      '-R',
      '--chroot',
    ],
  },
  doas: { valueOptions: ['-u', '-C'] },
  chroot: { valueOptions: ['--userspec', '--groups'], operands: 1 },
  ionice: { valueOptions: ['-c', '--class', '-n', '--classdata', '-p', '--pid', '-P', '--pgid', '-u', '--uid'] },
  taskset: { operands: 1 },
  time: { valueOptions: ['-f', '--format', '-o', '--output'] },
  command: {},
  exec: { valueOptions: ['-a'] },
  builtin: {},
  busybox: {},
  xargs: {
    valueOptions: [
      '-I',
      '-n',
      '--max-args',
      '-L',
      '--max-lines',
      '-s',
      '--max-chars',
      '-P',
      '--max-procs',
      '-d',
      '--delimiter',
      '-E',
      '-e',
      '-a',
      '--arg-file',
      '--process-slot-var',
    ],
  },
  chrt: { operands: 1 },
  flock: { valueOptions: ['-w', '--timeout', '--wait', '-E', '--conflict-exit-code'], operands: 1 },
  nsenter: { valueOptions: ['-t', '--target', '-S', '--setuid', '-G', '--setgid', '-r', '--root', '-w', '--wd'] },
  unshare: { valueOptions: ['--map-user', '--map-group', '-S', '--setuid', '-G', '--setgid', '-R', '--root', '-w', '--wd'] },
  setpriv: {
    valueOptions: ['--reuid', '--regid', '--groups', '--inh-caps', '--ambient-caps', '--bounding-set', '--securebits', '--selinux-label', '--apparmor-profile'],
  },
  runuser: { valueOptions: ['-u', '--user', '-g', '--group', '-G', '--supp-group'] },
  strace: { valueOptions: ['-o', '-e', '-p', '-s', '-u', '-E', '-a', '-b', '-I', '-O', '-P', '-S', '-X'] },
  ltrace: { valueOptions: ['-o', '-e', '-p', '-s', '-u', '-a', '-n'] },
  catchsegv: {},
  valgrind: {},
  systemd_run: {},
  firejail: {},
  proot: { valueOptions: ['-r', '-b', '-w', '-0'] },
  fakeroot: { valueOptions: ['-l', '-s', '-i', '--lib', '--faked'] },
  eatmydata: {},
  torsocks: {},
  proxychains: { valueOptions: ['-f'] },
  proxychains4: { valueOptions: ['-f'] },
  cgexec: { valueOptions: ['-g'] },
  numactl: {},
  prlimit: { valueOptions: ['-p', '--pid'] },
  'systemd-run': {
    valueOptions: [
      '-p',
      '--property',
      '-u',
      '--unit',
      '--description',
      '--slice',
      '-E',
      '--setenv',
      '-M',
      '--machine',
      '--uid',
      '--gid',
      '--working-directory',
    ],
  },
}

/** Programs that join their arguments into text a shell parses (here or on another host). */
const TEXT_COMMANDS = /^(ssh|watch|parallel|sg|script|tmux|screen|su|at|batch|dbus-launch|expect)$/

/** Shells, interpreters and programs whose first operand (or a code option) is code. */
const SHELL_NAMES = /^(ba|da|k|z|a|mk|c|tc|fi|pdk|yash|rb|lk)?sh$|^fish$/
const INTERPRETERS: { name: RegExp; code: RegExp; fileOptions?: RegExp; subcommand?: boolean }[] = [
  // sh -c, bash -xc, bash -c -- SCRIPT, any cluster holding c; -s reads the script from stdin.
  { name: SHELL_NAMES, code: /^-[A-Za-z]*[cs][A-Za-z]*$|^--(command|init-file|rcfile)(=.*)?$/ },
  { name: /^(python|pypy)[0-9.]*$/, code: /^-[A-Za-z]*[cm][A-Za-z]*$/ },
  { name: /^perl[0-9.]*$/, code: /^-[A-Za-z0-9:]*[eEMmx][A-Za-z0-9:]*$/ },
  { name: /^ruby[0-9.]*$/, code: /^-[A-Za-z]*[erx][A-Za-z]*$/ },
  { name: /^(node|nodejs)[0-9.]*$/, code: /^-[A-Za-z]*[epr][A-Za-z]*$|^--(eval|print|require|import|loader|experimental-loader)(=.*)?$/ },
  { name: /^php[0-9.]*(-cli)?$/, code: /^-[A-Za-z]*[rBRFEd][A-Za-z]*$|^--(run|process-begin|process-code|process-end|define)(=.*)?$/ },
  { name: /^(lua|luajit)[0-9.]*$/, code: /^-[A-Za-z]*[el][A-Za-z]*$/ },
  { name: /^(tclsh|wish)[0-9.]*$/, code: /^-encoding$/ },
  { name: /^(Rscript)$/, code: /^-e$|^--(expr|eval)(=.*)?$/ },
  { name: /^(g|m|n|busybox-)?awk$/, code: /^-[A-Za-z]*[e][A-Za-z]*$|^--(source|exec)(=.*)?$/, fileOptions: /^-[A-Za-z]*f[A-Za-z]*$|^--file(=.*)?$/ },
  { name: /^(g)?sed$/, code: /^-[A-Za-z]*e[A-Za-z]*$|^--expression(=.*)?$/, fileOptions: /^-[A-Za-z]*f[A-Za-z]*$|^--file(=.*)?$/ },
  { name: /^(jq|gojq|yq)$/, code: /^--(args|jsonargs)$/, fileOptions: /^-[A-Za-z]*f[A-Za-z]*$|^--from-file(=.*)?$/ },
  { name: /^(deno|bun)$/, code: /^-e$|^--eval(=.*)?$/, subcommand: true },
]
/** find's options that run what follows them, up to `;` or `+`. */
const FIND_EXEC = /^-(exec|execdir|ok|okdir)$/

/** Where an argv command's program is, past any chain of wrappers, and which wrappers it went through. */
export function effectiveProgram(argv: string[]): { index: number; wrappers: string[]; textCommand?: string } {
  const wrappers: string[] = []
  let p = 0
  while (p < argv.length) {
    const name = basename(argv[p])
    if (TEXT_COMMANDS.test(name)) return { index: p, wrappers, textCommand: name }
    if (name === 'env' && argv.slice(p + 1).some((a) => /^(-[A-Za-z]*S|--split-string)/.test(a))) return { index: p, wrappers, textCommand: 'env -S' }
    const wrapper = Object.hasOwn(WRAPPERS, name) ? WRAPPERS[name] : undefined
    if (!wrapper) return { index: p, wrappers }
    wrappers.push(name)
    let j = p + 1
    while (j < argv.length) {
      const a = argv[j]
      if (a === '--') {
        j++
        break
      }
      if (a.startsWith('-') && a !== '-') j += wrapper.valueOptions?.includes(a) ? 2 : 1
      else if (wrapper.assignments && /^[^=]+=/.test(a)) j++
      else break
    }
    p = j + (wrapper.operands ?? 0)
  }
  return { index: p, wrappers }
}

/**
 * The last index of an argv command that is code or chooses code (the program, its wrappers
 * and their options, an interpreter's options, its code argument or script file, find's
 * -exec command), or the whole command when its arguments become shell text. A template may
 * only be a whole argument past it.
 */
function codeExtent(argv: string[]): { last: number; why: string } {
  const { index: p, wrappers, textCommand } = effectiveProgram(argv)
  const via = wrappers.length ? ` (the program after ${wrappers.map((w) => `'${w}'`).join(', ')} and their options is the program)` : ''
  if (textCommand) return { last: argv.length, why: `'${textCommand}' joins its arguments into shell code` }
  if (p >= argv.length) return { last: argv.length, why: `the program cannot come from a template${via}` }
  const name = basename(argv[p])
  const interpreter = INTERPRETERS.find((x) => x.name.test(name))
  if (!interpreter) return { last: p, why: `the program or its wrapper options cannot come from a template${via}` }
  let fromFile = false
  let positionals = interpreter.subcommand ? 2 : 1
  for (let k = p + 1; k < argv.length; k++) {
    const a = argv[k]
    if (a === '--') {
      if (fromFile) return { last: k, why: `options of '${name}' cannot come from a template` }
      return { last: Math.min(k + positionals, argv.length), why: `the script of '${name}' cannot come from a template` }
    }
    if (a.startsWith('-') && a !== '-') {
      if (interpreter.code.test(a) || interpreter.code.test(a.split('=')[0])) {
        // The code is this argument (attached value) or the next one; what follows is data.
        return { last: k + 1, why: `'${name} ${a}' runs code: the code and what precedes it cannot come from a template` }
      }
      if (interpreter.fileOptions?.test(a)) fromFile = true
      continue
    }
    if (fromFile) return { last: k - 1, why: `options of '${name}' cannot come from a template` }
    positionals--
    if (positionals === 0) return { last: k, why: `the script or program text of '${name}' cannot come from a template` }
  }
  return { last: argv.length, why: `the script or program text of '${name}' cannot come from a template` }
}

/**
 * Why argument `i` of an argv command may not hold a template, if it may not. A value is one
 * argument, and stays data only if it is the whole argument past the program, its wrappers and
 * their options, and an interpreter's code or script: inside a larger argument (`echo {{x}}` given
 * to `env sh -c`, `python -c`, `xargs sh -c` ...) whatever program receives it may parse it as
 * code. Only the script of a shell run directly (`sh -c SCRIPT`) may mix templates and text,
 * because there the values travel in environment variables. A whole value right after a script
 * flag would be the code itself; after find's -exec it would be the command.
 */
export function argvTemplateProblem(argv: string[], i: number, hasTemplate: (text: string) => boolean): string | undefined {
  const arg = argv[i]
  if (!hasTemplate(arg)) return undefined
  if (i === 0) return 'the program of an argv command cannot come from a template'
  const script = shellScriptIndex(argv)
  if (i === script) return WHOLE_TEMPLATE.test(arg.trim()) ? 'a template cannot be the whole script of a shell' : undefined
  const afterScriptFlag = SCRIPT_FLAG.test(argv[i - 1]) || (argv[i - 1] === '--' && i > 1 && SCRIPT_FLAG.test(argv[i - 2]))
  if (afterScriptFlag) return `a template cannot be (part of) the code after '${argv[i - 1]}'`
  if (!WHOLE_TEMPLATE.test(arg)) return 'a template inside a larger argument may be parsed as code by the program that receives it'
  const extent = codeExtent(argv)
  if (i <= extent.last) return extent.why
  const { index: p } = effectiveProgram(argv)
  if (basename(argv[p] ?? '') === 'find') {
    let inExec = false
    for (let k = p + 1; k < i; k++) {
      if (FIND_EXEC.test(argv[k])) inExec = true
      else if (argv[k] === ';' || argv[k] === '+') inExec = false
    }
    if (inExec) return `a template cannot be part of the command after find's -exec`
  }
  return undefined
}

/** A step refused at run time because of what a value turned out to be (not retried). */
export class UnsafeValueError extends Error {}

/**
 * A whole-argument value that starts with `-` would be read as an option (`--checkpoint-action=exec=...`
 * given to tar): refused unless a literal `--` before it ends the options.
 */
function assertNotOption(argv: string[], i: number, value: string) {
  if (!value.startsWith('-') || value === '-') return
  if (argv.slice(1, i).includes('--')) return
  throw new UnsafeValueError(
    `argument ${i} of the command ('${argv[i].trim()}') starts with '-' and would be read as an option; put a literal '--' argument before it if it is an operand, or validate the value in the step that produces it`,
  )
}

/**
 * Why a shell script with templates may not be run, if it may not. Values travel in environment
 * variables, but some constructs parse a variable's content again: bash arithmetic (`$((...))`,
 * `((...))`, `let`, integer variables, array subscripts, the operands of `[[ -eq ]]`) evaluates
 * `a[$(cmd)]` and so runs `cmd`; and a script that hands text to another shell or interpreter
 * (`bash -c '...'`, `| sh`, `eval`, `source`, `python -c`, `awk`, `sed`, `xargs`) may parse the
 * value as code there.
 */
export function shellTemplateProblem(script: string): string | undefined {
  const templates = [...script.matchAll(/\{\{\s*[^}]+?\s*\}\}/g)]
  if (!templates.length) return undefined
  if (/(^|[\s;&|({`]|\b(do|then|else)\s)(declare|typeset|local|export|readonly)\s+([-+][A-Za-z]+\s+)*[-+][A-Za-z]*i/.test(script))
    return 'a template in a script that declares integer variables (declare -i: assigning to them evaluates arithmetic)'
  const arithmetic = arithmeticContext(script)
  if (arithmetic) return `a template inside ${arithmetic} (bash evaluates array subscripts there: a value 'a[$(cmd)]' runs cmd)`
  const nested = nestedInterpreter(script)
  if (nested) return `a template in a script that runs ${nested} on text (the value may be parsed as code there)`
  return undefined
}

/** The arithmetic or test construct of a shell script a template sits in, if any. */
function arithmeticContext(script: string): string | undefined {
  const stack: { kind: string; close: string; evaluates: boolean }[] = []
  let quote: 'none' | 'single' | 'double' = 'none'
  let commandStart = true
  let intCommand: string | undefined
  for (let i = 0; i < script.length; ) {
    const rest = script.slice(i)
    const template = /^\{\{\s*[^}]+?\s*\}\}/.exec(rest)
    if (template) {
      const inside = stack.find((s) => s.evaluates)
      if (inside) return inside.kind
      if (intCommand) return intCommand
      i += template[0].length
      commandStart = false
      continue
    }
    const ch = script[i]
    if (quote === 'single') {
      if (ch === "'") quote = 'none'
      i++
      continue
    }
    if (ch === '\\') {
      i += 2
      continue
    }
    const top = stack[stack.length - 1]
    if (top && rest.startsWith(top.close)) {
      stack.pop()
      i += top.close.length
      continue
    }
    const push = (kind: string, open: number, close: string, evaluates: boolean) => {
      stack.push({ kind, close, evaluates })
      i += open
    }
    if (rest.startsWith('$((')) {
      push('$((...))', 3, '))', true)
      continue
    }
    if (rest.startsWith('$[')) {
      push('$[...]', 2, ']', true)
      continue
    }
    const subscript = /^\$\{[#!]?[A-Za-z_][A-Za-z0-9_]*\[/.exec(rest)
    if (subscript) {
      push('$' + '{name[...]}', subscript[0].length, ']', true)
      continue
    }
    if (rest.startsWith('${')) {
      push('$' + '{...}', 2, '}', false)
      continue
    }
    if (rest.startsWith('$(')) {
      push('$(...)', 2, ')', false)
      commandStart = true
      continue
    }
    if (quote === 'none') {
      if (ch === "'") {
        quote = 'single'
        i++
        continue
      }
      if (rest.startsWith('((')) {
        push('((...))', 2, '))', true)
        continue
      }
      if (rest.startsWith('[[')) {
        push('[[...]]', 2, ']]', true)
        continue
      }
      const wordStart = i === 0 || /[\s;&|(){}`=]/.test(script[i - 1])
      const assigned = wordStart ? /^[A-Za-z_][A-Za-z0-9_]*\[/.exec(rest) : null
      if (assigned) {
        push('an array subscript name[...]', assigned[0].length, ']', true)
        continue
      }
      if (commandStart && /^let\b/.test(rest)) intCommand = "'let'"
      if (/[;&|\n]/.test(ch)) {
        intCommand = undefined
        commandStart = true
      } else if (ch === '(') {
        push('(...)', 1, ')', false)
        commandStart = true
        continue
      } else if (!/\s/.test(ch)) commandStart = /^(do|then|else|elif|if|while|until|!|\{)$/.test(/\S+$/.exec(script.slice(0, i + 1))?.[0] ?? '')
    }
    if (ch === '"') quote = quote === 'double' ? 'none' : 'double'
    i++
  }
  return undefined
}

const WRAPPER_WORDS = new Set(Object.keys(WRAPPERS))
const SHELL_TEXT_RUNNERS =
  /^(eval|source|\.|(ba|da|k|z|a|mk|c|tc|pdk|rb|lk)?sh|fish|yash|busybox|(python|pypy|perl|ruby|php|lua|luajit|tclsh|wish|node|nodejs)[0-9.]*|deno|bun|Rscript|(g|m|n)?awk|g?sed|xargs|ssh|su|watch|parallel|sg|script|expect|find|osascript|gdb|vim?|ex|nvim|emacs|at|batch)$/

/** The first shell or interpreter a script runs as a command (past assignments and wrappers), if any. */
function nestedInterpreter(script: string): string | undefined {
  for (const segment of script.split(/[;&|\n(){}`]|\$\(|\b(?:do|then|else|elif|if|while|until)\b|!/)) {
    if (!segment) continue
    const words = segment.trim().split(/\s+/)
    for (const raw of words) {
      const word = raw.replace(/^["']+|["']+$/g, '')
      if (!word || /^[A-Za-z_][A-Za-z0-9_]*=/.test(word) || word.startsWith('-') || /^[0-9][0-9.]*[smhd]?$/.test(word)) continue
      const name = basename(word)
      if (SHELL_TEXT_RUNNERS.test(name)) return `'${name}'`
      if (!WRAPPER_WORDS.has(name)) break
    }
  }
  return undefined
}

/**
 * The argv of a step. Argv form: each template renders inside its own argument. Shell code (a
 * string `run`, or the script of `sh -c`): values travel in environment variables, never as code.
 */
export function commandLine(run: RunSpec, scope: RefScope): { argv: string[]; display: string; env: Record<string, string> } {
  if ('argv' in run) {
    const script = shellScriptIndex(run.argv)
    const env: Record<string, string> = {}
    const argv = run.argv.map((a, i) => {
      if (i !== script) {
        const value = renderTemplate(a, scope)
        if (WHOLE_TEMPLATE.test(a)) assertNotOption(run.argv, i, value)
        return value
      }
      const rendered = renderShellTemplate(a, scope)
      Object.assign(env, rendered.env)
      return rendered.script
    })
    return { argv, display: argv[0], env }
  }
  if ('shell' in run) {
    const { script, env } = renderShellTemplate(run.shell, scope)
    return { argv: ['/bin/sh', '-c', script], display: run.shell.split(/\s+/)[0], env }
  }
  throw new Error('a built-in step has no command line')
}
