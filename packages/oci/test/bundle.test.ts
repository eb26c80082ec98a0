import { execFileSync } from 'node:child_process'
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { repoRoot, runCli, tempEnv, tempWorkspace } from '../../../tests/helpers/cli'
import { type RunningRegistry, removeRegistry, startRegistry } from './registry-fixture'

type Ws = Awaited<ReturnType<typeof tempWorkspace>>
let ws: Ws
let registry: RunningRegistry
const oci = (args: string[], cwd = ws.path, env: Record<string, string | undefined> = ws.env) =>
  runCli('prov-oci', args, { env: { ...env, XDG_CACHE_HOME: join(ws.root, 'cache') }, cwd })

beforeAll(async () => {
  registry = await startRegistry()
  ws = await tempWorkspace('spore')
  mkdirSync(join(ws.path, 'infra', 'web'), { recursive: true })
  writeFileSync(join(ws.path, 'infra', 'web', 'servers.yaml'), 'servers:\n  - name: web-1\n    provider: local\n')
  writeFileSync(join(ws.path, 'infra', 'web', 'deploy_key'), '-----BEGIN OPENSSH PRIVATE KEY-----\nxxx\n-----END OPENSSH PRIVATE KEY-----\n')
  const ext = join(ws.path, 'extensions', 'taskservs', 'motd')
  mkdirSync(ext, { recursive: true })
  writeFileSync(join(ext, 'manifest.yaml'), 'name: motd\nkind: taskserv\nversion: 0.1.0\n')
  writeFileSync(join(ext, 'install.sh'), '#!/bin/sh\necho hi > /etc/motd\n')
  writeFileSync(
    join(ws.path, 'secrets', 'db.yaml'),
    'password: ENC[AES256_GCM,data:abc,iv:def,tag:ghi,type:str]\nsops:\n    age:\n        - recipient: age1xyz\n    mac: ENC[AES256_GCM,data:x]\n    version: 3.9.0\n',
  )
  writeFileSync(join(ws.path, 'secrets', 'token.age'), '-----BEGIN AGE ENCRYPTED FILE-----\nYWdl\n-----END AGE ENCRYPTED FILE-----\n')
  writeFileSync(join(ws.path, 'secrets', 'plain.env'), 'TOKEN=hunter2\n')
  mkdirSync(join(ws.path, '.prov', 'ssh'), { recursive: true })
  writeFileSync(join(ws.path, '.prov', 'ssh', 'id_ed25519'), 'PRIVATE')
  writeFileSync(join(ws.path, 'age-keys.txt'), 'AGE-SECRET-KEY-1QQQQQQQQQQQQQQQQQQQQQQQQQQQQQQQQQQQQQQQQQQQQQQQQQQQQQQQQQQ\n')
})

afterAll(async () => {
  await removeRegistry(registry)
  ws?.cleanup()
})

describe('bundle', () => {
  it('packs config, infra, workspace extensions and encrypted secrets into one .tar (oci-archive)', async () => {
    const file = join(ws.root, 'spore.tar')
    const result = await oci(['bundle', '--to', file])
    expect(result.code, result.stderr).toBe(0)
    const out = result.json()
    expect(out.secrets).toEqual(['secrets/db.yaml', 'secrets/token.age'])
    expect(out.extensions).toEqual([{ kind: 'taskserv', name: 'motd' }])
    expect(out.skipped.map((s: { path: string }) => s.path).sort()).toEqual(['age-keys.txt', 'infra/web/deploy_key', 'secrets/plain.env'])
    // skopeo reads it as an oci-archive
    const raw = JSON.parse(execFileSync('skopeo', ['inspect', '--raw', `oci-archive:${file}:bundle`], { encoding: 'utf8' }))
    expect(raw.artifactType).toBe('application/vnd.prov.bundle.v1+json')
    // what is inside the layer
    const dir = mkdtempSync(join(tmpdir(), 'prov-bundle-'))
    try {
      execFileSync('tar', ['xf', file, '-C', dir])
      const layer = join(dir, 'blobs', 'sha256', raw.layers[0].digest.slice(7))
      const listing = execFileSync('tar', ['tzf', layer], { encoding: 'utf8' }).split('\n')
      expect(listing).toEqual(
        expect.arrayContaining([
          'bundle.json',
          'bootstrap.sh',
          'workspace/prov.config.yaml',
          'workspace/infra/web/servers.yaml',
          'workspace/extensions/taskservs/motd/install.sh',
          'workspace/secrets/db.yaml',
        ]),
      )
      expect(listing.some((l) => l.includes('.prov') || l.includes('plain.env') || l.includes('deploy_key') || l.includes('age-keys'))).toBe(false)
      const all = execFileSync('tar', ['xzOf', layer], { encoding: 'utf8' })
      expect(all).not.toContain('hunter2')
      expect(all).not.toContain('AGE-SECRET-KEY')
    } finally {
      rmSync(dir, { recursive: true, force: true })
    }
  })

  it('is reproducible: the same workspace gives the same digest', async () => {
    const a = (await oci(['bundle', '--to', join(ws.root, 'a.tar')])).json().digest
    const b = (await oci(['bundle', '--to', join(ws.root, 'b.tar')])).json().digest
    expect(a).toBe(b)
    expect(readFileSync(join(ws.root, 'a.tar')).equals(readFileSync(join(ws.root, 'b.tar')))).toBe(true)
  })

  it('goes to the embedded layout by default and to a registry; pulled and bootstrapped, prov runs from it', async () => {
    const local = await oci(['bundle', '-q'])
    expect(local.json().destination).toBe(`layout:${join(ws.path, '.prov', 'oci')}:bundle`)
    const ref = `${registry.host}/prov/bundles/spore:1`
    const pushed = await oci(['bundle', '--to', ref])
    expect(pushed.code, pushed.stderr).toBe(0)
    const target = join(ws.root, 'unpacked')
    const pulled = await oci(['pull', ref, '--to', target])
    expect(pulled.code, pulled.stderr).toBe(0)
    expect(pulled.json().kind).toBe('bundle')
    const manifest = JSON.parse(readFileSync(join(target, 'bundle.json'), 'utf8'))
    expect(manifest).toMatchObject({ schema: 'prov.bundle/v1', workspace: 'spore', bootstrap: 'bootstrap.sh' })
    const boot = execFileSync('sh', [join(target, 'bootstrap.sh')], {
      encoding: 'utf8',
      env: { ...process.env, ...ws.env, PROV_WORKSPACE: undefined, PROV_BIN: join(repoRoot, 'bin', 'prov') } as NodeJS.ProcessEnv,
    })
    expect(JSON.parse(boot)).toMatchObject({ ok: true, workspace: join(target, 'workspace') })
    const show = execFileSync(join(target, 'bin', 'prov'), ['config', 'show', '-o', 'json'], {
      encoding: 'utf8',
      env: { ...process.env, ...ws.env, PROV_WORKSPACE: undefined } as NodeJS.ProcessEnv,
    })
    expect(JSON.parse(show).workspace.name).toBe('spore')
  })

  it('outside a workspace it is an error naming the problem', async () => {
    const env = tempEnv()
    try {
      const result = await oci(['bundle'], env.root, env.env)
      expect(result.code).toBe(2)
      expect(result.stderr.trim().split('\n')).toHaveLength(1)
      expect(result.stderr).toMatch(/no workspace: run inside one, pass --workspace, or activate one/)
    } finally {
      env.cleanup()
    }
  })
})
