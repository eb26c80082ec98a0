import { existsSync } from 'node:fs'
import { resolve } from 'node:path'
import { defineProvCommand, ExitCode, notFoundError, resolveWorkspace } from '@prov/core'
import { scanDir } from '../lib/scan'
import { kmsContext } from '../lib/settings'

export default defineProvCommand({
  meta: {
    name: 'scan',
    description: 'Find plain-text secrets (secret-named fields, private keys, tokens); exit 6 when any is found (pre-commit hook)',
    examples: ['prov-kms scan', 'prov-kms scan infra/'],
    mutating: false,
  },
  args: { dir: { type: 'positional', description: 'Folder or file (default: the workspace, else the current folder)', required: false } },
  async run({ args, common, emit, log }) {
    const ctx = await kmsContext(common)
    const root = resolve(args.dir ? String(args.dir) : (ctx.workspace?.path ?? resolveWorkspace(common.workspace)?.path ?? process.cwd()))
    if (!existsSync(root)) throw notFoundError(`no such folder ${root}`, { location: root })
    const findings = scanDir(root, { secretsDirs: ctx.workspace ? [ctx.workspace.paths.secrets] : [] })
    emit(findings)
    if (findings.length) {
      log.warn(`${findings.length} plain-text secret(s) found under ${root}; encrypt them (prov-kms sops encrypt, prov-kms secret set)`)
      return ExitCode.PARTIAL
    }
    log.success(`no plain-text secrets under ${root}`)
    return ExitCode.OK
  },
})
