// prov-kms: keys, encryption with context, SOPS-compatible files, the workspace secret store.
// Kept tiny for cold start: `--version` answers before anything is imported; the command tree
// (tree.ts) and core load only for real commands.

/** Same value as PROV_VERSION in @prov/core (a test checks they agree). */
export const KMS_VERSION = '0.1.0'

const argv = process.argv.slice(2)
if (argv.length === 1 && argv[0] === '--version') {
  process.stdout.write(`${KMS_VERSION}\n`)
} else {
  const [{ runProvMain }, { main }] = await Promise.all([import('@prov/core'), import('./tree')])
  process.exitCode = await runProvMain(main)
}
