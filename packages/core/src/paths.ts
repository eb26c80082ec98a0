import { existsSync } from 'node:fs'
import { homedir } from 'node:os'
import { dirname, join, resolve } from 'node:path'
import { fileURLToPath } from 'node:url'

/** `$XDG_CONFIG_HOME/prov` (default `~/.config/prov`). */
export function userConfigDir(): string {
  const base = process.env.XDG_CONFIG_HOME || join(homedir(), '.config')
  return join(base, 'prov')
}

/** `/etc/prov`, overridable for tests with PROV_SYSTEM_CONFIG_DIR. */
export function systemConfigDir(): string {
  return process.env.PROV_SYSTEM_CONFIG_DIR || '/etc/prov'
}

/** Expands a leading `~`. */
export function expandHome(path: string): string {
  return path === '~' || path.startsWith('~/') ? join(homedir(), path.slice(1)) : path
}

/** The repository root (where the bundled extensions and templates live). */
export function repoRoot(): string {
  if (process.env.PROV_HOME) return resolve(process.env.PROV_HOME)
  cachedRoot ??= findRepoRoot()
  return cachedRoot
}

let cachedRoot: string | undefined
function findRepoRoot(): string {
  // Walk up from this module (src/, dist/ or a dist chunk folder) to the folder holding extensions/ and packages/.
  let dir = dirname(fileURLToPath(import.meta.url))
  for (let i = 0; i < 6; i++) {
    if (existsSync(join(dir, 'extensions')) && existsSync(join(dir, 'packages'))) return dir
    dir = dirname(dir)
  }
  return resolve(dirname(fileURLToPath(import.meta.url)), '../../..')
}

export const bundledExtensionsDir = () => join(repoRoot(), 'extensions')
export const templatesDir = () => join(repoRoot(), 'templates')

/** Paths inside a workspace (docs/prov.md, workspace layout). */
export function workspacePaths(root: string) {
  const state = join(root, '.prov')
  return {
    root,
    infra: join(root, 'infra'),
    config: join(root, 'config'),
    extensions: join(root, 'extensions'),
    secrets: join(root, 'secrets'),
    state,
    servers: join(state, 'servers.json'),
    knownHosts: join(state, 'known_hosts'),
    sshDir: join(state, 'ssh'),
    sshKey: join(state, 'ssh', 'id_ed25519'),
    oci: join(state, 'oci'),
    ociCache: join(state, 'cache', 'oci'),
    registryExtensions: join(state, 'extensions'),
    orchDb: join(state, 'orch.db'),
    logs: join(state, 'logs'),
    locks: join(state, 'locks'),
  }
}
export type WorkspacePaths = ReturnType<typeof workspacePaths>
