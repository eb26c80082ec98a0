import { existsSync, readFileSync, rmSync, writeFileSync } from 'node:fs'
import { join } from 'node:path'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { runCli, tempWorkspace } from '../../../tests/helpers/cli'

type Ws = Awaited<ReturnType<typeof tempWorkspace>>
let ws: Ws
beforeAll(async () => {
  ws = await tempWorkspace('modes')
})
afterAll(() => ws?.cleanup())

const run = (bin: string, args: string[]) => runCli(bin, args, { env: ws.env, cwd: ws.path })
const configFile = () => join(ws.path, 'prov.config.yaml')

describe('prov mode', () => {
  it('show: solo by default, chosen nowhere, no rules', async () => {
    const r = await run('prov', ['mode', 'show', '--out', 'json'])
    expect(r.code, r.stderr).toBe(0)
    expect(r.json()).toMatchObject({ schema: 'prov.mode/v1', mode: 'solo', chosen_in: 'default', rules: [] })
  })

  it('set --check changes nothing; a bad mode is exit 2 with one line; set writes mode: and keeps the comments', async () => {
    const before = readFileSync(configFile(), 'utf8')
    expect(before).toMatch(/^#/m)
    let r = await run('prov', ['mode', 'set', 'multi-user', '--check', '--out', 'json'])
    expect(r.code, r.stderr).toBe(0)
    expect(r.json()).toMatchObject({ mode: 'multi-user', changed: false })
    expect(readFileSync(configFile(), 'utf8')).toBe(before)
    r = await run('prov', ['mode', 'set', 'yolo'])
    expect(r.code).toBe(2)
    expect(r.stderr.trim().split('\n')).toEqual([expect.stringMatching(/^prov: error: unknown mode 'yolo' .*hint: one of solo, multi-user, ci, enterprise/)])
    expect(readFileSync(configFile(), 'utf8')).toBe(before)

    r = await run('prov', ['mode', 'set', 'multi-user', '--out', 'json'])
    expect(r.code, r.stderr).toBe(0)
    expect(r.json()).toMatchObject({
      mode: 'multi-user',
      changed: true,
      rules: expect.arrayContaining([expect.objectContaining({ key: 'orchestrator.store', ok: false })]),
    })
    expect(r.stderr).toMatch(/mode multi-user requires a PostgreSQL store/)
    const after = readFileSync(configFile(), 'utf8')
    expect(after).toContain('mode: multi-user')
    expect(after.startsWith(before.split('\n')[0])).toBe(true)
  })

  it('the mode layer shows in config show --explain; prov doctor reports the mode and the rule it breaks', async () => {
    const explain = await run('prov', ['config', 'show', '--explain', 'orchestrator.auth', '--out', 'json'])
    expect(explain.json()).toContainEqual(expect.objectContaining({ key: 'orchestrator.auth.mode', value: 'jwt', layer: 'mode', source: 'mode multi-user' }))
    const doctor = await run('prov', ['doctor', '--out', 'json'])
    const checks = doctor.json() as { check: string; ok: boolean; detail: string; fix?: string }[]
    expect(checks.find((c) => c.check === 'mode')).toMatchObject({
      ok: true,
      detail: expect.stringMatching(/^multi-user \(set in .*prov\.config\.yaml:\d+\)$/),
    })
    expect(checks.find((c) => c.check === 'mode multi-user: a PostgreSQL store')).toMatchObject({ ok: false, fix: expect.stringMatching(/postgres:/) })
  })

  it('prov-orch serve keeps the rules of multi-user: exit 3 naming the mode, nothing created', async () => {
    let r = await run('prov-orch', ['serve', '--port', '0'])
    expect(r.code).toBe(3)
    expect(r.stderr.trim().split('\n')).toEqual([
      expect.stringMatching(/^prov-orch: error: mode multi-user requires a PostgreSQL store \(at mode\); hint: .*prov mode set solo/),
    ])
    r = await run('prov-orch', ['serve', '--port', '0', '--auth', 'token'])
    expect(r.code).toBe(3)
    expect(r.stderr).toMatch(/^prov-orch: error: mode multi-user requires --auth jwt \(at mode\)/)
    expect(existsSync(join(ws.path, '.prov', 'orch.db'))).toBe(false)
  })

  it('a TOML workspace configuration is not rewritten: exit 3 with a hint, unchanged', async () => {
    const other = await tempWorkspace('toml')
    try {
      rmSync(join(other.path, 'prov.config.yaml'))
      const toml = '# ours\n[workspace]\nname = "toml"\n'
      writeFileSync(join(other.path, 'prov.config.toml'), toml)
      const r = await runCli('prov', ['mode', 'set', 'ci'], { env: other.env, cwd: other.path })
      expect(r.code).toBe(3)
      expect(r.stderr.trim().split('\n')).toEqual([
        expect.stringMatching(/^prov: error: cannot edit .*prov\.config\.toml safely .*hint: add mode: ci to it yourself/),
      ])
      expect(readFileSync(join(other.path, 'prov.config.toml'), 'utf8')).toBe(toml)
    } finally {
      other.cleanup()
    }
  })
})
