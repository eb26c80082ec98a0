import { type CommandDef, defineProvCommand, usageError, writeStdout } from '@prov/core'

/** The completion module (the command specs of every binary) loads only for this command. */
const completion = () => import('@prov/nu')

function scriptCommand(shell: 'bash' | 'zsh' | 'fish' | 'nu', description: string, example: string) {
  return defineProvCommand({
    meta: { name: shell, description, examples: [example], mutating: false },
    async run() {
      const { commandSpecs, completionScript } = await completion()
      writeStdout(completionScript(shell, await commandSpecs()))
    },
  })
}

const values = defineProvCommand({
  meta: {
    name: 'values',
    description: 'Names for completing arguments, one per line: servers, taskservs, clusters, workspaces or infras (local files only)',
    hidden: true,
    mutating: false,
    usage: '<KIND>',
    examples: ['prov completion values servers', 'prov completion values taskservs --out json'],
  },
  args: { kind: { type: 'positional', description: 'servers, taskservs, clusters, workspaces or infras', required: true } },
  async run({ args, common, emit }) {
    const { dynamicKinds, dynamicValues } = await completion()
    const kind = String(args.kind)
    if (!(dynamicKinds as readonly string[]).includes(kind)) throw usageError(`unknown kind '${kind}'`, { hint: `use one of ${dynamicKinds.join(', ')}` })
    const names = await dynamicValues(kind as (typeof dynamicKinds)[number], { workspace: common.workspace })
    // Shell scripts read plain lines; only an explicit --out (not output.format) asks for data.
    if (args.out) emit(names)
    else writeStdout(names.length ? `${names.join('\n')}\n` : '')
  },
})

export default {
  meta: { name: 'completion', description: 'Shell completion for prov and every prov-* tool: bash, zsh, fish, nu (print the script to source)' },
  subCommands: {
    bash: () => Promise.resolve(scriptCommand('bash', 'bash completion script', 'source <(prov completion bash)')),
    zsh: () => Promise.resolve(scriptCommand('zsh', 'zsh completion script (after compinit)', 'source <(prov completion zsh)')),
    fish: () => Promise.resolve(scriptCommand('fish', 'fish completion script', 'prov completion fish | source')),
    nu: () =>
      Promise.resolve(scriptCommand('nu', 'Nushell externs with completions for the plain binaries', 'prov completion nu | save -f prov-completions.nu')),
    values: () => Promise.resolve(values),
  },
} satisfies CommandDef
