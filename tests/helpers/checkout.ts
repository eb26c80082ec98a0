import { spawnSync } from 'node:child_process'
import { createHash } from 'node:crypto'
import { chmodSync, copyFileSync, cpSync, existsSync, mkdirSync, readFileSync, realpathSync, renameSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { binDir, repoRoot } from './cli'

/**
 * A Node.js binary the user `uid` can execute: this process's own when it can (e.g. /usr/bin/node),
 * else a copy of it under the temp folder, executable by everyone (a Node.js under /root, such as
 * the one the suite's second pass runs on, is out of reach of `nobody`). Needs root.
 */
export function nodeRunnableBy(uid: number): string {
  const runs = (node: string) => spawnSync(node, ['-e', '0'], { uid, gid: uid, cwd: '/' }).status === 0
  if (runs(process.execPath)) return process.execPath
  const dir = join(tmpdir(), `prov-node-${process.version}`)
  const node = join(dir, 'node')
  if (!existsSync(node)) {
    const staging = `${dir}.tmp-${process.pid}`
    rmSync(staging, { recursive: true, force: true })
    mkdirSync(staging, { mode: 0o755 })
    copyFileSync(realpathSync(process.execPath), join(staging, 'node'))
    chmodSync(join(staging, 'node'), 0o755)
    renameSync(staging, dir)
  }
  if (!runs(node)) throw new Error(`user ${uid} cannot run Node.js even from ${node}`)
  return node
}

const canRun = (bin: string, uid: number) =>
  spawnSync(nodeRunnableBy(uid), [join(bin, 'prov-server'), '--version'], { uid, gid: uid, cwd: '/', encoding: 'utf8' }).status === 0

/**
 * A bin/ folder whose binaries the user `uid` can run: this checkout's when that user can read it,
 * else a copy of what the binaries need (launchers, built bundles, templates, extensions,
 * node_modules) under the temp folder, readable by everyone and kept between runs (keyed by the
 * lockfile and the build). Needs root. Tests that run prov as another user (`nobody`) work from any
 * checkout location this way, e.g. a clone under /root.
 */
export function binDirRunnableBy(uid: number): string {
  if (canRun(binDir, uid)) return binDir
  const stamp = createHash('sha256')
    .update(readFileSync(join(repoRoot, 'package-lock.json')))
    .update(readFileSync(join(repoRoot, 'packages/core/dist/index.mjs')))
    .digest('hex')
    .slice(0, 16)
  const copy = join(tmpdir(), `prov-readable-${stamp}`)
  if (!existsSync(copy)) {
    const staging = `${copy}.tmp-${process.pid}`
    rmSync(staging, { recursive: true, force: true })
    mkdirSync(staging, { mode: 0o755 })
    for (const entry of ['bin', 'templates', 'extensions', 'node_modules', 'package.json'])
      cpSync(join(repoRoot, entry), join(staging, entry), { recursive: true, verbatimSymlinks: true })
    for (const pkg of ['core', 'prov', 'server', 'taskserv', 'kms', 'oci', 'orch']) {
      for (const part of ['package.json', 'dist', 'assets']) {
        const from = join(repoRoot, 'packages', pkg, part)
        if (existsSync(from)) cpSync(from, join(staging, 'packages', pkg, part), { recursive: true })
      }
    }
    spawnSync('chmod', ['-R', 'a+rX', staging])
    renameSync(staging, copy)
  }
  const bin = join(copy, 'bin')
  if (!canRun(bin, uid)) throw new Error(`user ${uid} cannot run prov even from ${copy}`)
  return bin
}
