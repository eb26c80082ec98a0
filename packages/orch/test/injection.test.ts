import { existsSync, rmSync } from 'node:fs'
import { describe, expect, it } from 'vitest'
import { commandLine, UnsafeValueError } from '../src/command'
import { compileWorkflow } from '../src/workflow'

/** Compiles a workflow whose step `b` runs `run` after a step `a`; returns the usage error text or undefined. */
const refusal = (run: unknown) => {
  try {
    compileWorkflow({
      name: 'inject',
      steps: [
        { id: 'a', run: 'true' },
        { id: 'b', depends_on: ['a'], run },
      ],
    })
    return undefined
  } catch (error) {
    return `${(error as Error).message} ${JSON.stringify((error as { hint?: string }).hint ?? (error as { details?: unknown }).details ?? '')}`
  }
}
const X = '{{steps.a.output.x}}'

describe('shell arithmetic and test contexts never receive a template', () => {
  const arithmetic = [
    `echo $(( ${X} + 1 ))`,
    `echo "$(( ${X} + 1 ))"`,
    `[[ ${X} -eq 1 ]] && echo one`,
    `[[ "${X}" -eq 1 ]]`,
    `if [[ '${X}' == a ]]; then echo; fi`,
    `(( ${X} ))`,
    `for ((i = 0; i < ${X}; i++)); do echo $i; done`,
    `let n=${X}`,
    `true; let "n = ${X} + 1"`,
    `declare -i n=${X}`,
    `typeset -i n; n=${X}`,
    `f() { local -i n=${X}; }; f`,
    `declare -ri n=${X}`,
    `a=(1 2); echo \${a[${X}]}`,
    `a=(1 2); echo "\${#a[${X}]}"`,
    `a[${X}]=1`,
    `echo $[ ${X} + 1 ]`,
  ]
  it.each(arithmetic)('string form refused: %s', (script) => {
    const message = refusal(script)
    expect(message).toBeDefined()
    expect(message).toMatch(/invalid workflow: steps\[1\]\.run: step 'b': a template (inside|in a script that declares integer)/)
    expect(message).toMatch(/argv form without a shell.*env:/)
  })
  it.each(arithmetic)('argv shell script refused: %s', (script) => {
    const message = refusal(['bash', '-c', script])
    expect(message).toMatch(/steps\[1\]\.run\[2\]: step 'b': a template (inside|in a script that declares integer)/)
  })
  it('still allowed: values as plain words, in strings, in single brackets, arithmetic without templates', () => {
    for (const script of [
      `echo ${X}`,
      `echo "value: ${X}"`,
      `[ "${X}" = a ] && echo yes`,
      `n=$(( 1 + 2 )); echo ${X} $n`,
      `echo '${X}'`,
      `printf '%s\\n' ${X} > out.txt`,
    ])
      expect(refusal(script), script).toBeUndefined()
  })
})

describe('a template never reaches another shell or interpreter through a shell script', () => {
  it.each([
    `bash -c 'echo ${X}'`,
    `printf '%s' ${X} | sh`,
    `echo ${X} | bash -s`,
    `eval "echo ${X}"`,
    `source /dev/stdin <<< ${X}`,
    `. /dev/stdin <<< "${X}"`,
    `env FOO=1 sh -c "echo ${X}"`,
    `timeout 5 bash -c "echo ${X}"`,
    `python3 -c "print('${X}')"`,
    `awk '{ print "${X}" }' /dev/null`,
    `echo x | sed 's/x/${X}/e'`,
    `echo ${X} | xargs touch`,
    `ssh host echo ${X}`,
    `/bin/dash -c 'echo ${X}'`,
    `echo ${X}; $(zsh -c 'true')`,
  ])('refused: %s', (script) => {
    expect(refusal(script)).toMatch(/step 'b': a template in a script that runs '[^']+' on text/)
    expect(refusal(['sh', '-c', script])).toMatch(/run\[2\]: step 'b': a template in a script that runs/)
  })
})

describe('argv form: a template is only a whole argument past the program, its wrappers and an interpreter’s code', () => {
  it.each([
    // (a) the program chosen through a wrapper
    [['env', X, 'a'], 'run[1]'],
    [['env', 'A=1', '-u', 'B', X], 'run[4]'],
    [['timeout', '5', X, 'a'], 'run[2]'],
    [['timeout', '-s', 'KILL', '5', X], 'run[4]'],
    [['nice', X], 'run[1]'],
    [['nice', '-n', '5', X], 'run[3]'],
    [['xargs', X], 'run[1]'],
    [['xargs', '-I', '{}', X, '{}'], 'run[3]'],
    [['nohup', X], 'run[1]'],
    [['stdbuf', '-o', 'L', X], 'run[3]'],
    [['setsid', X], 'run[1]'],
    [['sudo', '-u', 'root', X], 'run[3]'],
    [['doas', X], 'run[1]'],
    [['chroot', '/', X], 'run[2]'],
    [['ionice', '-c', '3', X], 'run[3]'],
    [['taskset', '1', X], 'run[2]'],
    [['busybox', X], 'run[1]'],
    [['nice', 'timeout', '5', 'env', X], 'run[4]'],
    [['env', '-S', 'echo', X], 'run[3]'],
    // (b) script flags, in any option cluster or spelling
    [['node', '-p', X], 'run[2]'],
    [['node', '--print', X], 'run[2]'],
    [['node', '--eval', X], 'run[2]'],
    [['perl', '-E', X], 'run[2]'],
    [['perl', '-wE', X], 'run[2]'],
    [['ruby', '-e', X], 'run[2]'],
    [['python3', '-Ic', X], 'run[2]'],
    [['python', '-m', X], 'run[2]'],
    [['php', '-r', X], 'run[2]'],
    [['lua', '-e', X], 'run[2]'],
    [['deno', 'eval', X], 'run[2]'],
    [['bun', 'run', X], 'run[2]'],
    [['bash', '-xc', X], 'run[2]'],
    [['bash', '-cx', X], 'run[2]'],
    [['zsh', '-c', X], 'run[2]'],
    [['dash', '-ec', X], 'run[2]'],
    [['nice', 'bash', '-cx', X], 'run[3]'],
    // (c) interpreters whose first operand is code or the script file
    [['awk', X], 'run[1]'],
    [['gawk', '-F:', X, '/etc/passwd'], 'run[2]'],
    [['mawk', X], 'run[1]'],
    [['sed', X, 'file'], 'run[1]'],
    [['sed', '-e', X], 'run[2]'],
    [['sed', '-n', '-e', X], 'run[3]'],
    [['python3', X], 'run[1]'],
    [['python3', '--', X], 'run[2]'],
    [['bash', X], 'run[1]'],
    [['perl', '-w', X], 'run[2]'],
    [['jq', X], 'run[1]'],
    [['find', '.', '-exec', X, ';'], 'run[3]'],
    [['find', '.', '-name', 'a', '-execdir', 'rm', X, '+'], 'run[6]'],
    // (e) commands that join their arguments into shell text
    [['ssh', 'host', 'echo', X], 'run[3]'],
    [['watch', 'echo', X], 'run[2]'],
  ])('refused: %j', (argv, at) => {
    const message = refusal(argv)
    expect(message, JSON.stringify(argv)).toContain(`steps[1].${at}:`)
    expect(message).toMatch(/hint|env/)
  })
  it('still allowed: data operands', () => {
    for (const argv of [
      ['echo', X],
      ['timeout', '5', 'echo', X],
      ['nice', '-n', '5', 'printf', '%s', X],
      ['env', 'A=1', 'echo', X],
      ['python3', 'script.py', X],
      ['python3', '-c', 'import sys; print(sys.argv[1])', X],
      ['bash', '-c', 'echo "$1"', '_', X],
      ['awk', '{print}', X],
      ['sed', '-n', 'p', X],
      ['jq', '.', X],
      ['find', X, '-name', 'a'],
      ['tar', '-cf', 'out.tar', '--', X],
    ])
      expect(refusal(argv), JSON.stringify(argv)).toBeUndefined()
  })
})

describe('a whole-argument value that starts with - is refused at run time unless after --', () => {
  const scope = (x: string) => ({ steps: { a: { status: 'succeeded', output: { x } } } })
  it.each(['--checkpoint-action=exec=touch /tmp/p', '-rf', '-', '--'])('%s fails the step', (value) => {
    const run = { argv: ['tar', '-cf', 'out.tar', X] }
    if (value === '-') {
      expect(commandLine(run, scope(value)).argv[3]).toBe('-')
      return
    }
    expect(() => commandLine(run, scope(value))).toThrow(UnsafeValueError)
    expect(() => commandLine(run, scope(value))).toThrow(/argument 3 .* starts with '-' and would be read as an option; put a literal '--'/)
  })
  it('after a literal -- the value is an operand', () => {
    expect(commandLine({ argv: ['tar', '-cf', 'out.tar', '--', X] }, scope('--checkpoint=1')).argv[4]).toBe('--checkpoint=1')
    expect(commandLine({ argv: ['echo', X] }, scope('a-b')).argv[1]).toBe('a-b')
  })
})

describe('the refused constructs would really run code (bash, for the record)', () => {
  it('bash arithmetic evaluates a subscript from a variable: why the refusal exists', async () => {
    const { execFileSync } = await import('node:child_process')
    const marker = '/tmp/p10-arith-proof'
    rmSync(marker, { force: true })
    execFileSync('bash', ['-c', 'echo $(( V + 1 ))'], { env: { PATH: process.env.PATH, V: `a[$(touch ${marker})]` }, stdio: 'ignore' })
    expect(existsSync(marker)).toBe(true)
    rmSync(marker, { force: true })
  })
})
