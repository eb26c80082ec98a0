// P6: prov-kms vs the age CLI. (1) 10 MB encrypt + decrypt, each a fresh process, side by side
// (start-up bound, target: prov/age <= 2.5); the same with process start subtracted, to show the
// crypto itself. (2) 1,000 secrets through one NDJSON stream (`prov-kms encrypt --field password`)
// vs 1,000 `age -r` runs (target: >= 40x faster). (3) for information: 10 MB as plain age files
// (`encrypt --format age`, and decrypting what `age -r` wrote) vs age itself. (4) peak memory of
// a 64 MiB `encrypt | decrypt` pipe (streamed: target under 200 MB per process), beside age's.
// (5) 1 GiB through pipes, each direction on its own: `encrypt --format age` vs `age -r`, and
// decrypt of an `age -r` file vs `age -d` (target <= 1.2x each; CPU time of the process beside).
import { spawn, spawnSync } from 'node:child_process'
import { createHash, randomBytes } from 'node:crypto'
import { closeSync, createReadStream, existsSync, mkdtempSync, openSync, readFileSync, rmSync, writeFileSync, writeSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { median } from './lib.mjs'

function run(command, args, { input, env } = {}) {
  const start = process.hrtime.bigint()
  const result = spawnSync(command, args, { input, env: { ...process.env, ...env }, maxBuffer: 1 << 30 })
  const ms = Number(process.hrtime.bigint() - start) / 1e6
  if (result.status !== 0) throw new Error(`${command} ${args.join(' ')} exited ${result.status}: ${String(result.stderr).slice(0, 300)}`)
  return { ms, stdout: result.stdout }
}

/** Pipes `size` bytes through `first | second`; the larger peak RSS (VmHWM, MB) of the two processes. */
export async function peakOfPipe([cmd1, args1], [cmd2, args2], env, size) {
  const opts = { env: { ...process.env, ...env }, stdio: ['pipe', 'pipe', 'inherit'] }
  const first = spawn(cmd1, args1, opts)
  const second = spawn(cmd2, args2, opts)
  first.stdout.pipe(second.stdin)
  let peak = 0
  const poll = setInterval(() => {
    for (const child of [first, second]) {
      try {
        const hwm = /VmHWM:\s+(\d+) kB/.exec(readFileSync(`/proc/${child.pid}/status`, 'utf8'))?.[1]
        if (hwm) peak = Math.max(peak, Number(hwm))
      } catch {
        // exited
      }
    }
  }, 10)
  let total = 0
  second.stdout.on('data', (chunk) => {
    total += chunk.length
  })
  const block = Buffer.alloc(1024 * 1024, 0x5a)
  for (let sent = 0; sent < size; sent += block.length) {
    if (!first.stdin.write(block)) await new Promise((resolve) => first.stdin.once('drain', resolve))
  }
  first.stdin.end()
  await Promise.all([new Promise((resolve) => first.on('close', resolve)), new Promise((resolve) => second.on('close', resolve))])
  clearInterval(poll)
  if (first.exitCode !== 0 || second.exitCode !== 0 || total !== size) throw new Error(`${cmd1} | ${cmd2}: pipe failed or lost data`)
  return peak / 1024
}

/**
 * Streams `file` through one process's stdin and stdout (pipes both ways); wall ms, CPU ms (user +
 * system, from /usr/bin/time when present), output bytes, and the output's sha256 when asked.
 */
export async function throughPipes(command, args, file, env, { digest = false } = {}) {
  const timed = existsSync('/usr/bin/time')
  const start = process.hrtime.bigint()
  const child = timed
    ? spawn('/usr/bin/time', ['-f', 'cpu %U %S', command, ...args], { env: { ...process.env, ...env }, stdio: ['pipe', 'pipe', 'pipe'] })
    : spawn(command, args, { env: { ...process.env, ...env }, stdio: ['pipe', 'pipe', 'pipe'] })
  createReadStream(file, { highWaterMark: 1024 * 1024 }).pipe(child.stdin)
  const hash = digest ? createHash('sha256') : undefined
  let bytes = 0
  let stderr = ''
  child.stdout.on('data', (chunk) => {
    bytes += chunk.length
    hash?.update(chunk)
  })
  child.stderr.on('data', (chunk) => {
    stderr += chunk
  })
  const code = await new Promise((resolve) => child.on('close', resolve))
  const ms = Number(process.hrtime.bigint() - start) / 1e6
  if (code !== 0) throw new Error(`${command} ${args.join(' ')} exited ${code}: ${stderr.slice(-300)}`)
  const cpu = /cpu ([\d.]+) ([\d.]+)\s*$/.exec(stderr)
  return { ms, cpuMs: cpu ? (Number(cpu[1]) + Number(cpu[2])) * 1000 : null, bytes, digest: hash?.digest('hex') }
}

/** 1 GiB each way through pipes, prov and age interleaved run by run (median of `runs`). */
async function gibibyteRows({ node, kms, env, dir, identity, recipient, log }) {
  const size = 1024 * 1024 * 1024
  const plainFile = join(dir, 'plain-1g')
  const plainHash = createHash('sha256')
  const fd = openSync(plainFile, 'w')
  for (let written = 0; written < size; written += 64 * 1024 * 1024) {
    const block = randomBytes(64 * 1024 * 1024)
    plainHash.update(block)
    writeSync(fd, block)
  }
  closeSync(fd)
  const plainDigest = plainHash.digest('hex')
  const ageFile = join(dir, 'plain-1g.age')
  const made = spawnSync('age', ['-r', recipient, '-o', ageFile, plainFile])
  if (made.status !== 0) throw new Error(`age -r: ${made.stderr}`)
  // Both encryptions must be what age reads back; both decryptions the original bytes (checked once).
  const provFile = join(dir, 'prov-1g.age')
  const sealed = spawnSync('sh', ['-c', 'exec "$0" "$1" encrypt --format age --binary -r "$2" < "$3" > "$4"', node, kms, recipient, plainFile, provFile], {
    env: { ...process.env, ...env },
  })
  if (sealed.status !== 0) throw new Error(`prov-kms encrypt --format age: ${sealed.stderr}`)
  const checks = [
    await throughPipes('age', ['-d', '-i', identity], provFile, {}, { digest: true }),
    await throughPipes(node, [kms, 'decrypt'], ageFile, env, { digest: true }),
  ]
  if (checks.some((c) => c.digest !== plainDigest)) throw new Error('1 GiB round trip differs (prov-kms and age disagree)')
  rmSync(provFile)
  const runs = 5
  const samples = { provEnc: [], ageEnc: [], provDec: [], ageDec: [] }
  log(`1 GiB through pipes, each direction, ${runs} runs interleaved`)
  for (let i = 0; i < runs; i++) {
    samples.provEnc.push(await throughPipes(node, [kms, 'encrypt', '--format', 'age', '--binary', '-r', recipient], plainFile, env))
    samples.ageEnc.push(await throughPipes('age', ['-r', recipient], plainFile, {}))
    samples.provDec.push(await throughPipes(node, [kms, 'decrypt'], ageFile, env))
    samples.ageDec.push(await throughPipes('age', ['-d', '-i', identity], ageFile, {}))
  }
  for (const s of [...samples.provDec, ...samples.ageDec]) if (s.bytes !== size) throw new Error('a 1 GiB decryption lost data')
  const wall = (list) => median(list.map((s) => s.ms))
  const cpu = (list) => (list.every((s) => s.cpuMs !== null) ? median(list.map((s) => s.cpuMs)) : null)
  const row = (metric, prov, age) => {
    const ratio = wall(prov) / wall(age)
    const cpuNote = cpu(prov) === null ? '' : `; CPU ${Math.round(cpu(prov))} ms vs ${Math.round(cpu(age))} ms (${(cpu(prov) / cpu(age)).toFixed(2)}x)`
    log(`${metric}: ${wall(prov).toFixed(0)} ms vs age ${wall(age).toFixed(0)} ms = ${ratio.toFixed(2)}x${cpuNote}`)
    return { metric: `${metric}${cpuNote}`, prov: wall(prov), peer: wall(age), peerName: 'age', unit: 'ms', ratio, target: '<= 1.2', pass: ratio <= 1.2 }
  }
  return [
    row('1 GiB through pipes: encrypt --format age vs age -r', samples.provEnc, samples.ageEnc),
    row('1 GiB through pipes: decrypt of an age -r file vs age -d', samples.provDec, samples.ageDec),
  ]
}

export default async function p6({ root, log }) {
  const dir = mkdtempSync(join(tmpdir(), 'prov-bench-p6-'))
  const env = { XDG_CONFIG_HOME: join(dir, 'xdg'), PROV_SYSTEM_CONFIG_DIR: join(dir, 'etc'), PROV_WORKSPACE: '', PROV_KMS_IDENTITY: '' }
  delete process.env.PROV_WORKSPACE
  const node = process.execPath
  const kms = join(root, 'bin', 'prov-kms')
  try {
    run(node, [kms, 'keygen', '-q'], { env })
    const identity = join(dir, 'xdg', 'prov', 'kms', 'identity.txt')
    const recipient = /# public key: (\S+)/.exec(spawnSync('cat', [identity]).stdout.toString())[1]
    const data = randomBytes(10 * 1024 * 1024)
    const runs = 7
    const prov = []
    const age = []
    const provStart = []
    const ageStart = []
    log(`10 MB encrypt + decrypt, ${runs} runs each, interleaved`)
    for (let i = 0; i < runs + 1; i++) {
      const e = run(node, [kms, 'encrypt', '--binary'], { input: data, env })
      const d = run(node, [kms, 'decrypt'], { input: e.stdout, env })
      if (Buffer.compare(d.stdout, data) !== 0) throw new Error('prov-kms round trip differs')
      const ae = run('age', ['-r', recipient], { input: data })
      const ad = run('age', ['-d', '-i', identity], { input: ae.stdout })
      if (Buffer.compare(ad.stdout, data) !== 0) throw new Error('age round trip differs')
      const ps = run(node, [kms, '--version'])
      const as = run('age', ['--version'])
      if (i === 0) continue // warm-up
      prov.push(e.ms + d.ms)
      age.push(ae.ms + ad.ms)
      provStart.push(2 * ps.ms)
      ageStart.push(2 * as.ms)
    }
    // The same with plain age files (`--format age`, the native STREAM path), both directions.
    log('10 MB as plain age files (--format age --binary), 5 runs')
    const provAge = []
    const ageAgain = []
    for (let i = 0; i < 5; i++) {
      const e = run(node, [kms, 'encrypt', '--format', 'age', '--binary'], { input: data, env })
      const d = run('age', ['-d', '-i', identity], { input: e.stdout })
      const fromAge = run('age', ['-r', recipient], { input: data })
      const back = run(node, [kms, 'decrypt'], { input: fromAge.stdout, env })
      if (Buffer.compare(d.stdout, data) !== 0 || Buffer.compare(back.stdout, data) !== 0) throw new Error('age file round trip differs')
      const ae = run('age', ['-r', recipient], { input: data })
      const ad = run('age', ['-d', '-i', identity], { input: ae.stdout })
      provAge.push(e.ms + back.ms)
      ageAgain.push(ae.ms + ad.ms)
    }
    const provAgeMs = median(provAge)
    const ageAgainMs = median(ageAgain)
    const provMs = median(prov)
    const ageMs = median(age)
    const provWork = Math.max(1, provMs - median(provStart))
    const ageWork = Math.max(1, ageMs - median(ageStart))

    log('1,000 secrets: one NDJSON stream vs 1,000 age runs')
    const ndjson = `${Array.from({ length: 1000 }, (_, i) => JSON.stringify({ name: `svc-${i}`, password: randomBytes(12).toString('hex') })).join('\n')}\n`
    const streamRuns = []
    for (let i = 0; i < 4; i++) {
      const r = run(node, [kms, 'encrypt', '--field', 'password'], { input: ndjson, env })
      if (i === 0) {
        const lines = r.stdout.toString().trim().split('\n')
        if (lines.length !== 1000 || !lines.every((l) => JSON.parse(l).password.startsWith('prov:age:v1:'))) throw new Error('stream output is wrong')
        continue
      }
      streamRuns.push(r.ms)
    }
    const streamMs = median(streamRuns)
    const secrets = ndjson
      .trim()
      .split('\n')
      .map((l) => JSON.parse(l).password)
    const startAge = process.hrtime.bigint()
    for (const secret of secrets) run('age', ['-r', recipient], { input: secret })
    const ageLoopMs = Number(process.hrtime.bigint() - startAge) / 1e6
    const speedup = ageLoopMs / streamMs
    log('64 MiB encrypt | decrypt: peak memory per process')
    const size = 64 * 1024 * 1024
    const provPeak = await peakOfPipe([node, [kms, 'encrypt', '--binary']], [node, [kms, 'decrypt']], env, size)
    const agePeak = await peakOfPipe(['age', ['-r', recipient]], ['age', ['-d', '-i', identity]], {}, size)
    const gibibyte = await gibibyteRows({ node, kms, env, dir, identity, recipient, log })
    writeFileSync(join(dir, 'done'), '')
    return {
      id: 'P6',
      title: 'prov-kms vs age: 1 GiB each way; 10 MB encrypt+decrypt; 1,000 secrets in one NDJSON stream',
      rows: [
        ...gibibyte,
        {
          metric: '10 MB encrypt + decrypt (2 processes each)',
          prov: provMs,
          peer: ageMs,
          peerName: 'age',
          unit: 'ms',
          ratio: provMs / ageMs,
          target: '<= 2.5',
          pass: provMs / ageMs <= 2.5,
        },
        {
          metric: '10 MB encrypt + decrypt, process start subtracted',
          prov: provWork,
          peer: ageWork,
          peerName: 'age',
          unit: 'ms',
          ratio: provWork / ageWork,
          target: '(info)',
          pass: null,
        },
        {
          metric: '10 MB as age files: encrypt --format age + decrypt of an age -r file',
          prov: provAgeMs,
          peer: ageAgainMs,
          peerName: 'age',
          unit: 'ms',
          ratio: provAgeMs / ageAgainMs,
          target: '(info)',
          pass: null,
        },
        {
          metric: '1,000 secrets: one --field stream vs 1,000 age runs',
          prov: streamMs,
          peer: ageLoopMs,
          peerName: 'age x1000',
          unit: 'ms',
          ratio: speedup,
          target: '>= 40 (x faster)',
          pass: speedup >= 40,
        },
        {
          metric: '64 MiB encrypt | decrypt: peak RSS of the larger process',
          prov: provPeak,
          peer: agePeak,
          peerName: 'age',
          unit: 'MB',
          ratio: provPeak / agePeak,
          target: 'prov < 200 MB',
          pass: provPeak < 200,
        },
      ],
    }
  } finally {
    rmSync(dir, { recursive: true, force: true })
  }
}

/** Cost curves: encrypt (`--format age` vs `age -r`) and decrypt of an `age -r` file, 10 MB / 100 MB / 1 GiB through pipes. */
export async function curves({ root, log }) {
  const dir = mkdtempSync(join(tmpdir(), 'prov-bench-p6c-'))
  const env = { XDG_CONFIG_HOME: join(dir, 'xdg'), PROV_SYSTEM_CONFIG_DIR: join(dir, 'etc'), PROV_WORKSPACE: '', PROV_KMS_IDENTITY: '' }
  const node = process.execPath
  const kms = join(root, 'bin', 'prov-kms')
  try {
    run(node, [kms, 'keygen', '-q'], { env })
    const identity = join(dir, 'xdg', 'prov', 'kms', 'identity.txt')
    const recipient = /# public key: (\S+)/.exec(readFileSync(identity, 'utf8'))[1]
    const sizes = [10 * 1000 * 1000, 100 * 1000 * 1000, 1024 * 1024 * 1024]
    const series = { provEnc: [], ageEnc: [], provDec: [], ageDec: [] }
    for (const size of sizes) {
      const plain = join(dir, `plain-${size}`)
      const fd = openSync(plain, 'w')
      for (let written = 0; written < size; written += 64 * 1024 * 1024) writeSync(fd, randomBytes(Math.min(64 * 1024 * 1024, size - written)))
      closeSync(fd)
      const sealed = `${plain}.age`
      if (spawnSync('age', ['-r', recipient, '-o', sealed, plain]).status !== 0) throw new Error('age -r failed')
      const samples = { provEnc: [], ageEnc: [], provDec: [], ageDec: [] }
      for (let i = 0; i < 3; i++) {
        samples.provEnc.push((await throughPipes(node, [kms, 'encrypt', '--format', 'age', '--binary', '-r', recipient], plain, env)).ms)
        samples.ageEnc.push((await throughPipes('age', ['-r', recipient], plain, {})).ms)
        samples.provDec.push((await throughPipes(node, [kms, 'decrypt'], sealed, env)).ms)
        samples.ageDec.push((await throughPipes('age', ['-d', '-i', identity], sealed, {})).ms)
      }
      for (const key of Object.keys(series)) series[key].push([size, median(samples[key])])
      log(
        `${size} bytes: encrypt ${median(samples.provEnc).toFixed(0)} vs ${median(samples.ageEnc).toFixed(0)} ms, decrypt ${median(samples.provDec).toFixed(0)} vs ${median(samples.ageDec).toFixed(0)} ms`,
      )
      rmSync(plain)
      rmSync(sealed)
    }
    return [
      {
        id: 'P6',
        title: 'P6 age encrypt, pipes',
        x: 'bytes',
        y: 'ms (median of 3)',
        series: [
          { name: 'prov-kms --format age', points: series.provEnc },
          { name: 'age -r', points: series.ageEnc },
        ],
      },
      {
        id: 'P6',
        title: 'P6 age decrypt, pipes',
        x: 'bytes',
        y: 'ms (median of 3)',
        series: [
          { name: 'prov-kms decrypt', points: series.provDec },
          { name: 'age -d', points: series.ageDec },
        ],
      },
    ]
  } finally {
    rmSync(dir, { recursive: true, force: true })
  }
}
