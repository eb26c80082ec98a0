// P8: create local sandbox servers in parallel until each answers SSH (20: <= 10 s; 50: <= 5 s), then
// delete them. Own subnet and bridge (10.213.4.0/24, provb4) so it never touches the main job's servers.

import { spawnSync } from 'node:child_process'
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'

const SUBNET = '10.213.4.0/24'
const BRIDGE = 'provb4'

/** Creates `count` servers (plan + apply), runs `hostname` on all, deletes them; seconds of each. */
async function localServers(root, log, count) {
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
  const names = Array.from({ length: count }, (_, i) => `p8-${String(i + 1).padStart(2, '0')}`)
  writeFileSync(join(ws, 'infra', 'p8', 'servers.yaml'), `servers:\n${names.map((n) => `  - name: ${n}\n    provider: local\n`).join('')}`)
  try {
    const plan = server(['plan', '--infra', 'p8', '-q'])
    const apply = server(['apply', '--yes', '--parallel', String(count), '-q', '--out', 'json'], plan.stdout)
    const running = JSON.parse(apply.stdout).filter((s) => s.status === 'running').length
    log(`create ${count} (plan ${plan.ms.toFixed(0)} ms + apply ${apply.ms.toFixed(0)} ms): ${running} running`)
    const exec = server(['exec', 'all', '--parallel', String(count), '-q', '--out', 'json', '--', 'hostname'])
    const answered = JSON.parse(exec.stdout).filter((r) => r.exit_code === 0 && r.stdout.trim() === r.server).length
    log(`exec all -- hostname: ${answered}/${count} answered in ${exec.ms.toFixed(0)} ms`)
    const del = server(['delete', '--all', '--yes', '--parallel', String(count), '-q'])
    log(`delete ${count}: ${del.ms.toFixed(0)} ms`)
    return { create: (plan.ms + apply.ms) / 1000, exec: exec.ms / 1000, delete: del.ms / 1000, running, answered }
  } finally {
    spawnSync(process.execPath, [join(root, 'bin', 'prov-server'), 'delete', '--all', '--yes', '-q'], { env })
    rmSync(home, { recursive: true, force: true })
  }
}

export default async function p8({ root, log }) {
  const rows = []
  for (const [count, limit] of [
    [20, 10],
    [50, 5],
  ]) {
    let r
    try {
      r = await localServers(root, log, count)
    } catch (error) {
      // The larger run must not hide the smaller one's figures.
      log(`${count} servers: ${error.message}`)
      rows.push({
        metric: `create ${count} local servers: could not run`,
        prov: null,
        peer: null,
        ratio: null,
        target: `<= ${limit} s`,
        pass: false,
        note: error.message,
      })
      continue
    }
    rows.push(
      {
        metric: `create ${count} local servers in parallel, SSH-ready (${r.running} running)`,
        prov: r.create,
        peer: null,
        unit: ' s',
        ratio: null,
        target: `<= ${limit} s`,
        pass: r.create <= limit && r.running === count,
      },
      {
        metric: `first exec on all ${count} (SSH handshake + hostname)`,
        prov: r.exec,
        peer: null,
        unit: ' s',
        ratio: null,
        target: `${count}/${count} answer`,
        pass: r.answered === count,
      },
      { metric: `delete ${count} local servers`, prov: r.delete, peer: null, unit: ' s', ratio: null, target: '—', pass: null },
    )
  }
  return { id: 'P8', title: 'local sandbox servers in parallel: 20 and 50', rows }
}

/** Cost curves: create (SSH-ready), first exec and delete at 5 / 20 / 50 servers. */
export async function curves({ root, log }) {
  const points = { create: [], exec: [], delete: [] }
  for (const count of [5, 20, 50]) {
    const r = await localServers(root, log, count)
    for (const key of Object.keys(points)) points[key].push([count, r[key]])
  }
  return [
    {
      id: 'P8',
      title: 'P8 local servers',
      x: 'servers',
      y: 's',
      series: [
        { name: 'create, SSH-ready', points: points.create },
        { name: 'first exec', points: points.exec },
        { name: 'delete', points: points.delete },
      ],
    },
  ]
}
