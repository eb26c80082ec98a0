// P2: resolve a 7-layer configuration of 200 keys with interpolation, in process (target <= 15 ms).
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { pathToFileURL } from 'node:url'
import { median, timeIt } from './lib.mjs'

export default async function p2({ root, log }) {
  const { loadConfig } = await import(pathToFileURL(join(root, 'packages/core/dist/config.mjs')).href)
  const home = mkdtempSync(join(tmpdir(), 'prov-bench-p2-'))
  const ws = join(home, 'ws')
  const saved = { XDG_CONFIG_HOME: process.env.XDG_CONFIG_HOME, PROV_SYSTEM_CONFIG_DIR: process.env.PROV_SYSTEM_CONFIG_DIR }
  process.env.XDG_CONFIG_HOME = join(home, 'xdg')
  process.env.PROV_SYSTEM_CONFIG_DIR = join(home, 'etc')
  // 200 keys spread over 5 files + environment variables; every 4th value interpolates another key.
  const layerKeys = (layer, from, to) => {
    const lines = ['paths:']
    for (let i = from; i < to; i++) lines.push(`  k${i}: "${i % 4 === 0 && i > 0 ? `{{paths.k${i - 1}}}/` : ''}${layer}-${i}"`)
    return `${lines.join('\n')}\n`
  }
  const files = [
    [join(home, 'etc/config.yaml'), layerKeys('system', 0, 40)],
    [join(home, 'xdg/prov/config.yaml'), layerKeys('user', 30, 80)],
    [join(ws, 'prov.config.yaml'), `workspace:\n  name: bench\n${layerKeys('ws', 70, 120)}`],
    [join(ws, 'config/prod.yaml'), layerKeys('env', 110, 160)],
    [join(ws, 'infra/web/config.yaml'), layerKeys('infra', 150, 200)],
  ]
  for (const [file, text] of files) {
    mkdirSync(join(file, '..'), { recursive: true })
    writeFileSync(file, text)
  }
  const environment = { ...process.env, PROV_PATHS__K199: 'from-env', PROV_DEBUG__ENABLED: 'true' }
  const run = () => loadConfig({ workspacePath: ws, env: 'prod', infra: 'web', environment, flags: { 'ssh.port': 2222 } })
  try {
    const first = await run()
    const keys = Object.keys(first.config.paths).length
    const layers = first.layers.map((l) => l.name).join(',')
    for (let i = 0; i < 20; i++) await run()
    const samples = []
    for (let i = 0; i < 100; i++) samples.push(await timeIt(run))
    const ms = median(samples)
    log(`${keys} path keys over layers ${layers}: median ${ms.toFixed(2)} ms`)
    return {
      id: 'P2',
      title: '7-layer config, 200 keys, interpolation',
      rows: [
        {
          metric: `resolve (${first.layers.length} layers, ${keys} keys)`,
          prov: ms,
          peer: null,
          unit: ' ms',
          ratio: ms / 15,
          target: '<= 15 ms',
          pass: ms <= 15,
        },
      ],
    }
  } finally {
    Object.assign(process.env, saved)
    rmSync(home, { recursive: true, force: true })
  }
}
