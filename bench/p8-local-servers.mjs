// P8: create 20 local sandbox servers in parallel until each answers SSH, then delete them.
// Own subnet and bridge (10.213.4.0/24, provb4) so it never touches the main job's servers.

import { spawnSync } from 'node:child_process'
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'

const COUNT = 20
const SUBNET = '10.213.4.0/24'
const BRIDGE = 'provb4'

export default async function p8({ root, log }) {
  if (process.getuid?.() !== 0) throw new Error('P8 needs root (local sandboxes)')
  const home = mkdtempSync(join(tmpdir(), 'prov-bench-p8-'))
  const ws = join(home, 'ws')
  const env = { ...process.env, XDG_CONFIG_HOME: join(home, 'xdg'), PROV_WORKSPACE: ws, PROV_SYSTEM_CONFIG_DIR: join(home, 'etc') }
  const server = (args, input) => {
    const start = process.hrtime.bigint()
    const result = spawnSync(process.execPath, [join(root, 'bin', 'prov-server'), ...args], { env, input, encoding: 'utf8', maxBuffer: 1 << 26 })
    const ms = Number(process.hrtime.bigint() - start) / 1e6
    if (result.status !== 0) throw new Error(`prov-server ${args.join(' ')} exited ${result.status}: ${result.stderr.slice(0, 400)}`)
    return { ms, stdout: result.stdout }
  }
  spawnSync(process.execPath, [join(root, 'bin', 'prov'), 'workspace', 'init', 'ws', '--path', ws, '-q'], { env })
  const config = join(ws, 'prov.config.yaml')
  const text = readFileSync(config, 'utf8')
  const local = `  local:\n    subnet: ${SUBNET}\n    bridge: ${BRIDGE}\n    nat: false\n`
  writeFileSync(config, text.includes('providers:\n') ? text.replace('providers:\n', `providers:\n${local}`) : `${text}\nproviders:\n${local}`)
  mkdirSync(join(ws, 'infra', 'p8'), { recursive: true })
  const names = Array.from({ length: COUNT }, (_, i) => `p8-${String(i + 1).padStart(2, '0')}`)
  writeFileSync(join(ws, 'infra', 'p8', 'servers.yaml'), `servers:\n${names.map((n) => `  - name: ${n}\n    provider: local\n`).join('')}`)
  const rows = []
  try {
    const plan = server(['plan', '--infra', 'p8', '-q'])
    const apply = server(['apply', '--yes', '--parallel', String(COUNT), '-q', '--out', 'json'], plan.stdout)
    const created = JSON.parse(apply.stdout)
    const running = created.filter((s) => s.status === 'running').length
    log(`create ${COUNT} (plan ${plan.ms.toFixed(0)} ms + apply ${apply.ms.toFixed(0)} ms): ${running} running`)
    const exec = server(['exec', 'all', '--parallel', String(COUNT), '-q', '--out', 'json', '--', 'hostname'])
    const answered = JSON.parse(exec.stdout).filter((r) => r.exit_code === 0 && r.stdout.trim() === r.server).length
    log(`exec all -- hostname: ${answered}/${COUNT} answered in ${exec.ms.toFixed(0)} ms`)
    const total = (plan.ms + apply.ms) / 1000
    rows.push({
      metric: `create ${COUNT} local servers in parallel, SSH-ready (${running} running)`,
      prov: total,
      peer: null,
      unit: ' s',
      ratio: null,
      target: '<= 10 s',
      pass: total <= 10 && running === COUNT,
    })
    rows.push({
      metric: `first exec on all ${COUNT} (SSH handshake + hostname)`,
      prov: exec.ms / 1000,
      peer: null,
      unit: ' s',
      ratio: null,
      target: `${COUNT}/${COUNT} answer`,
      pass: answered === COUNT,
    })
    const del = server(['delete', '--all', '--yes', '--parallel', String(COUNT), '-q'])
    log(`delete ${COUNT}: ${del.ms.toFixed(0)} ms`)
    rows.push({ metric: `delete ${COUNT} local servers`, prov: del.ms / 1000, peer: null, unit: ' s', ratio: null, target: '—', pass: null })
  } finally {
    spawnSync(process.execPath, [join(root, 'bin', 'prov-server'), 'delete', '--all', '--yes', '-q'], { env })
    rmSync(home, { recursive: true, force: true })
  }
  return { id: 'P8', title: `${COUNT} local sandbox servers in parallel`, rows }
}
