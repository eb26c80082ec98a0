import { dynamicKindOf } from './dynamic'
import { binaries, type CommandSpec, type FlagSpec } from './spec'

/**
 * Shell completion scripts for bash, zsh, fish and Nushell, generated from the same command specs
 * as the plugin's signatures. Subcommands and flags are written into the script (no process runs
 * to complete them); argument values that depend on the workspace (server, taskserv, workspace and
 * infrastructure names) come from `prov completion values KIND`, which reads local files only.
 */

export const completionShells = ['bash', 'zsh', 'fish', 'nu'] as const
export type CompletionShell = (typeof completionShells)[number]

/** The programs that get completions, and the `prov …` path each stands for. */
const programs = binaries.map((b) => ({ program: b.program, path: b.word ? `prov ${b.word}` : 'prov' }))

interface Completable {
  path: string
  spec: CommandSpec
  subcommands: { name: string; description: string }[]
  flags: FlagSpec[]
}

/**
 * A group takes the flags every prov command has before its subcommand (`prov -w NAME server
 * list`): it offers those of the commands below it, so `prov -w <TAB>` completes workspace names.
 */
function groupFlags(group: CommandSpec, specs: CommandSpec[]): FlagSpec[] {
  const below = specs.filter((s) => s.name.startsWith(`${group.name} `))
  const flags = new Map<string, FlagSpec>()
  for (const spec of below) for (const flag of spec.flags) if (flag.common && !flags.has(flag.long)) flags.set(flag.long, flag)
  return [...flags.values()]
}

function completables(specs: CommandSpec[]): Completable[] {
  const byName = new Map(specs.map((s) => [s.name, s]))
  return specs.map((spec) => ({
    path: spec.name,
    spec,
    subcommands: spec.subcommands.map((name) => ({ name, description: byName.get(`${spec.name} ${name}`)?.description ?? '' })),
    flags: spec.group && !spec.flags.length ? groupFlags(spec, specs) : spec.flags,
  }))
}

/** Flag values offered: the definition's choices, else dynamic values, else nothing (free text). */
function flagValues(spec: CommandSpec, flag: FlagSpec): { options?: string[]; dynamic?: string } {
  if (flag.options?.length) return { options: flag.options }
  const kind = dynamicKindOf(spec, flag.long, true)
  return kind ? { dynamic: kind } : {}
}

function positionalKind(spec: CommandSpec): string | undefined {
  for (const positional of spec.positionals) {
    const kind = dynamicKindOf(spec, positional.name, false)
    if (kind) return kind
  }
  return undefined
}

const oneLine = (text: string, max = 80) => {
  const flat = text.replace(/\s+/g, ' ').trim()
  return flat.length > max ? `${flat.slice(0, max - 1)}…` : flat
}

/** A word for a single-quoted shell string ('…'): the data comes from definitions, never input. */
const sq = (text: string) => `'${text.replace(/'/g, `'\\''`)}'`

function flagWords(flag: FlagSpec): string[] {
  return [`--${flag.long}`, ...flag.aliases.map((a) => `--${a}`), ...(flag.short ? [`-${flag.short}`] : [])]
}

function bashCase(entries: [string, string][], fallback = ''): string {
  return [
    '  case "$1" in',
    ...entries.map(([key, value]) => `    ${sq(key)}) printf '%s\\n' ${value} ;;`),
    ...(fallback ? [`    *) ${fallback} ;;`] : []),
    '  esac',
  ].join('\n')
}

/**
 * The `case` branches that produce argument values: per flag (`PATH|--flag)`) its choices or its
 * dynamic kind, per command (`PATH)`) the dynamic kind of its positional words.
 */
function valueCases(items: Completable[], choices: (options: string[]) => string, dynamic: (kind: string) => string) {
  const flagValueCases: string[] = []
  for (const item of items) {
    for (const flag of item.flags) {
      const values = flagValues(item.spec, flag)
      if (!values.options && !values.dynamic) continue
      const body = values.options ? choices(values.options) : dynamic(values.dynamic!)
      flagValueCases.push(
        `    ${flagWords(flag)
          .map((w) => sq(`${item.path}|${w}`))
          .join('|')}) ${body} ;;`,
      )
    }
  }
  const positionalCases = items
    .map((item) => [item.path, positionalKind(item.spec)] as const)
    .filter((entry): entry is readonly [string, string] => Boolean(entry[1]))
    .map(([path, kind]) => `    ${sq(path)}) ${dynamic(kind)} ;;`)
  return { flagValueCases, positionalCases }
}

function bashScript(specs: CommandSpec[]): string {
  const items = completables(specs)
  const subcommands = items.filter((i) => i.subcommands.length).map((i) => [i.path, i.subcommands.map((s) => sq(s.name)).join(' ')] as [string, string])
  const flags = items.filter((i) => i.flags.length).map((i) => [i.path, i.flags.flatMap(flagWords).map(sq).join(' ')] as [string, string])
  const valueFlags = items
    .filter((i) => i.flags.some((f) => f.type === 'string'))
    .map(
      (i) =>
        [
          i.path,
          i.flags
            .filter((f) => f.type === 'string')
            .flatMap(flagWords)
            .map(sq)
            .join(' '),
        ] as [string, string],
    )
  const { flagValueCases, positionalCases } = valueCases(
    items,
    (options) => `printf '%s\\n' ${options.map(sq).join(' ')}`,
    (kind) => `_prov_values ${kind}`,
  )
  return `# bash completion for prov and its tools (generated by \`prov completion bash\`).
# Use: source <(prov completion bash)   (or save it under /etc/bash_completion.d/prov)

_prov_subcommands() {
${bashCase(subcommands)}
}

_prov_flags() {
${bashCase(flags)}
}

_prov_value_flags() {
${bashCase(valueFlags)}
}

# Workspace-dependent values (server, taskserv, workspace, infra names): read from local files.
_prov_values() {
  local prov=prov
  [[ \${COMP_WORDS[0]} == */* ]] && prov="\${COMP_WORDS[0]%/*}/prov"
  "$prov" completion values "$1" \${_prov_workspace:+--workspace "$_prov_workspace"} 2>/dev/null
}

_prov_flag_values() {
  case "$1|$2" in
${flagValueCases.join('\n')}
    *) return 1 ;;
  esac
}

_prov_positional_values() {
  case "$1" in
${positionalCases.join('\n')}
    *) return 1 ;;
  esac
}

# Candidates (one per line) that start with the word being completed. A plain prefix comparison:
# compgen -W would expand $(…), backticks and variables inside the names it is given.
_prov_reply() {
  local v
  COMPREPLY=()
  while IFS= read -r v; do
    [[ -n $v && $v == "$1"* ]] && COMPREPLY+=("$v")
  done
  return 0
}

_prov_complete() {
  local cur=\${COMP_WORDS[COMP_CWORD]} prev=\${COMP_WORDS[COMP_CWORD-1]} cmdpath word i skip=0
  _prov_workspace=
  case "\${COMP_WORDS[0]##*/}" in
${programs.map((p) => `    ${p.program}) cmdpath=${sq(p.path)} ;;`).join('\n')}
    *) return 0 ;;
  esac
  for ((i = 1; i < COMP_CWORD; i++)); do
    word=\${COMP_WORDS[i]}
    if ((skip)); then skip=0; continue; fi
    [[ $word == -- ]] && { COMPREPLY=(); return 0; }
    if [[ $word == -* ]]; then
      if [[ $word != *=* ]] && [[ " $(_prov_value_flags "$cmdpath" | tr '\\n' ' ') " == *" $word "* ]]; then
        skip=1
        [[ $word == --workspace || $word == -w ]] && _prov_workspace=\${COMP_WORDS[i + 1]}
      fi
      continue
    fi
    if [[ " $(_prov_subcommands "$cmdpath" | tr '\\n' ' ') " == *" $word "* ]]; then cmdpath="$cmdpath $word"; fi
  done
  local values
  if [[ $prev == -* ]] && values=$(_prov_flag_values "$cmdpath" "$prev"); then
    _prov_reply "$cur" <<<"$values"
    return 0
  fi
  if [[ " $(_prov_value_flags "$cmdpath" | tr '\\n' ' ') " == *" $prev "* ]]; then
    COMPREPLY=()
    return 0
  fi
  if [[ $cur == -* ]]; then
    _prov_reply "$cur" < <(_prov_flags "$cmdpath")
    return 0
  fi
  local subs
  subs=$(_prov_subcommands "$cmdpath")
  if [[ -n $subs ]]; then
    _prov_reply "$cur" <<<"$subs"
    return 0
  fi
  if values=$(_prov_positional_values "$cmdpath"); then
    _prov_reply "$cur" <<<"$values"
  fi
  return 0
}

complete -o default -F _prov_complete ${programs.map((p) => p.program).join(' ')}
`
}

function zshScript(specs: CommandSpec[]): string {
  const items = completables(specs)
  const describe = (name: string, description: string) => sq(`${name.replace(/:/g, '\\:')}:${oneLine(description)}`)
  const subCases = items
    .filter((i) => i.subcommands.length)
    .map((i) => `    ${sq(i.path)}) reply=(${i.subcommands.map((s) => describe(s.name, s.description)).join(' ')}) ;;`)
  const flagCases = items
    .filter((i) => i.flags.length)
    .map((i) => `    ${sq(i.path)}) reply=(${i.flags.flatMap((f) => flagWords(f).map((w) => describe(w, f.description))).join(' ')}) ;;`)
  const valueFlagCases = items
    .filter((i) => i.flags.some((f) => f.type === 'string'))
    .map(
      (i) =>
        `    ${sq(i.path)}) reply=(${i.flags
          .filter((f) => f.type === 'string')
          .flatMap(flagWords)
          .map(sq)
          .join(' ')}) ;;`,
    )
  const { flagValueCases, positionalCases } = valueCases(
    items,
    (options) => `reply=(${options.map(sq).join(' ')})`,
    (kind) => `reply=(\${(f)"$(_prov_values ${kind})"})`,
  )
  return `#compdef ${programs.map((p) => p.program).join(' ')}
# zsh completion for prov and its tools (generated by \`prov completion zsh\`).
# Use: source <(prov completion zsh)   (after compinit), or save it as _prov in a folder of $fpath.

_prov_subcommands() {
  reply=()
  case "$1" in
${subCases.join('\n')}
  esac
}

_prov_flags() {
  reply=()
  case "$1" in
${flagCases.join('\n')}
  esac
}

_prov_value_flags() {
  reply=()
  case "$1" in
${valueFlagCases.join('\n')}
  esac
}

_prov_values() {
  local prov=prov
  [[ \${words[1]} == */* ]] && prov="\${words[1]%/*}/prov"
  "$prov" completion values "$1" \${_prov_workspace:+--workspace "$_prov_workspace"} 2>/dev/null
}

_prov_flag_values() {
  reply=()
  case "$1|$2" in
${flagValueCases.join('\n')}
    *) return 1 ;;
  esac
}

_prov_positional_values() {
  reply=()
  case "$1" in
${positionalCases.join('\n')}
    *) return 1 ;;
  esac
}

_prov() {
  local cmdpath word prev=\${words[CURRENT-1]} cur=\${words[CURRENT]} i skip=0
  local -a reply names
  _prov_workspace=
  case "\${words[1]:t}" in
${programs.map((p) => `    ${p.program}) cmdpath=${sq(p.path)} ;;`).join('\n')}
    *) return 1 ;;
  esac
  for (( i = 2; i < CURRENT; i++ )); do
    word=\${words[i]}
    if (( skip )); then skip=0; continue; fi
    [[ $word == -- ]] && return 0
    if [[ $word == -* ]]; then
      _prov_value_flags "$cmdpath"
      if [[ $word != *=* ]] && (( \${reply[(Ie)$word]} )); then
        skip=1
        [[ $word == --workspace || $word == -w ]] && _prov_workspace=\${words[i + 1]}
      fi
      continue
    fi
    _prov_subcommands "$cmdpath"
    names=(\${reply%%:*})
    (( \${names[(Ie)$word]} )) && cmdpath="$cmdpath $word"
  done
  if [[ $prev == -* ]] && _prov_flag_values "$cmdpath" "$prev"; then
    compadd -a reply
    return 0
  fi
  _prov_value_flags "$cmdpath"
  (( \${reply[(Ie)$prev]} )) && return 0
  if [[ $cur == -* ]]; then
    _prov_flags "$cmdpath"
    _describe -t options 'option' reply
    return 0
  fi
  _prov_subcommands "$cmdpath"
  if (( \${#reply} )); then
    _describe -t commands 'command' reply
    return 0
  fi
  if _prov_positional_values "$cmdpath"; then
    compadd -a reply
    return 0
  fi
  _files
}

if [[ $zsh_eval_context[-1] == loadautofunc ]]; then
  _prov "$@"
elif (( $+functions[compdef] )); then
  compdef _prov ${programs.map((p) => p.program).join(' ')}
fi
`
}

function fishScript(specs: CommandSpec[]): string {
  const items = completables(specs)
  const lines: string[] = [
    '# fish completion for prov and its tools (generated by `prov completion fish`).',
    '# Use: prov completion fish | source   (or save it as ~/.config/fish/completions/prov.fish)',
    '',
    '# The `prov …` path the command line has reached (prov-server = prov server).',
    'function __prov_path',
    '    set -l tokens (commandline -opc)',
    '    set -l program (string replace -r ".*/" "" -- $tokens[1])',
    '    switch $program',
    ...programs.map((p) => `        case ${p.program}\n            set cmdpath ${p.path}`),
    '        case "*"',
    '            return 1',
    '    end',
    '    set -l skip 0',
    '    for word in $tokens[2..-1]',
    '        if test $skip -eq 1',
    '            set skip 0',
    '            continue',
    '        end',
    '        if string match -q -- "-*" $word',
    '            if not string match -q -- "*=*" $word; and contains -- $word (__prov_value_flags "$cmdpath")',
    '                set skip 1',
    '            end',
    '            continue',
    '        end',
    '        if contains -- $word (__prov_subcommands "$cmdpath")',
    '            set cmdpath $cmdpath $word',
    '        end',
    '    end',
    '    echo $cmdpath',
    'end',
    '',
    'function __prov_at',
    '    test (__prov_path) = "$argv[1]"',
    'end',
    '',
    'function __prov_values',
    '    set -l tokens (commandline -opc)',
    '    set -l prov prov',
    '    if string match -q -- "*/*" $tokens[1]',
    '        set prov (string replace -r "/[^/]*\\$" "" -- $tokens[1])/prov',
    '    end',
    '    $prov completion values $argv[1] 2>/dev/null',
    'end',
    '',
    'function __prov_subcommands',
    '    switch "$argv[1]"',
    ...items
      .filter((i) => i.subcommands.length)
      .map((i) => `        case ${sq(i.path)}\n            printf '%s\\n' ${i.subcommands.map((s) => sq(s.name)).join(' ')}`),
    '    end',
    'end',
    '',
    'function __prov_value_flags',
    '    switch "$argv[1]"',
    ...items
      .filter((i) => i.flags.some((f) => f.type === 'string'))
      .map(
        (i) =>
          `        case ${sq(i.path)}\n            printf '%s\\n' ${i.flags
            .filter((f) => f.type === 'string')
            .flatMap(flagWords)
            .map(sq)
            .join(' ')}`,
      ),
    '    end',
    'end',
    '',
    'complete -c prov -f',
    ...programs.filter((p) => p.program !== 'prov').map((p) => `complete -c ${p.program} -w ${sq(p.path)}`),
  ]
  for (const item of items) {
    const when = `-n ${sq(`__prov_at ${sq(item.path)}`)}`
    for (const sub of item.subcommands) lines.push(`complete -c prov ${when} -a ${sq(sub.name)} -d ${sq(oneLine(sub.description))}`)
    for (const flag of item.flags) {
      const values = flagValues(item.spec, flag)
      const parts = [`complete -c prov ${when} -l ${sq(flag.long)}`]
      if (flag.short) parts.push(`-s ${flag.short}`)
      for (const alias of flag.aliases) parts.push(`-l ${sq(alias)}`)
      if (flag.type === 'string') parts.push('-r')
      if (values.options) parts.push(`-x -a ${sq(values.options.join(' '))}`)
      else if (values.dynamic) parts.push(`-x -a ${sq(`(__prov_values ${values.dynamic})`)}`)
      parts.push(`-d ${sq(oneLine(flag.description))}`)
      lines.push(parts.join(' '))
    }
    const kind = positionalKind(item.spec)
    if (kind) lines.push(`complete -c prov ${when} -a ${sq(`(__prov_values ${kind})`)}`)
    else if (!item.subcommands.length) lines.push(`complete -c prov ${when} -F`)
  }
  return `${lines.join('\n')}\n`
}

/** A Nushell string literal (double quotes, escaped). */
const nuString = (text: string) => JSON.stringify(text)

function nuScript(specs: CommandSpec[]): string {
  const header: string[] = [
    '# Nushell completions for the prov-* binaries as external commands (generated by `prov completion nu`).',
    '# Use: prov completion nu | save -f ~/.config/nushell/prov-completions.nu, then `source` that file',
    '# from config.nu, next to `plugin use prov` (nu_plugin_prov): the plugin owns every `prov …` name;',
    '# these externs give `prov-server list --<TAB>` and friends help and completion.',
    '',
    ...['servers', 'taskservs', 'clusters', 'workspaces', 'infras'].map(
      (kind) => `def "nu-complete prov ${kind}" [] { ^prov completion values ${kind} | lines }`,
    ),
  ]
  const out: string[] = []
  const optionCompleters = new Map<string, string>()
  for (const spec of specs) {
    // `prov …` names belong to the plugin's commands: an extern of the same name would replace
    // them once sourced (and `prov server …` is the plugin's too), so only the prov-* binaries.
    if (spec.group || spec.program === 'prov') continue
    const program = binaries.find((b) => b.program === spec.program)!
    const name = [program.program, ...spec.path].join(' ')
    const params: string[] = []
    for (const p of spec.positionals) {
      if (p.undeclared) continue
      const kind = dynamicKindOf(spec, p.name, false)
      const type = `string${kind ? `@"nu-complete prov ${kind}"` : ''}`
      const comment = p.description ? `  # ${oneLine(p.description, 100)}` : ''
      params.push(`  ${p.rest ? '...' : ''}${p.name.replace(/[^A-Za-z0-9_-]/g, '_')}${p.required || p.rest ? '' : '?'}: ${type}${comment}`)
    }
    if (spec.positionals.some((p) => p.undeclared)) params.push('  ...args: string')
    for (const flag of spec.flags) {
      const values = flagValues(spec, flag)
      let completer = ''
      if (values.dynamic) completer = `@"nu-complete prov ${values.dynamic}"`
      else if (values.options) {
        const key = values.options.join(' ')
        if (!optionCompleters.has(key)) optionCompleters.set(key, `nu-complete prov choice ${optionCompleters.size + 1}`)
        completer = `@${nuString(optionCompleters.get(key)!)}`
      }
      const type = flag.type === 'boolean' ? '' : `: string${completer}`
      params.push(`  --${flag.long}${flag.short ? `(-${flag.short})` : ''}${type}  # ${oneLine(flag.description, 100)}`)
    }
    out.push(`# ${oneLine(spec.description, 120)}`, `export extern ${nuString(name)} [`, ...params, ']', '')
  }
  const completers = [...optionCompleters].map(([values, name]) => `def ${nuString(name)} [] { [${values.split(' ').map(nuString).join(' ')}] }`)
  return `${[...header, ...completers, '', ...out].join('\n')}`
}

/** The completion script of one shell. */
export function completionScript(shell: CompletionShell, specs: CommandSpec[]): string {
  switch (shell) {
    case 'bash':
      return bashScript(specs)
    case 'zsh':
      return zshScript(specs)
    case 'fish':
      return fishScript(specs)
    case 'nu':
      return nuScript(specs)
  }
}
