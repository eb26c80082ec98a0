// P10: 20 calls of `prov config show` in one Nushell session: the plugin (commands run inside
// the long-lived plugin process, values handed over natively) vs the external binary + `from json`.
// Whole sessions (nu start included), interleaved run by run, per covered nu version.

import { spawnSync } from 'node:child_process'
import { existsSync, mkdtempSync, rmSync } from 'node:fs'
import { homedir, tmpdir } from 'node:os'
import { join } from 'node:path'
import { sideBySide } from './lib.mjs'

const calls = 20

function nuBinary(version) {
  const tools = process.env.PROV_TOOLS_DIR || join(process.env.XDG_CACHE_HOME || join(homedir(), '.cache'), 'prov', 'tools')
  return join(tools, `nushell-${version}`, 'node_modules', '@nushell', 'linux-x64', 'bin', 'nu')
}

export default async function p10({ root, log }) {
  const home = mkdtempSync(join(tmpdir(), 'prov-bench-p10-'))
  const env = { XDG_CONFIG_HOME: join(home, 'xdg'), PROV_WORKSPACE: join(home, 'ws'), NO_COLOR: '1' }
  const prov = join(root, 'bin', 'prov')
  const plugin = join(root, 'bin', 'nu_plugin_prov')
  spawnSync(process.execPath, [prov, 'workspace', 'init', 'ws', '--path', join(home, 'ws'), '-q'], { env: { ...process.env, ...env } })
  const rows = []
  try {
    for (const version of ['0.108.0', '0.115.1']) {
      const nu = nuBinary(version)
      if (!existsSync(nu)) {
        log(`nu ${version}: not installed (scripts/setup.sh), skipped`)
        continue
      }
      const viaPlugin = {
        command: nu,
        args: ['-n', '--plugins', `[${plugin}]`, '-c', `1..${calls} | each { prov config show | get debug.enabled } | length`],
        env,
      }
      const viaExternal = { command: nu, args: ['-n', '-c', `1..${calls} | each { ^${prov} config show | from json | get debug.enabled } | length`], env }
      const { a, b } = sideBySide(viaPlugin, viaExternal, { runs: 5 })
      const ratio = a / b
      log(`nu ${version}: plugin ${a.toFixed(0)} ms vs external + from json ${b.toFixed(0)} ms = ${ratio.toFixed(2)}x`)
      rows.push({
        metric: `nu ${version}: ${calls}x prov config show in one session`,
        prov: a,
        peer: b,
        peerName: 'external prov + from json',
        unit: ' ms',
        ratio,
        target: '<= 0.5x',
        pass: ratio <= 0.5,
      })
    }
  } finally {
    rmSync(home, { recursive: true, force: true })
  }
  return { id: 'P10', title: 'Nushell plugin vs external binary + from json', rows }
}
