import { spawnSync } from 'node:child_process'
import { createHash } from 'node:crypto'
import { cpSync, existsSync, mkdirSync, readFileSync, renameSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { binDir, repoRoot } from './cli'

const canRun = (bin: string, uid: number) =>
  spawnSync(process.execPath, [join(bin, 'prov-server'), '--version'], { uid, gid: uid, cwd: '/', encoding: 'utf8' }).status === 0

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
