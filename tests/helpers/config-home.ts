import { mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { afterEach, beforeEach } from 'vitest'

/**
 * Gives every test of the file its own empty user and system config folders (XDG_CONFIG_HOME,
 * PROV_SYSTEM_CONFIG_DIR) under a fresh temp root, and restores the environment afterwards.
 * `root()` is the current test's temp root.
 */
export function useTempConfigHome(prefix = 'prov-config-'): { root: () => string } {
  let current = ''
  const saved = { ...process.env }
  beforeEach(() => {
    current = mkdtempSync(join(tmpdir(), prefix))
    process.env.XDG_CONFIG_HOME = join(current, 'xdg')
    process.env.PROV_SYSTEM_CONFIG_DIR = join(current, 'etc')
  })
  afterEach(() => {
    rmSync(current, { recursive: true, force: true })
    process.env = { ...saved }
  })
  return { root: () => current }
}
