// P4: install the no-download taskserv `hello` (a file + a command) on 20 and on 50 local sandbox
// servers vs ansible-playbook (Debian ansible-core, forks = the number of servers) doing the same
// copy + command over the same SSH key and pinned host keys. Each run writes a new message so both
// really do the work.
// Own workspace, subnet and bridge (10.213.4.0/24, provb4, shared with P8 which runs after).

import { spawnSync } from 'node:child_process'
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { median } from './lib.mjs'

const SUBNET = '10.213.4.0/24'
const BRIDGE = 'provb4'

/**
 * Creates `count` servers, installs `hello` on them with prov and with ansible-playbook `runs` times
 * (interleaved, after one warm-up of each), then the idempotent re-run; deletes the servers.
 */
async function installOn(root, log, count, runs) {
  if (process.getuid?.() !== 0) throw new Error('P4 needs root (local sandboxes)')
  if (spawnSync('sh', ['-c', 'command -v ansible-playbook']).status !== 0) throw new Error('ansible-playbook (Debian ansible-core) is not installed')
  const home = mkdtempSync(join(tmpdir(), 'prov-bench-p4-'))
  const ws = join(home, 'ws')
  const env = { ...process.env, XDG_CONFIG_HOME: join(home, 'xdg'), PROV_WORKSPACE: ws, PROV_SYSTEM_CONFIG_DIR: join(home, 'etc'), NO_COLOR: '1' }
  const run = (bin, args, input) => {
    const start = process.hrtime.bigint()
    const result = spawnSync(process.execPath, [join(root, 'bin', bin), ...args], { env, input, encoding: 'utf8', maxBuffer: 1 << 26 })
    const ms = Number(process.hrtime.bigint() - start) / 1e6
    if (result.status !== 0) throw new Error(`${bin} ${args.join(' ')} exited ${result.status}: ${result.stderr.slice(-600)}`)
    return { ms, stdout: result.stdout }
  }
  spawnSync(process.execPath, [join(root, 'bin', 'prov'), 'workspace', 'init', 'ws', '--path', ws, '-q'], { env })
  writeFileSync(
    join(ws, 'prov.config.yaml'),
    `workspace:\n  name: p4\nproviders:\n  default: local\n  local:\n    subnet: ${SUBNET}\n    bridge: ${BRIDGE}\n    nat: false\n`,
  )
  const names = Array.from({ length: count }, (_, i) => `p4-${String(i + 1).padStart(2, '0')}`)
  const measured = {}
  try {
    const created = run('prov-server', ['create', ...names, '--provider', 'local', '--parallel', String(count), '-q', '--out', 'json'])
    const servers = JSON.parse(created.stdout)
    log(`created ${servers.length} servers in ${created.ms.toFixed(0)} ms`)
    const list = run('prov-server', ['list', '--out', 'json']).stdout

    // The same work for Ansible: a directory, the message file, the version file, then a command.
    const key = join(ws, '.prov', 'ssh', 'id_ed25519')
    const knownHosts = join(ws, '.prov', 'known_hosts')
    const inventory = join(home, 'inventory.ini')
    writeFileSync(
      inventory,
      `[all]\n${servers.map((s) => `${s.name} ansible_host=${s.ip_address}`).join('\n')}\n\n[all:vars]\nansible_user=root\nansible_ssh_private_key_file=${key}\nansible_ssh_common_args='-o UserKnownHostsFile=${knownHosts} -o StrictHostKeyChecking=yes -o GlobalKnownHostsFile=/dev/null'\nansible_python_interpreter=/usr/bin/python3\n`,
    )
    const playbook = join(home, 'hello.yml')
    writeFileSync(
      playbook,
      [
        '- hosts: all',
        '  gather_facts: false',
        '  tasks:',
        '    - file: { path: /etc/prov-hello-ansible, state: directory, mode: "0755" }',
        '    - copy: { content: "{{ msg }}\\n", dest: /etc/prov-hello-ansible/message }',
        '    - copy: { content: "1.0.0\\n", dest: /etc/prov-hello-ansible/version }',
        '    - shell: uname -n > /etc/prov-hello-ansible/ran',
        '',
      ].join('\n'),
    )
    const ansibleEnv = {
      ...env,
      ANSIBLE_FORKS: String(count),
      ANSIBLE_PIPELINING: 'True',
      ANSIBLE_HOST_KEY_CHECKING: 'True',
      ANSIBLE_NOCOLOR: '1',
      ANSIBLE_LOCAL_TEMP: join(home, 'ansible-tmp'),
    }
    const ansible = (msg) => {
      const start = process.hrtime.bigint()
      const result = spawnSync('ansible-playbook', ['-i', inventory, '-f', String(count), '-e', `msg=${msg}`, playbook], {
        env: ansibleEnv,
        encoding: 'utf8',
        maxBuffer: 1 << 26,
      })
      const ms = Number(process.hrtime.bigint() - start) / 1e6
      if (result.status !== 0) throw new Error(`ansible-playbook exited ${result.status}: ${result.stdout.slice(-800)}`)
      const recap = /changed=(\d+)/g
      let changed = 0
      for (const m of result.stdout.matchAll(recap)) changed += Number(m[1])
      return { ms, changed }
    }
    const prov = (msg) => {
      const r = run('prov-taskserv', ['install', 'hello', '--set', `message=${msg}`, '--parallel', String(count), '-q', '--out', 'json'], list)
      const results = JSON.parse(r.stdout)
      return { ms: r.ms, changed: results.filter((x) => x.status === 'changed').length }
    }

    // Warm-up of both (first SSH handshakes, Python byte-compilation on the Ansible side).
    prov('warmup')
    ansible('warmup')
    const provMs = []
    const ansibleMs = []
    for (let i = 0; i < runs; i++) {
      const p = prov(`run-${i}`)
      if (p.changed !== count) throw new Error(`prov changed ${p.changed}/${count}`)
      provMs.push(p.ms)
      const a = ansible(`run-${i}`)
      ansibleMs.push(a.ms)
      log(`run ${i + 1}: prov ${p.ms.toFixed(0)} ms (${p.changed} changed), ansible ${a.ms.toFixed(0)} ms (${a.changed} changed tasks)`)
    }
    measured.prov = median(provMs)
    measured.ansible = median(ansibleMs)
    // The idempotent re-run (check.sh says ok everywhere).
    const again = run('prov-taskserv', ['install', 'hello', '--set', `message=run-${runs - 1}`, '--parallel', String(count), '-q', '--out', 'json'], list)
    measured.again = again.ms
    measured.unchanged = JSON.parse(again.stdout).filter((x) => x.status === 'ok').length
  } finally {
    spawnSync(process.execPath, [join(root, 'bin', 'prov-server'), 'delete', '--all', '--yes', '-q', '--parallel', String(count)], { env })
    rmSync(home, { recursive: true, force: true })
  }
  return measured
}

export default async function p4({ root, log }) {
  const rows = []
  for (const [count, runs, target] of [
    [20, 5, 0.25],
    [50, 3, 0.1],
  ]) {
    const m = await installOn(root, log, count, runs)
    const ratio = m.prov / m.ansible
    rows.push({
      metric: `install a file-and-command taskserv on ${count} local servers (median of ${runs})`,
      prov: m.prov,
      peer: m.ansible,
      peerName: `ansible-playbook forks=${count}`,
      unit: ' ms',
      ratio,
      target: `<= ${target}`,
      pass: ratio <= target,
    })
    rows.push({
      metric: `second install on ${count}, nothing to do (${m.unchanged}/${count} ok)`,
      prov: m.again,
      peer: null,
      unit: ' ms',
      ratio: null,
      target: 'all ok',
      pass: m.unchanged === count,
    })
  }
  return { id: 'P4', title: 'taskserv install on 20 and 50 local servers vs Ansible', rows }
}

/** Cost curves: one install on 5 / 20 / 50 servers, prov and ansible-playbook (forks = servers). */
export async function curves({ root, log }) {
  const prov = []
  const ansible = []
  for (const count of [5, 20, 50]) {
    const m = await installOn(root, log, count, 1)
    prov.push([count, m.prov / 1000])
    ansible.push([count, m.ansible / 1000])
  }
  return [
    {
      id: 'P4',
      title: 'P4 taskserv install vs Ansible',
      x: 'servers',
      y: 's',
      series: [
        { name: 'prov-taskserv install', points: prov },
        { name: 'ansible-playbook', points: ansible },
      ],
    },
  ]
}
