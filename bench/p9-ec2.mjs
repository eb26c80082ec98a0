// P9: the aws provider on moto_server (the EC2 emulator the tests use). (1) Apply 50 servers,
// --parallel 10: `prov-server apply` of a plan vs bench/ec2-bare-peer.mjs, the same EC2 calls made
// directly with @aws-sdk/client-ec2 at the same parallelism (both fresh processes, interleaved
// run by run, moto reset before each; target prov/bare <= 1.2). (2) `prov-server plan` of 1,000
// declared aws servers (read-only calls only; target <= 300 ms).
import { spawnSync } from 'node:child_process'
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { median, timeCommand } from './lib.mjs'

const IMAGE = 'ami-1e749f67' // one of moto's built-in Ubuntu AMIs
const APPLY = { count: 50, parallel: 10 }
const PLAN_COUNT = 1000

function timed(command, args, options) {
  const start = process.hrtime.bigint()
  const result = spawnSync(command, args, { encoding: 'utf8', maxBuffer: 1 << 28, ...options })
  const ms = Number(process.hrtime.bigint() - start) / 1e6
  if (result.status !== 0) throw new Error(`${args.slice(0, 3).join(' ')} exited ${result.status}: ${String(result.stderr).slice(0, 400)}`)
  return { ms, stdout: result.stdout }
}

export default async function p9({ root, log }) {
  const { createJiti } = await import('jiti')
  const { startMoto } = await createJiti(import.meta.url).import(join(root, 'tests', 'helpers', 'moto.ts'))
  const moto = await startMoto()
  const home = mkdtempSync(join(tmpdir(), 'prov-bench-p9-'))
  const credentials = {
    AWS_ACCESS_KEY_ID: 'AKIDPROVBENCH',
    AWS_SECRET_ACCESS_KEY: 'prov-bench-secret',
    AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED: 'true',
  }
  try {
    const ws = join(home, 'ws')
    const env = { ...process.env, ...credentials, XDG_CONFIG_HOME: join(home, 'xdg'), PROV_WORKSPACE: ws, PROV_SYSTEM_CONFIG_DIR: join(home, 'etc') }
    const server = (args, input) => timed(process.execPath, [join(root, 'bin', 'prov-server'), ...args], { env, input })
    spawnSync(process.execPath, [join(root, 'bin', 'prov'), 'workspace', 'init', 'ws', '--path', ws, '-q'], { env })
    const config = join(ws, 'prov.config.yaml')
    const aws = `  aws:\n    endpoint: ${moto.url}\n    region: us-east-1\n    ready: running\n    ssh_cidr: 203.0.113.0/24\n`
    const text = readFileSync(config, 'utf8')
    writeFileSync(config, text.includes('providers:\n') ? text.replace('providers:\n', `providers:\n${aws}`) : `${text}\nproviders:\n${aws}`)
    const declare = (infra, names) => {
      mkdirSync(join(ws, 'infra', infra), { recursive: true })
      const one = (n) =>
        `  - name: ${n}\n    provider: aws\n    plan: t3.micro\n    image: ${IMAGE}\n    zone: us-east-1a\n    provision:\n      files:\n        - path: /etc/motd\n          contents: "hello from ${n}\\n"\n`
      writeFileSync(join(ws, 'infra', infra, 'servers.yaml'), `servers:\n${names.map(one).join('')}`)
    }
    declare(
      'p9',
      Array.from({ length: APPLY.count }, (_, i) => `p9-${String(i + 1).padStart(2, '0')}`),
    )
    declare(
      'p9-plan',
      Array.from({ length: PLAN_COUNT }, (_, i) => `plan-${String(i + 1).padStart(4, '0')}`),
    )
    // The same public key for the bare script (prov makes the workspace's own on first use).
    const keyFile = join(home, 'bare_ed25519')
    spawnSync('ssh-keygen', ['-q', '-t', 'ed25519', '-N', '', '-f', keyFile])
    const provMs = []
    const bareMs = []
    for (let run = 0; run < 3; run++) {
      await moto.reset()
      rmSync(join(ws, '.prov', 'servers.json'), { force: true })
      const plan = server(['plan', '--infra', 'p9', '-q'])
      const apply = server(['apply', '--yes', '--parallel', String(APPLY.parallel), '-q', '--out', 'json'], plan.stdout)
      const running = JSON.parse(apply.stdout).filter((s) => s.status === 'running').length
      if (running !== APPLY.count) throw new Error(`prov apply: ${running}/${APPLY.count} running`)
      provMs.push(apply.ms)
      await moto.reset()
      const bare = timed(
        process.execPath,
        [join(root, 'bench', 'ec2-bare-peer.mjs'), moto.url, String(APPLY.count), String(APPLY.parallel), `${keyFile}.pub`, IMAGE],
        { env: { ...process.env, ...credentials } },
      )
      bareMs.push(bare.ms)
      log(`apply ${APPLY.count} --parallel ${APPLY.parallel}: prov ${(apply.ms / 1000).toFixed(1)} s, bare SDK ${(bare.ms / 1000).toFixed(1)} s`)
    }
    await moto.reset()
    rmSync(join(ws, '.prov', 'servers.json'), { force: true })
    const planMs = timeCommand(process.execPath, [join(root, 'bin', 'prov-server'), 'plan', '--infra', 'p9-plan', '-q'], { env, runs: 5 })
    log(`plan of ${PLAN_COUNT} declared servers: ${planMs.toFixed(0)} ms`)
    // CPU time of the same plan (user + system, from /usr/bin/time): on a shared machine the wall
    // time above mostly measures the wait for a core, this is what the plan itself costs.
    const cpu = []
    for (let run = 0; run < 3; run++) {
      const timed = spawnSync('/usr/bin/time', ['-f', 'cpu %U %S', process.execPath, join(root, 'bin', 'prov-server'), 'plan', '--infra', 'p9-plan', '-q'], {
        env,
        encoding: 'utf8',
        maxBuffer: 1 << 28,
      })
      const found = /cpu ([\d.]+) ([\d.]+)\s*$/.exec(String(timed.stderr))
      if (timed.status !== 0 || !found) throw new Error(`plan under /usr/bin/time failed: ${String(timed.stderr).slice(-300)}`)
      cpu.push((Number(found[1]) + Number(found[2])) * 1000)
    }
    const planCpu = median(cpu)
    log(`plan of ${PLAN_COUNT} declared servers: ${planCpu.toFixed(0)} ms of CPU`)
    const prov = median(provMs) / 1000
    const peer = median(bareMs) / 1000
    return {
      id: 'P9',
      title: 'aws provider on moto_server',
      rows: [
        {
          metric: `apply ${APPLY.count} servers, --parallel ${APPLY.parallel} (s, median of 3)`,
          prov,
          peer,
          peerName: 'bare @aws-sdk/client-ec2',
          ratio: prov / peer,
          target: '<= 1.2x',
          pass: prov / peer <= 1.2,
          unit: ' s',
        },
        {
          metric: `plan of ${PLAN_COUNT.toLocaleString('en')} declared servers, no API writes (ms, median of 5)`,
          prov: planMs,
          peer: null,
          ratio: null,
          target: '<= 300 ms',
          pass: planMs <= 300,
          unit: ' ms',
        },
        {
          metric: `plan of ${PLAN_COUNT.toLocaleString('en')} declared servers: CPU time, user + system (ms, median of 3)`,
          prov: planCpu,
          peer: null,
          ratio: null,
          target: '(info)',
          pass: null,
          unit: ' ms',
        },
      ],
    }
  } finally {
    await moto.close()
    rmSync(home, { recursive: true, force: true })
  }
}
