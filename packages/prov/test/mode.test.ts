import { generateKeyPairSync } from 'node:crypto'
import { existsSync, readFileSync, rmSync, writeFileSync } from 'node:fs'
import { join } from 'node:path'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { runCli, runOnTerminal, tempWorkspace } from '../../../tests/helpers/cli'

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
        expect.stringMatching(/^prov: error: cannot edit .*prov\.config\.toml safely .*hint: add mode = "ci" to it yourself/),
      ])
      expect(readFileSync(join(other.path, 'prov.config.toml'), 'utf8')).toBe(toml)
    } finally {
      other.cleanup()
    }
  })
})

describe('mode ci: nobody watches or answers', () => {
  it('a question becomes exit 2 naming --yes, even on a terminal; the same command asks in solo', async () => {
    const ci = await tempWorkspace('ci-mode')
    const other = await tempWorkspace('other')
    try {
      // One registry holds both: the ci-mode workspace is the active one, 'other' is the one to remove.
      const env = { ...ci.env, XDG_CONFIG_HOME: other.env.XDG_CONFIG_HOME }
      expect((await runCli('prov', ['workspace', 'use', ci.path, '-q'], { env })).code).toBe(0)
      const registered = async () => (await runCli('prov', ['workspace', 'list', '--out', 'json'], { env })).json().map((w: { name: string }) => w.name)
      expect(await registered()).toEqual(expect.arrayContaining(['other', 'ci-mode']))
      // solo: on a terminal the question is asked (answered no: cancelled, exit 1).
      const asked = await runOnTerminal('prov', ['workspace', 'remove', 'other'], { env, cwd: ci.path, input: 'n\n' })
      expect(asked.stdout).toMatch(/Proceed\? \[y\/N\]/)
      expect(asked.code).toBe(1)
      expect((await runCli('prov', ['mode', 'set', 'ci', '-q'], { env, cwd: ci.path })).code).toBe(0)
      const refused = await runOnTerminal('prov', ['workspace', 'remove', 'other'], {
        env: { ...env, NO_COLOR: undefined, FORCE_COLOR: undefined },
        cwd: ci.path,
      })
      expect(refused.code).toBe(2)
      expect(refused.stdout).not.toMatch(/\[y\/N\]/)
      // JSON logs on stderr, the error included, and no escape codes on the terminal.
      expect(refused.stdout).not.toContain('\x1b[')
      const lines = refused.stdout.trim().split('\n')
      expect(lines).toHaveLength(1)
      expect(JSON.parse(lines[0])).toMatchObject({
        level: 'error',
        message: expect.stringMatching(/mode ci never asks: refusing to run 'prov workspace remove' without --yes/),
        location: 'mode',
        hint: expect.stringMatching(/--yes/),
      })
      expect(await registered()).toEqual(expect.arrayContaining(['other']))
      // --log-format text still wins over the mode's JSON logs.
      const text = await runCli('prov', ['workspace', 'remove', 'other', '--log-format', 'text'], { env, cwd: ci.path })
      expect(text.code).toBe(2)
      expect(text.stderr).toMatch(/^prov: error: mode ci never asks/)
      const removed = await runCli('prov', ['workspace', 'remove', 'other', '--yes'], { env, cwd: ci.path })
      expect(removed.code, removed.stderr).toBe(0)
      for (const line of removed.stderr.trim().split('\n').filter(Boolean)) expect(() => JSON.parse(line), line).not.toThrow()
    } finally {
      other.cleanup()
      ci.cleanup()
    }
  })
})

describe('mode enterprise: rules kept inside prov-kms and prov-oci', () => {
  it('prov-kms refuses a local age backend; prov-oci refuses to pull when signatures were turned off; both exit 3 naming the mode', async () => {
    const ent = await tempWorkspace('enterprise')
    try {
      const config = join(ent.path, 'prov.config.yaml')
      writeFileSync(config, `${readFileSync(config, 'utf8')}\nmode: enterprise\noci:\n  require_signatures: false\n`)
      const kms = await runCli('prov-kms', ['secret', 'list'], { env: ent.env, cwd: ent.path })
      expect(kms.code).toBe(3)
      expect(kms.stderr.trim().split('\n')).toEqual([
        expect.stringMatching(/^prov-kms: error: mode enterprise requires a Vault or AWS KMS backend \(at mode\); hint: set kms\.backend: vault/),
      ])
      for (const check of [[], ['--check']]) {
        const pull = await runCli('prov-oci', ['pull', `layout:${join(ent.root, 'nowhere')}:x`, ...check], { env: ent.env, cwd: ent.path })
        expect(pull.code, check.join(' ')).toBe(3)
        expect(pull.stderr.trim().split('\n')).toEqual([
          expect.stringMatching(/^prov-oci: error: mode enterprise requires signed OCI artifacts \(at mode\); hint: set oci\.require_signatures: true/),
        ])
      }
      expect(existsSync(join(ent.path, '.prov', 'kms'))).toBe(false)
      // Saying kms.backend: vault does not let a local age identity in through another door.
      writeFileSync(config, `${readFileSync(config, 'utf8')}kms:\n  backend: vault\n`)
      for (const args of [['keygen'], ['secret', 'set', 'db/pw', 'x'], ['encrypt', '--backend', 'age']]) {
        const age = await runCli('prov-kms', args, { env: ent.env, cwd: ent.path, input: 'plain' })
        expect(age.code, args.join(' ')).toBe(3)
        expect(age.stderr.trim().split('\n')).toEqual([
          expect.stringMatching(/^prov-kms: error: mode enterprise requires keys in Vault or AWS KMS, not a local age identity \(at mode\)/),
        ])
      }
      expect(existsSync(join(ent.path, '.prov', 'kms'))).toBe(false)
      // Signatures are checked with the configured keys only: a key on the command line is refused.
      writeFileSync(config, readFileSync(config, 'utf8').replace('  require_signatures: false\n', '  require_signatures: true\n'))
      writeFileSync(join(ent.root, 'mine.pem'), generateKeyPairSync('ec', { namedCurve: 'prime256v1' }).publicKey.export({ type: 'spki', format: 'pem' }))
      const ownKey = await runCli('prov-oci', ['pull', `layout:${join(ent.root, 'nowhere')}:x`, '--key', join(ent.root, 'mine.pem')], {
        env: ent.env,
        cwd: ent.path,
      })
      expect(ownKey.code).toBe(3)
      expect(ownKey.stderr).toMatch(/mode enterprise verifies signatures with oci\.trusted_keys only, not a key given with --key \(at mode\)/)
      // mode ci: sops edit would wait for a person at an editor.
      const edit = await runCli('prov-kms', ['sops', 'edit', 'x.yaml'], { env: { ...ent.env, PROV_MODE: 'ci' }, cwd: ent.path })
      expect(edit.code).toBe(2)
      expect(JSON.parse(edit.stderr.trim())).toMatchObject({ message: expect.stringMatching(/mode ci never asks: sops edit opens an editor/) })
    } finally {
      ent.cleanup()
    }
  })
})
