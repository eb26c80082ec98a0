import { spawnSync } from 'node:child_process'
import { chmodSync, chownSync, existsSync, mkdirSync, statSync, writeFileSync } from 'node:fs'
import { join } from 'node:path'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { binDir, runCli } from '../../../tests/helpers/cli'
import { prerequisitesMet, root, tool } from '../../../tests/helpers/prerequisites'
import { devEnv, tempDir } from './helpers'

// Another local user (nobody) plants the store files; only root can play both users.
const canRun = prerequisitesMet('store ownership', [root, tool('setpriv')])

const NOBODY = 65534
const asNobody = (script: string) =>
  spawnSync('setpriv', [`--reuid=${NOBODY}`, `--regid=${NOBODY}`, '--clear-groups', 'sh', '-c', script], { encoding: 'utf8' })

let base: ReturnType<typeof tempDir>
let wf: string
beforeAll(() => {
  base = tempDir('prov-orch-owner-')
  chmodSync(base.dir, 0o755)
  wf = join(base.dir, 'wf.yaml')
  writeFileSync(wf, 'name: w\nsteps:\n  - id: a\n    run: "true"\n')
})
afterAll(() => base?.cleanup())

const orch = (args: string[]) => runCli('prov-orch', args, { env: devEnv, timeoutMs: 30_000 })

describe.runIf(canRun)('a SQLite store another user could write is refused', () => {
  it('files pre-created by another user in a 1777 folder: serve, worker, run, submit, list refuse (exit 4, one line naming the path)', async () => {
    const shared = join(base.dir, 'shared')
    mkdirSync(shared)
    chmodSync(shared, 0o1777)
    const planted = asNobody(`cd ${shared} && touch orch.db orch.db-wal orch.db-shm && chmod 666 orch.db*`)
    expect(planted.status, planted.stderr).toBe(0)
    const store = `sqlite:${join(shared, 'orch.db')}`
    for (const args of [
      ['serve', '--store', store],
      ['worker', '--store', store],
      ['run', wf, '--store', store],
      ['submit', wf, '--store', store],
      ['list', '--store', store],
    ]) {
      const r = await orch(args)
      expect(r.code, `${args[0]}: ${r.stderr}`).toBe(4)
      const lines = r.stderr.trim().split('\n')
      expect(lines, args[0]).toHaveLength(1)
      expect(lines[0]).toMatch(/^prov-orch: error: SQLite store folder .*shared is owned by uid 0 with mode 1777.*\(at .*shared\/orch\.db\); hint: /)
    }
    // Nothing was written into the planted database.
    expect(statSync(join(shared, 'orch.db')).size).toBe(0)
  })

  it("another user's list/status of a store they may not read: exit 4 with one clear line, never an empty list", async () => {
    const ws = join(base.dir, 'private')
    mkdirSync(ws, { mode: 0o700 })
    const store = `sqlite:${join(ws, 'orch.db')}`
    const submitted = await orch(['submit', wf, '--store', store])
    expect(submitted.code, submitted.stderr).toBe(0)
    for (const args of [['list'], ['list', '--status', 'queued'], ['status', 'wf-x'], ['logs', 'wf-x']]) {
      const r = spawnSync(
        'setpriv',
        [`--reuid=${NOBODY}`, `--regid=${NOBODY}`, '--clear-groups', process.execPath, join(binDir, 'prov-orch'), ...args, '--store', store],
        {
          encoding: 'utf8',
          env: { PATH: process.env.PATH, HOME: '/tmp', ...devEnv },
        },
      )
      expect(r.status, `${args.join(' ')}: ${r.stderr}`).toBe(4)
      expect(r.stdout).toBe('')
      const lines = r.stderr.trim().split('\n')
      expect(lines).toHaveLength(1)
      expect(lines[0]).toMatch(/^prov-orch: error: cannot read the orchestrator store .*private\/orch\.db \(EACCES: permission denied\).*; hint: /)
    }
  })

  it('a database, -wal, -shm or -journal file owned by another user in my own folder is refused', async () => {
    for (const suffix of ['', '-wal', '-shm', '-journal']) {
      const dir = join(base.dir, `own${suffix || '-db'}`)
      mkdirSync(dir, { mode: 0o700 })
      const file = join(dir, `orch.db${suffix}`)
      writeFileSync(file, '', { mode: 0o600 })
      chownSync(file, NOBODY, NOBODY)
      const r = await orch(['run', wf, '--store', `sqlite:${join(dir, 'orch.db')}`])
      expect(r.code, r.stderr).toBe(4)
      expect(r.stderr.trim().split('\n')).toHaveLength(1)
      expect(r.stderr).toContain(`file ${file} is owned by uid ${NOBODY}, not by you (uid 0)`)
    }
  })

  it('a folder of mine that group or others can write is refused; my own 0666 database is tightened to 0600 and used', async () => {
    const open = join(base.dir, 'groupw')
    mkdirSync(open)
    chmodSync(open, 0o770)
    const r = await orch(['run', wf, '--store', `sqlite:${join(open, 'orch.db')}`])
    expect(r.code, r.stderr).toBe(4)
    expect(r.stderr).toMatch(/SQLite store folder .*groupw is owned by uid 0 with mode 770/)
    expect(existsSync(join(open, 'orch.db'))).toBe(false)

    const mine = join(base.dir, 'mine')
    mkdirSync(mine, { mode: 0o700 })
    writeFileSync(join(mine, 'orch.db'), '', { mode: 0o666 })
    chmodSync(join(mine, 'orch.db'), 0o666)
    const ok = await orch(['run', wf, '--store', `sqlite:${join(mine, 'orch.db')}`])
    expect(ok.code, ok.stderr).toBe(0)
    expect((statSync(join(mine, 'orch.db')).mode & 0o777).toString(8)).toBe('600')
  })
})
