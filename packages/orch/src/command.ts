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
 * Why argument `i` of an argv command may not hold a template, if it may not. A value is one
 * argument, and stays data only if it is the whole argument: inside a larger argument (`echo
 * {{x}}` given to `env sh -c`, `python -c`, `xargs sh -c` ...) whatever program receives it may
 * parse it as code. Only the script of a shell run directly (`sh -c SCRIPT`) may mix templates
 * and text, because there the values travel in environment variables. A whole value right after
 * a script flag would be the code itself.
 */
export function argvTemplateProblem(argv: string[], i: number, hasTemplate: (text: string) => boolean): string | undefined {
  const arg = argv[i]
  if (!hasTemplate(arg)) return undefined
  if (i === 0) return 'the program of an argv command cannot come from a template'
  const script = shellScriptIndex(argv)
  const afterScriptFlag = SCRIPT_FLAG.test(argv[i - 1]) || (argv[i - 1] === '--' && i > 1 && SCRIPT_FLAG.test(argv[i - 2]))
  if (i === script) return WHOLE_TEMPLATE.test(arg.trim()) ? 'a template cannot be the whole script of a shell' : undefined
  if (afterScriptFlag) return `a template cannot be (part of) the code after '${argv[i - 1]}'`
  if (!WHOLE_TEMPLATE.test(arg)) return 'a template inside a larger argument may be parsed as code by the program that receives it'
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
      if (i !== script) return renderTemplate(a, scope)
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
