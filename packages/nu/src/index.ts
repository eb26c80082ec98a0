import { writeFileSync } from 'node:fs'
import { allSpecs, commandIndexFile, treesFingerprint } from './spec'

export { type CompletionShell, completionScript, completionShells } from './completion'
export { dynamicKindOf, dynamicKinds, dynamicValues } from './dynamic'
export { allSpecs, binaries, type CommandSpec, commandSpecs, type FlagSpec, findCommand, type PositionalSpec } from './spec'

/** Writes the command index next to the plugin (run by the build after the trees are built). */
export async function writeCommandIndex(): Promise<string> {
  const fingerprint = treesFingerprint()
  const commands = await allSpecs()
  const file = commandIndexFile()
  writeFileSync(file, `${JSON.stringify({ fingerprint, commands })}\n`)
  return file
}

/** The Markdown table of every plugin command (docs/nushell.md), one row per command. */
export async function commandTable(): Promise<string> {
  const rows = ['| command | what it does |', '| --- | --- |']
  for (const spec of await allSpecs()) {
    if (spec.group) continue
    const words = spec.positionals
      .filter((p) => !p.undeclared)
      .map((p) => (p.rest ? `[${p.name}...]` : p.required ? `<${p.name}>` : `[${p.name}]`))
      .join(' ')
    rows.push(`| \`${spec.name}${words ? ` ${words}` : ''}\` | ${spec.description.replace(/\|/g, '\\|')} |`)
  }
  return `${rows.join('\n')}\n`
}
