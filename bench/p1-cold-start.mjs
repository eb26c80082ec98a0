// P1: cold start of the binaries vs `node -e 0`, interleaved run by run (median ratio).

import { spawnSync } from 'node:child_process'
import { existsSync, mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { sideBySide } from './lib.mjs'

export default async function p1({ root, log }) {
  const home = mkdtempSync(join(tmpdir(), 'prov-bench-p1-'))
  const env = { XDG_CONFIG_HOME: join(home, 'xdg'), PROV_WORKSPACE: join(home, 'ws') }
  const bin = (name) => join(root, 'bin', name)
  spawnSync(process.execPath, [bin('prov'), 'workspace', 'init', 'ws', '--path', join(home, 'ws'), '-q'], { env: { ...process.env, ...env } })
  const node = { command: process.execPath, args: ['-e', '0'], env }
  const cases = [
    ['prov --version', ['prov', '--version'], 1.5],
    ['prov config show', ['prov', 'config', 'show'], 1.5],
    ['prov-kms --version', ['prov-kms', '--version'], 1.5],
    ['prov-server list (empty workspace)', ['prov-server', 'list'], 2.0],
  ]
  const rows = []
  try {
    for (const [metric, [binary, ...args], target] of cases) {
      if (!existsSync(join(root, 'packages', binary === 'prov' ? 'prov' : binary.slice(5), 'dist', 'cli.mjs'))) {
        log(`${metric}: not built, skipped`)
        continue
      }
      const { a, b } = sideBySide({ command: process.execPath, args: [bin(binary), ...args], env }, node, { runs: 15 })
      const ratio = a / b
      log(`${metric}: ${a.toFixed(1)} ms vs node ${b.toFixed(1)} ms = ${ratio.toFixed(2)}x`)
      rows.push({
        metric,
        prov: a,
        peer: b,
        peerName: 'node -e 0',
        unit: ' ms',
        ratio,
        target: target ? `<= ${target}x` : 'reported',
        pass: target ? ratio <= target : null,
      })
    }
  } finally {
    rmSync(home, { recursive: true, force: true })
  }
  return { id: 'P1', title: 'cold start vs node -e 0', rows }
}
