import { spawnSync } from 'node:child_process'
import { createHash, generateKeyPairSync } from 'node:crypto'
import { existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { newServerRecord } from '@prov/core'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { parse as parseYaml } from 'yaml'
import { repoRoot, runCli, tempWorkspace } from '../../../tests/helpers/cli'
import { countingListener, scriptedRegistry } from './servers'

type Ws = Awaited<ReturnType<typeof tempWorkspace>>
let ws: Ws
let listener: Awaited<ReturnType<typeof countingListener>>
let key: string
const redisDir = join(repoRoot, 'extensions', 'taskservs', 'redis')
const oci = (args: string[], input?: string) =>
  runCli('prov-oci', args, {
    env: { ...ws.env, XDG_CACHE_HOME: join(ws.root, 'cache'), PROV_OCI_CREDENTIALS: join(ws.root, 'credentials.json') },
    cwd: ws.path,
    input,
  })

/**
 * Every file under `dir` with its content hash (and every folder): what --check must leave alone.
 * Core's cache of validated configurations is no state of prov-oci's and is left out.
 */
function snapshot(dir: string): Record<string, string> {
  const out: Record<string, string> = {}
  const walk = (path: string) => {
    for (const name of readdirSync(path)) {
      const full = join(path, name)
      if (full.includes(join('prov', 'config-valid'))) continue
      const stat = statSync(full)
      if (stat.isDirectory()) {
        out[full] = 'dir'
        walk(full)
      } else out[full] = createHash('sha256').update(readFileSync(full)).digest('hex')
    }
  }
  walk(dir)
  return out
}

function server(name: string, port: number) {
  return newServerRecord({ name, provider: 'ssh', status: 'running', ip_address: '127.0.0.1', ssh: { user: 'root', port }, created_at: '2026-01-01T00:00:00Z' })
}

beforeAll(async () => {
  ws = await tempWorkspace('contract')
  listener = await countingListener()
  key = join(ws.root, 'sign.pem')
  writeFileSync(key, generateKeyPairSync('ed25519').privateKey.export({ type: 'pkcs8', format: 'pem' }), { mode: 0o600 })
  mkdirSync(join(ws.path, '.prov'), { recursive: true })
  writeFileSync(
    join(ws.path, '.prov', 'servers.json'),
    JSON.stringify({ version: 1, servers: { 'far-01': server('far-01', listener.port) }, provider_data: {} }),
  )
  expect((await oci(['package', redisDir, '--to', `layout:${join(ws.path, 'layout')}:v1`, '-q'])).code).toBe(0)
  expect((await oci(['bundle', '-q'])).code).toBe(0)
  writeFileSync(join(ws.root, 'credentials.json'), JSON.stringify({ schema: 'prov.oci.credentials/v1', auths: { [listener.host]: { auth: 'dTpw' } } }), {
    mode: 0o600,
  })
})
afterAll(async () => {
  await listener?.close()
  ws?.cleanup()
})

describe('--check changes nothing and opens no connection', () => {
  it('every mutating command previews (exit 0, planned) without a single connection or a changed file', async () => {
    const reg = `${listener.host}/prov/taskservs/redis`
    const layout = `layout:${join(ws.path, 'layout')}:v1`
    const before = snapshot(ws.root)
    const previews: [string[], Record<string, unknown>][] = [
      [['pull', `${reg}:7.0.0`, '--check'], { schema: 'prov.oci.pull/v1', planned: true, digest: null }],
      [['pull', layout, '--check', '--to', join(ws.root, 'never')], { schema: 'prov.oci.pull/v1', planned: true }],
      [['copy', `${reg}:7.0.0`, `layout:${join(ws.root, 'never')}:v1`, '--check'], { schema: 'prov.oci.copy/v1', planned: true, digest: null }],
      [['copy', layout, `${reg}:v1`, '--check'], { schema: 'prov.oci.copy/v1', planned: true }],
      [['push', `${reg}:7.0.0`, redisDir, '--check'], { schema: 'prov.oci.push/v1', planned: true, pushed: false }],
      [['delete', `${reg}:7.0.0`, '--check'], { schema: 'prov.oci.delete/v1', planned: true, deleted: false }],
      [['delete', layout, '--check'], { schema: 'prov.oci.delete/v1', planned: true, deleted: false }],
      [['sign', `${reg}:7.0.0`, '--key', key, '--check'], { schema: 'prov.oci.signature/v1', planned: true }],
      [['sign', layout, '--key', key, '--check'], { schema: 'prov.oci.signature/v1', planned: true }],
      [['bundle', '--to', `${reg}:bundle`, '--check'], { schema: 'prov.oci.bundle/v1', planned: true }],
      [['bundle', '--to', join(ws.root, 'never.tar'), '--check'], { schema: 'prov.oci.bundle/v1', planned: true }],
      [['package', redisDir, '--to', `layout:${join(ws.root, 'never')}:v1`, '--check'], { schema: 'prov.oci.artifact/v1', planned: true }],
      [['logout', listener.host, '--check'], { schema: 'prov.oci.logout/v1', planned: true, removed: true }],
      [['seed', `layout:${join(ws.path, '.prov', 'oci')}:bundle`, '--server', 'far-01', '--check'], { schema: 'prov.oci.seed/v1', planned: true }],
      [['seed', `${listener.host}/prov/bundles/b:1`, '--server', 'far-01', '--check'], { schema: 'prov.oci.seed/v1', planned: true, digest: null }],
    ]
    for (const [args, expected] of previews) {
      const result = await oci(args)
      expect(result.code, `${args.join(' ')}: ${result.stderr}`).toBe(0)
      expect(result.json(), args.join(' ')).toMatchObject(expected)
    }
    // piped references too
    const piped = await oci(['pull', '--check'], JSON.stringify([{ reference: `${reg}:7.0.0` }]))
    expect(piped.code, piped.stderr).toBe(0)
    expect(piped.json()[0]).toMatchObject({ planned: true })
    expect(listener.accepted()).toBe(0)
    expect(snapshot(ws.root)).toEqual(before)
  })

  it('a seed preview reads the bundle and names the server, its address and the destination', async () => {
    const result = await oci(['seed', `layout:${join(ws.path, '.prov', 'oci')}:bundle`, '--server', 'far-01', '--check'])
    expect(result.json()).toMatchObject({ server: 'far-01', host: '127.0.0.1', workspace: 'contract', destination: '/opt/prov/contract' })
    expect(result.json().files).toBeGreaterThan(0)
    expect(result.json().digest).toMatch(/^sha256:/)
    expect(listener.accepted()).toBe(0)
  })

  it('a plain tar given to seed is exit 2 naming the archive, not the folder it was unpacked in', async () => {
    const folder = mkdtempSync(join(tmpdir(), 'prov-plain-tar-'))
    try {
      writeFileSync(join(folder, 'note.txt'), 'not a bundle\n')
      const archive = join(folder, 'plain.tar')
      expect(spawnSync('tar', ['-cf', archive, '-C', folder, 'note.txt']).status).toBe(0)
      const result = await oci(['seed', archive, '--server', 'far-01', '--check'])
      expect(result.code).toBe(2)
      expect(result.stderr.trim().split('\n')).toEqual([expect.stringMatching(/plain\.tar is not a prov workspace bundle \(no OCI layout in the archive\)/)])
      expect(result.stderr).not.toMatch(/prov-seed-/)
      expect(listener.accepted()).toBe(0)
    } finally {
      rmSync(folder, { recursive: true, force: true })
    }
  })

  it('what cannot be previewed without a connection refuses --check (exit 2) and changes nothing', async () => {
    const before = snapshot(ws.root)
    for (const args of [
      ['resolve', '--check'],
      ['login', listener.host, '--username', 'u', '--password-stdin', '--check'],
    ]) {
      const result = await oci(args, 'secret\n')
      expect(result.code, `${args.join(' ')}: ${result.stderr}`).toBe(2)
      expect(result.stderr.trim().split('\n')).toHaveLength(1)
      expect(result.stderr).toMatch(/is not supported with --check/)
    }
    expect(listener.accepted()).toBe(0)
    expect(snapshot(ws.root)).toEqual(before)
  })
})

describe('destructive commands confirm', () => {
  it('delete refuses without --yes off a terminal (exit 2) and deletes nothing; with --yes it deletes', async () => {
    const layout = join(ws.root, 'delete-layout')
    expect((await oci(['package', redisDir, '--to', `layout:${layout}:v1`, '-q'])).code).toBe(0)
    const refused = await oci(['delete', `layout:${layout}:v1`])
    expect(refused.code).toBe(2)
    expect(refused.stderr.trim().split('\n')).toHaveLength(1)
    expect(refused.stderr).toMatch(/refusing to delete layout:.*delete-layout:v1 without --yes \(stdin is not a terminal/)
    expect((await oci(['tags', `layout:${layout}`])).json().map((t: { tag: string }) => t.tag)).toEqual(['v1'])
    const deleted = await oci(['delete', `layout:${layout}:v1`, '--yes'])
    expect(deleted.code, deleted.stderr).toBe(0)
    expect(deleted.json()).toMatchObject({ deleted: true })
    expect((await oci(['tags', `layout:${layout}`])).json()).toEqual([])
  })

  it('pull --to over a folder that holds files refuses without --yes; an empty or new folder needs none', async () => {
    const layout = `layout:${join(ws.path, 'layout')}:v1`
    const full = join(ws.root, 'full-folder')
    mkdirSync(full)
    writeFileSync(join(full, 'precious.txt'), 'keep me')
    const refused = await oci(['pull', layout, '--to', full])
    expect(refused.code).toBe(2)
    expect(refused.stderr).toMatch(/refusing to replace the non-empty folder .*full-folder without --yes/)
    expect(readFileSync(join(full, 'precious.txt'), 'utf8')).toBe('keep me')
    const preview = await oci(['pull', layout, '--to', full, '--check'])
    expect(preview.json()).toMatchObject({ planned: true, replaces: true })
    const replaced = await oci(['pull', layout, '--to', full, '--yes'])
    expect(replaced.code, replaced.stderr).toBe(0)
    expect(existsSync(join(full, 'precious.txt'))).toBe(false)
    expect(existsSync(join(full, 'manifest.yaml'))).toBe(true)
    const empty = join(ws.root, 'empty-folder')
    mkdirSync(empty)
    expect((await oci(['pull', layout, '--to', empty])).code).toBe(0)
  })
})

describe('--out is honoured', () => {
  it('json, yaml and ndjson give the same records', async () => {
    const layout = `layout:${join(ws.path, 'layout')}:v1`
    for (const args of [
      ['inspect', layout],
      ['tags', `layout:${join(ws.path, 'layout')}`],
      ['package', redisDir],
      ['pull', layout, '--check'],
    ]) {
      const json = await oci([...args, '--out', 'json'])
      expect(json.code, json.stderr).toBe(0)
      const records = [json.json()].flat()
      const yaml = await oci([...args, '--out', 'yaml'])
      expect([parseYaml(yaml.stdout)].flat(), args.join(' ')).toEqual(records)
      const ndjson = await oci([...args, '--out', 'ndjson'])
      expect(ndjson.lines(), args.join(' ')).toEqual(records)
    }
  })
})

describe('a registry that takes whatever it is sent', () => {
  it('a corrupt layout blob is refused by prov-oci itself: the registry never gets it, nor the manifest', async () => {
    const layout = join(ws.root, 'corrupt-layout')
    const packaged = await oci(['package', redisDir, '--to', `layout:${layout}:v1`])
    const layer = packaged.json().layers[0].digest as string
    const file = join(layout, 'blobs', 'sha256', layer.slice(7))
    const bytes = readFileSync(file)
    bytes[bytes.length >> 1] ^= 0xff
    writeFileSync(file, bytes)
    const received: string[] = []
    const accept =
      (status: number, headers: Record<string, string> = {}) =>
      (req: import('node:http').IncomingMessage, res: import('node:http').ServerResponse) => {
        received.push(`${req.method} ${req.url}`)
        req.resume()
        req.on('end', () => res.writeHead(status, headers).end())
      }
    const registry = await scriptedRegistry({
      '/v2/naive/redis/blobs/uploads/': accept(202, { location: '/v2/naive/redis/blobs/uploads/1' }),
      '/v2/naive/redis/blobs/uploads/1': accept(201),
      '/v2/naive/redis/manifests/v1': accept(201),
    })
    try {
      const copied = await oci(['copy', `layout:${layout}:v1`, `${registry.host}/naive/redis:v1`])
      expect(copied.code).toBe(1)
      expect(copied.stderr).toMatch(new RegExp(`digest mismatch: expected ${layer}, got sha256:[0-9a-f]{64}: refused, nothing written`))
      expect(received.filter((r) => r.includes(`digest=${encodeURIComponent(layer)}`) || r.includes('/manifests/'))).toEqual([])
    } finally {
      await registry.close()
    }
  })
})
