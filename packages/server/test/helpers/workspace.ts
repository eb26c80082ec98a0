import { createHash } from 'node:crypto'
import { mkdirSync, readdirSync, readFileSync, statSync, writeFileSync } from 'node:fs'
import { join } from 'node:path'
import { ensureWorkspaceKey } from '@prov/core'
import { type CliResult, runCli, tempWorkspace } from '../../../../tests/helpers/cli'
import { type LoopbackSshd, startLoopbackSshd } from './sshd'

export interface CliCall {
  input?: string
  env?: Record<string, string>
}

export type ServerTestWorkspace = Awaited<ReturnType<typeof tempWorkspace>> & {
  sshd: LoopbackSshd
  /** Runs prov-server in the workspace (stdin a pipe, stdout not a terminal). */
  cli(args: string[], options?: CliCall): Promise<CliResult>
  /** Writes infra/<name>/servers.yaml and returns its path. */
  writeInfra(name: string, text: string): string
  dispose(): Promise<void>
}

/**
 * A workspace for prov-server tests without sandboxes: the full template with its own local
 * subnet and bridge (should anything ever reach the local provider, it clashes with nobody), the
 * workspace key, and a real sshd on loopback that trusts it (for the ssh provider).
 */
export async function serverTestWorkspace(name: string, subnet: string, bridge: string): Promise<ServerTestWorkspace> {
  const ws = await tempWorkspace(name, 'full')
  const config = join(ws.path, 'prov.config.yaml')
  writeFileSync(
    config,
    readFileSync(config, 'utf8')
      .replace(/subnet: \S+/, `subnet: ${subnet}`)
      .replace(/bridge: \S+/, `bridge: ${bridge}`),
  )
  const key = await ensureWorkspaceKey(ws.path)
  const sshd = await startLoopbackSshd(key.publicKey)
  return {
    ...ws,
    sshd,
    cli: (args, options = {}) => runCli('prov-server', args, { env: { ...ws.env, ...options.env }, cwd: ws.path, input: options.input, timeoutMs: 120_000 }),
    writeInfra(infra, text) {
      mkdirSync(join(ws.path, 'infra', infra), { recursive: true })
      const file = join(ws.path, 'infra', infra, 'servers.yaml')
      writeFileSync(file, text)
      return file
    },
    async dispose() {
      await sshd.stop()
      ws.cleanup()
    },
  }
}

/** sha256 over every path, mode and file content below `dir`: equal hashes, nothing changed. */
export function treeHash(dir: string): string {
  const hash = createHash('sha256')
  const walk = (path: string) => {
    const st = statSync(path)
    hash.update(`${path} ${st.mode}\n`)
    if (st.isDirectory()) for (const entry of readdirSync(path).sort()) walk(join(path, entry))
    else hash.update(readFileSync(path))
  }
  walk(dir)
  return hash.digest('hex')
}
