// P5: push + pull of a 50 MB artifact to the local Debian docker-registry, prov-oci vs `skopeo copy`
// of the same OCI layout (layout -> registry -> fresh layout, interleaved run by run); then a pull
// of the same digest again, served from the content-addressed cache, vs `node -e 0`.

import { spawn, spawnSync } from 'node:child_process'
import { createHash, randomBytes } from 'node:crypto'
import { existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs'
import { createServer } from 'node:net'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { gzipSync } from 'node:zlib'
import { median, timeCommand } from './lib.mjs'

const freePort = () =>
  new Promise((resolve) => {
    const s = createServer()
    s.listen(0, '127.0.0.1', () => {
      const { port } = s.address()
      s.close(() => resolve(port))
    })
  })

/** A fresh registry per run: skopeo's blob-info cache cannot turn uploads into mounts, nothing is deduplicated. */
async function startRegistry(dir) {
  const port = await freePort()
  mkdirSync(join(dir, 'data'), { recursive: true })
  writeFileSync(
    join(dir, 'config.yml'),
    `version: 0.1\nlog:\n  level: error\n  accesslog:\n    disabled: true\nstorage:\n  filesystem:\n    rootdirectory: ${join(dir, 'data')}\nhttp:\n  addr: 127.0.0.1:${port}\n`,
  )
  const child = spawn('/usr/bin/docker-registry', ['serve', join(dir, 'config.yml')], { stdio: 'ignore' })
  for (let i = 0; i < 100; i++) {
    try {
      if ((await fetch(`http://127.0.0.1:${port}/v2/`)).ok) break
    } catch {}
    await new Promise((r) => setTimeout(r, 100))
  }
  return {
    host: `127.0.0.1:${port}`,
    stop: () =>
      new Promise((resolve) => {
        if (child.exitCode !== null || child.signalCode !== null) return resolve()
        child.once('exit', resolve)
        child.kill('SIGTERM')
      }),
  }
}

/** An OCI layout (written by hand) holding one artifact whose only layer is `layer`, tagged v1. */
function layoutOf(dir, layer) {
  const blob = (bytes) => {
    const hex = createHash('sha256').update(bytes).digest('hex')
    writeFileSync(join(dir, 'blobs', 'sha256', hex), bytes)
    return { digest: `sha256:${hex}`, size: bytes.length }
  }
  mkdirSync(join(dir, 'blobs', 'sha256'), { recursive: true })
  writeFileSync(join(dir, 'oci-layout'), '{"imageLayoutVersion":"1.0.0"}')
  const manifest = Buffer.from(
    JSON.stringify({
      schemaVersion: 2,
      mediaType: 'application/vnd.oci.image.manifest.v1+json',
      artifactType: 'application/vnd.example.bomb.v1+json',
      config: { mediaType: 'application/vnd.oci.empty.v1+json', ...blob(Buffer.from('{}')) },
      layers: [{ mediaType: 'application/vnd.oci.image.layer.v1.tar+gzip', ...blob(layer) }],
    }),
  )
  const entry = { mediaType: 'application/vnd.oci.image.manifest.v1+json', ...blob(manifest), annotations: { 'org.opencontainers.image.ref.name': 'v1' } }
  writeFileSync(join(dir, 'index.json'), JSON.stringify({ schemaVersion: 2, manifests: [entry] }))
}

/**
 * Peak RSS (MB) of one run of `args` under node, read by the process itself at exit
 * (process.resourceUsage().maxRSS through a preloaded module): no sampling that could miss a peak.
 */
function peakRss(home, args, env) {
  const preload = join(home, 'peak-rss.mjs')
  const out = join(home, 'peak-rss.txt')
  writeFileSync(
    preload,
    `import { writeFileSync } from 'node:fs'\nprocess.on('exit', () => writeFileSync(${JSON.stringify(out)}, String(process.resourceUsage().maxRSS)))\n`,
  )
  rmSync(out, { force: true })
  const result = spawnSync(process.execPath, args, { env: { ...process.env, ...env, NODE_OPTIONS: `--import=${preload}` }, cwd: home, encoding: 'utf8' })
  return { ...result, mb: Number(readFileSync(out, 'utf8')) / 1024 }
}

export default async function p5({ root, log }) {
  if (!existsSync('/usr/bin/docker-registry') || spawnSync('skopeo', ['--version']).status !== 0) throw new Error('docker-registry or skopeo missing')
  if (!existsSync(join(root, 'packages', 'oci', 'dist', 'cli.mjs'))) throw new Error('prov-oci not built')
  const home = mkdtempSync(join(tmpdir(), 'prov-bench-p5-'))
  const env = { XDG_CONFIG_HOME: join(home, 'xdg'), XDG_CACHE_HOME: join(home, 'cache'), PROV_WORKSPACE: undefined, HOME: home }
  const provOci = (args, extra = {}) => ({
    command: process.execPath,
    args: [join(root, 'bin', 'prov-oci'), ...args, '-q'],
    env: { ...env, ...extra },
    cwd: home,
  })
  const rows = []
  const registries = []
  try {
    // A 50 MB extension (incompressible payload), packaged once into an OCI layout both tools read.
    const ext = join(home, 'big')
    mkdirSync(ext)
    writeFileSync(join(ext, 'manifest.yaml'), 'name: big\nkind: taskserv\nversion: 1.0.0\n')
    writeFileSync(join(ext, 'payload.bin'), randomBytes(50 * 1024 * 1024))
    const layout = join(home, 'layout')
    const packaged = spawnSync(process.execPath, [join(root, 'bin', 'prov-oci'), 'package', ext, '--to', `layout:${layout}:v1`, '-q'], {
      env: { ...process.env, ...env },
    })
    if (packaged.status !== 0) throw new Error(`package failed: ${packaged.stderr}`)
    const digest = JSON.parse(String(packaged.stdout)).digest
    const runs = 3
    const provTimes = []
    const skopeoTimes = []
    let lastHost
    for (let i = 0; i < runs; i++) {
      for (const tool of ['prov', 'skopeo']) {
        const registry = await startRegistry(join(home, `reg-${tool}-${i}`))
        registries.push(registry)
        const out = join(home, `out-${tool}-${i}`)
        const ref = `${registry.host}/bench/big:v1`
        const push =
          tool === 'prov'
            ? provOci(['copy', `layout:${layout}:v1`, ref])
            : { command: 'skopeo', args: ['copy', '-q', '--dest-tls-verify=false', `oci:${layout}:v1`, `docker://${ref}`], env, cwd: home }
        const pull =
          tool === 'prov'
            ? provOci(['copy', ref, `layout:${out}:v1`])
            : { command: 'skopeo', args: ['copy', '-q', '--src-tls-verify=false', `docker://${ref}`, `oci:${out}:v1`], env, cwd: home }
        const ms = timeCommand(push.command, push.args, { ...push, runs: 1, warmup: 0 }) + timeCommand(pull.command, pull.args, { ...pull, runs: 1, warmup: 0 })
        ;(tool === 'prov' ? provTimes : skopeoTimes).push(ms)
        if (tool === 'prov') lastHost = registry.host
        else await registry.stop()
        rmSync(out, { recursive: true, force: true })
      }
    }
    const prov = median(provTimes)
    const skopeo = median(skopeoTimes)
    log(`push + pull 50 MB: prov-oci ${prov.toFixed(0)} ms vs skopeo copy ${skopeo.toFixed(0)} ms = ${(prov / skopeo).toFixed(2)}x`)
    rows.push({
      metric: 'push + pull 50 MB (layout -> registry -> layout)',
      prov,
      peer: skopeo,
      peerName: 'skopeo copy',
      unit: ' ms',
      ratio: prov / skopeo,
      target: '<= 1.0x',
      pass: prov / skopeo <= 1.0,
    })

    // First pull into the cache (network), then the same digest again: no network, cache only.
    const ref = `${lastHost}/bench/big@${digest}`
    const first = timeCommand(provOci(['pull', ref]).command, provOci(['pull', ref]).args, { env, cwd: home, runs: 1, warmup: 0 })
    log(`first pull into the cache: ${first.toFixed(0)} ms`)
    const cached = []
    const node = []
    for (let i = 0; i < 10; i++) {
      cached.push(timeCommand(process.execPath, [join(root, 'bin', 'prov-oci'), 'pull', ref, '-q'], { env, cwd: home, runs: 1, warmup: i === 0 ? 1 : 0 }))
      node.push(timeCommand(process.execPath, ['-e', '0'], { runs: 1, warmup: 0 }))
    }
    const over = median(cached) - median(node)
    log(`cached pull: ${median(cached).toFixed(1)} ms, node -e 0 ${median(node).toFixed(1)} ms, over process start ${over.toFixed(1)} ms`)
    rows.push({
      metric: 'cached pull of the 50 MB digest, over process start',
      prov: over,
      peer: median(node),
      peerName: 'node -e 0',
      unit: ' ms',
      ratio: median(cached) / median(node),
      target: '<= 50 ms',
      pass: over <= 50,
    })

    // A decompression bomb: 2 GiB of zeros, gzip (about 2 MB), refused at oci.max_unpacked_size
    // (1 GiB by default) while it streams. Its peak RSS next to that of an idle node process.
    const bombLayout = join(home, 'bomb')
    const member = gzipSync(Buffer.alloc(64 * 1024 * 1024), { level: 9 })
    layoutOf(bombLayout, Buffer.concat(Array.from({ length: 32 }, () => member)))
    const bombDest = join(home, 'bomb-out')
    const bomb = peakRss(home, [join(root, 'bin', 'prov-oci'), 'pull', `layout:${bombLayout}:v1`, '--to', join(bombDest, 'x')], env)
    if (bomb.status !== 1 || !/exceeds the unpacked size limit/.test(bomb.stderr))
      throw new Error(`the bomb was not refused: exit ${bomb.status} ${bomb.stderr}`)
    if (existsSync(bombDest) && readdirSync(bombDest).length) throw new Error('the refused bomb left files behind')
    const idle = peakRss(home, ['-e', '0'], env)
    log(`2 GiB-of-zeros gzip layer refused: peak RSS ${bomb.mb.toFixed(0)} MB (node -e 0: ${idle.mb.toFixed(0)} MB)`)
    rows.push({
      metric: 'decompression bomb (2 GiB of zeros as gzip) refused: peak RSS',
      prov: bomb.mb,
      peer: idle.mb,
      peerName: 'node -e 0',
      unit: ' MB',
      ratio: bomb.mb / idle.mb,
      target: '< 300 MB',
      pass: bomb.mb < 300,
    })
  } finally {
    for (const r of registries) await r.stop()
    rmSync(home, { recursive: true, force: true })
  }
  return { id: 'P5', title: 'OCI push + pull vs skopeo; cached pull; decompression bomb memory', rows }
}
