// Every shell program prov-taskserv runs on servers passes shellcheck: the remote logic shipped in
// assets/remote.sh, a whole generated program (prelude + logic), the shared helper, every script
// of the bundled catalog and clusters, and the scaffold of `prov-taskserv generate`.
import { spawnSync } from 'node:child_process'
import { copyFileSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { afterAll, describe, expect, it } from 'vitest'
import { repoRoot } from '../../../tests/helpers/cli'
import { buildRemoteProgram, remoteScriptPath, taskservBundle } from '../src/engine'

const scratch = mkdtempSync(join(tmpdir(), 'prov-shellcheck-'))
afterAll(() => rmSync(scratch, { recursive: true, force: true }))

/** shellcheck (Debian package, installed by scripts/setup.sh) on files or on stdin; all findings, any severity. */
function shellcheck(args: string[], input?: string): { code: number; output: string } {
  const r = spawnSync('shellcheck', ['--format=gcc', ...args], { cwd: repoRoot, input, encoding: 'utf8' })
  if (r.error) throw new Error(`shellcheck cannot run (${r.error.message}): install it with scripts/setup.sh (apt-get install shellcheck)`)
  return { code: r.status ?? 1, output: `${r.stdout}${r.stderr}`.trim() }
}

function shellFiles(dir: string): string[] {
  return readdirSync(dir)
    .sort()
    .flatMap((entry) => {
      const full = join(dir, entry)
      return statSync(full).isDirectory() ? shellFiles(full) : entry.endsWith('.sh') ? [full] : []
    })
}

describe('shellcheck', () => {
  it('the remote logic (assets/remote.sh) is clean', () => {
    const r = shellcheck([remoteScriptPath()])
    expect(r.output).toBe('')
    expect(r.code).toBe(0)
  })

  it('a whole generated program is clean', () => {
    const dir = join(scratch, 'unit')
    mkdirSync(join(dir, 'files'), { recursive: true })
    writeFileSync(join(dir, 'manifest.yaml'), 'name: unit\nkind: taskserv\nversion: 1.0.0\n')
    writeFileSync(join(dir, 'install.sh'), '#!/bin/sh\ntrue\n', { mode: 0o755 })
    writeFileSync(join(dir, 'files', 'data@1.0+x.txt'), 'data\n')
    const program = buildRemoteProgram(
      {
        PROV_TASKSERV: 'unit',
        PROV_SETTING_MESSAGE: 'x; touch /tmp/p $(id) `id`\nnext line',
        PROV_SETTING_QUOTES: 'it\'s "quoted" \\',
        PROV_SETTING_EMPTY: '',
      },
      taskservBundle(dir, join(repoRoot, 'extensions', 'taskservs', '_lib')),
    )
    // The helper it sources is checked on its own (next test); here it cannot be followed from stdin.
    const r = shellcheck(['--shell=sh', '--exclude=SC1091', '-'], program)
    expect(r.output).toBe('')
    expect(r.code).toBe(0)
  })

  it('every script under extensions/ is clean', () => {
    const files = shellFiles(join(repoRoot, 'extensions'))
    expect(files.length).toBeGreaterThan(40)
    expect(files.some((f) => f.endsWith('_lib/service.sh'))).toBe(true)
    const r = shellcheck(files)
    expect(r.output).toBe('')
    expect(r.code).toBe(0)
  })

  it('the taskserv scaffold, rendered as `generate` does, is clean', () => {
    const template = join(repoRoot, 'templates', 'extensions', 'taskserv')
    const catalog = join(scratch, 'taskservs')
    mkdirSync(join(catalog, '_lib'), { recursive: true })
    mkdirSync(join(catalog, 'sample'), { recursive: true })
    copyFileSync(join(repoRoot, 'extensions', 'taskservs', '.shellcheckrc'), join(catalog, '.shellcheckrc'))
    copyFileSync(join(repoRoot, 'extensions', 'taskservs', '_lib', 'service.sh'), join(catalog, '_lib', 'service.sh'))
    const rendered = readdirSync(template)
      .filter((f) => f.endsWith('.sh'))
      .map((f) => {
        const target = join(catalog, 'sample', f)
        writeFileSync(
          target,
          readFileSync(join(template, f), 'utf8').replace(/\{\{\s*template\.(\w+)\s*\}\}/g, (_m, key: string) => (key === 'name' ? 'sample' : key)),
        )
        return target
      })
    expect(rendered.length).toBeGreaterThanOrEqual(4)
    const r = shellcheck(rendered)
    expect(r.output).toBe('')
    expect(r.code).toBe(0)
  })
})
