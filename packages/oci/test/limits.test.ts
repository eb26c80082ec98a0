import { createHash, generateKeyPairSync } from 'node:crypto'
import { chmodSync, existsSync, mkdirSync, readdirSync, symlinkSync, writeFileSync } from 'node:fs'
import type { ServerResponse } from 'node:http'
import { join } from 'node:path'
import { gzipSync } from 'node:zlib'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { repoRoot, runCli, tempWorkspace } from '../../../tests/helpers/cli'
import { descriptorFor } from '../src/digest'
import { LayoutTarget } from '../src/layout'
import { createTar } from '../src/tarball'
import { MEDIA } from '../src/types'
import { scriptedRegistry } from './servers'

type Ws = Awaited<ReturnType<typeof tempWorkspace>>
let ws: Ws
const oci = (args: string[], env: Record<string, string> = {}) =>
  runCli('prov-oci', args, { env: { ...ws.env, XDG_CACHE_HOME: join(ws.root, 'cache'), ...env }, cwd: ws.path })
const redisDir = join(repoRoot, 'extensions', 'taskservs', 'redis')
const GiB = 1024 ** 3
const sha = (b: Buffer) => `sha256:${createHash('sha256').update(b).digest('hex')}`

/** `bytes` of zeros as gzip (a multi-member stream, as `cat a.gz b.gz` makes): a few MB on disk. */
function zerosGzip(bytes: number): Buffer {
  const chunk = 64 * 1024 * 1024
  const member = gzipSync(Buffer.alloc(chunk), { level: 9 })
  return Buffer.concat(Array.from({ length: bytes / chunk }, () => member))
}

/** A ustar header of a regular file announcing `size` bytes (its data is not part of it). */
function fileHeader(name: string, size: number): Buffer {
  const block = Buffer.from(createTar([{ path: name, type: 'file', mode: 0o644, data: Buffer.alloc(0) }]).subarray(0, 512))
  block.write(`${size.toString(8).padStart(11, '0')}\0`, 124, 12, 'ascii')
  block.write('        ', 148, 8, 'ascii')
  let sum = 0
  for (const b of block) sum += b
  block.write(`${sum.toString(8).padStart(6, '0')}\0 `, 148, 8, 'ascii')
  return block
}

/** An artifact of the given layers in a fresh OCI layout (written with the product's own layout code). */
async function layoutWith(name: string, layers: Buffer[], artifactType = 'application/vnd.example.thing.v1+json'): Promise<string> {
  const dir = join(ws.root, 'layouts', name)
  const layout = new LayoutTarget(dir)
  const config = Buffer.from('{}')
  const configDescriptor = descriptorFor(MEDIA.empty, config)
  await layout.pushBlob(configDescriptor, config)
  const layerDescriptors = []
  for (const layer of layers) {
    const descriptor = descriptorFor(MEDIA.layerTarGzip, layer)
    await layout.pushBlob(descriptor, layer)
    layerDescriptors.push(descriptor)
  }
  const manifest = Buffer.from(
    JSON.stringify({ schemaVersion: 2, mediaType: MEDIA.manifest, artifactType, config: configDescriptor, layers: layerDescriptors }),
  )
  await layout.pushManifest(descriptorFor(MEDIA.manifest, manifest), manifest, 'v1')
  return dir
}

/** A manifest served under its tag `v1` and its digest. */
function manifestRoutes(repository: string, manifest: Buffer) {
  const send = (_req: unknown, res: ServerResponse) =>
    res.writeHead(200, { 'content-type': MEDIA.manifest, 'docker-content-digest': sha(manifest), 'content-length': manifest.length }).end(manifest)
  return { [`/v2/${repository}/manifests/v1`]: send, [`/v2/${repository}/manifests/${sha(manifest)}`]: send }
}

/** The one error line, and that nothing is left in the destination's parent (no temp folders). */
function expectRefusedCleanly(result: { code: number; stderr: string }, code: number, message: RegExp, parent: string) {
  expect(result.code, result.stderr).toBe(code)
  const lines = result.stderr.trim().split('\n')
  expect(lines, result.stderr).toHaveLength(1)
  expect(lines[0]).toMatch(/^prov-oci: error: /)
  expect(lines[0]).toMatch(message)
  expect(existsSync(parent) ? readdirSync(parent) : []).toEqual([])
}

beforeAll(async () => {
  ws = await tempWorkspace('limits')
})
afterAll(() => ws?.cleanup())

describe('decompression bombs and the unpacked size limit', () => {
  it('a layer of 2 GiB of gzip-compressed zeros is refused at the default limit (1 GiB); nothing partial is left', async () => {
    const layout = await layoutWith('zeros', [zerosGzip(2 * GiB)])
    const parent = join(ws.root, 'out-zeros')
    const result = await oci(['pull', `layout:${layout}:v1`, '--to', join(parent, 'dest')])
    expectRefusedCleanly(result, 1, /exceeds the unpacked size limit of 1073741824 bytes \(oci\.max_unpacked_size\): refused, nothing written/, parent)
  })

  it('a tar member announcing 2 GiB is refused at its header, before its data is read', async () => {
    const layer = Buffer.concat([gzipSync(fileHeader('big.bin', 2 * GiB)), zerosGzip(2 * GiB)])
    const layout = await layoutWith('announced', [layer])
    const parent = join(ws.root, 'out-announced')
    const result = await oci(['pull', `layout:${layout}:v1`, '--to', join(parent, 'dest')])
    expectRefusedCleanly(result, 1, /exceeds the unpacked size limit/, parent)
  })

  it('the limit is oci.max_unpacked_size and counts all layers of an artifact together', async () => {
    const layer = (name: string) => gzipSync(createTar([{ path: name, type: 'file', mode: 0o644, data: Buffer.alloc(40 * 1024, 7) }]))
    const layout = await layoutWith('two-layers', [layer('a.bin'), layer('b.bin')])
    const parent = join(ws.root, 'out-two')
    const over = await oci(['pull', `layout:${layout}:v1`, '--to', join(parent, 'dest')], { PROV_OCI__MAX_UNPACKED_SIZE: String(64 * 1024) })
    expectRefusedCleanly(over, 1, /exceeds the unpacked size limit of 65536 bytes/, parent)
    const under = await oci(['pull', `layout:${layout}:v1`, '--to', join(parent, 'dest')], { PROV_OCI__MAX_UNPACKED_SIZE: String(256 * 1024) })
    expect(under.code, under.stderr).toBe(0)
    expect(readdirSync(join(parent, 'dest')).sort()).toEqual(['a.bin', 'b.bin'])
  })

  it('an invalid limit is a configuration error (exit 3)', async () => {
    const result = await oci(['pull', 'layout:/nonexistent:v1', '--to', join(ws.root, 'never')], { PROV_OCI__MAX_UNPACKED_SIZE: '-1' })
    expect(result.code).toBe(3)
    expect(result.stderr).toMatch(/max_unpacked_size/)
    expect(existsSync(join(ws.root, 'never'))).toBe(false)
  })
})

describe('a hostile registry', () => {
  it('an oversized manifest is refused while it streams, with or without Content-Length', async () => {
    const huge = Buffer.alloc(5 * 1024 * 1024, 0x20)
    const registry = await scriptedRegistry({
      '/v2/big/sized/manifests/v1': (_req, res) => {
        res.writeHead(200, { 'content-type': MEDIA.manifest, 'content-length': huge.length }).end(huge)
      },
      '/v2/big/chunked/manifests/v1': (_req, res) => {
        res.writeHead(200, { 'content-type': MEDIA.manifest })
        // One 256 KiB chunk after another, without end: only the client's limit stops it.
        const write = () => {
          while (res.write(Buffer.alloc(256 * 1024, 0x20))) {
            // until the socket pushes back
          }
          res.once('drain', write)
        }
        res.on('close', () => res.removeAllListeners('drain'))
        write()
      },
    })
    try {
      for (const repo of ['sized', 'chunked']) {
        const result = await oci(['inspect', `${registry.host}/big/${repo}:v1`])
        expect(result.code, result.stderr).toBe(1)
        expect(result.stderr.trim().split('\n')).toHaveLength(1)
        expect(result.stderr).toMatch(new RegExp(`manifest of ${registry.host}/big/${repo}:v1 of \\d+ bytes exceeds the limit of 4194304 bytes: refused`))
      }
    } finally {
      await registry.close()
    }
  })

  it('a manifest with more layers than allowed is refused before any blob is asked for', async () => {
    const layer = { mediaType: MEDIA.layerTarGzip, digest: sha(Buffer.from('x')), size: 1 }
    const manifest = Buffer.from(
      JSON.stringify({ schemaVersion: 2, mediaType: MEDIA.manifest, config: { ...layer, mediaType: MEDIA.empty }, layers: Array(300).fill(layer) }),
    )
    const blobRequests: string[] = []
    const registry = await scriptedRegistry({
      ...manifestRoutes('many/layers', manifest),
      [`/v2/many/layers/blobs/${layer.digest}`]: (req, res) => {
        blobRequests.push(req.url ?? '')
        res.writeHead(200).end('x')
      },
    })
    try {
      const to = join(ws.root, 'out-layers')
      const result = await oci(['pull', `${registry.host}/many/layers:v1`, '--to', join(to, 'dest')])
      expectRefusedCleanly(result, 1, /manifest has 300 layers, more than the 256 allowed: refused/, to)
      expect(blobRequests).toEqual([])
    } finally {
      await registry.close()
    }
  })

  it('a config blob past the limit is never read into memory', async () => {
    const layerBytes = gzipSync(
      createTar([{ path: 'manifest.yaml', type: 'file', mode: 0o644, data: Buffer.from('name: big\nkind: taskserv\nversion: 1.0.0\n') }]),
    )
    const configBytes = Buffer.alloc(5 * 1024 * 1024, 0x20)
    const layer = { mediaType: MEDIA.layerTarGzip, digest: sha(layerBytes), size: layerBytes.length }
    const config = { mediaType: 'application/vnd.prov.manifest.config.v1+json', digest: sha(configBytes), size: configBytes.length }
    const manifest = Buffer.from(
      JSON.stringify({ schemaVersion: 2, mediaType: MEDIA.manifest, artifactType: 'application/vnd.prov.taskserv.v1+json', config, layers: [layer] }),
    )
    const registry = await scriptedRegistry({
      ...manifestRoutes('big/config', manifest),
      [`/v2/big/config/blobs/${layer.digest}`]: (_req, res) => res.writeHead(200, { 'content-length': layerBytes.length }).end(layerBytes),
      [`/v2/big/config/blobs/${config.digest}`]: (_req, res) => res.writeHead(200, { 'content-length': configBytes.length }).end(configBytes),
    })
    try {
      const to = join(ws.root, 'out-config')
      const pulled = await oci(['pull', `${registry.host}/big/config:v1`, '--to', join(to, 'dest')])
      expectRefusedCleanly(pulled, 1, /artifact config of .*big\/config:v1 of 5242880 bytes is larger than the 4194304 allowed: refused/, to)
    } finally {
      await registry.close()
    }
  })

  it('names no registry may hold (control characters, paths, ..) are never listed by tags or catalog', async () => {
    const hostile = ['v1', '\u001b]0;owned\u0007', '../../etc', 'a/b', '', `x${'y'.repeat(200)}`, 'v2.0-rc_1']
    const registry = await scriptedRegistry({
      '/v2/evil/x/tags/list': (_req, res) => res.writeHead(200, { 'content-type': 'application/json' }).end(JSON.stringify({ name: 'evil/x', tags: hostile })),
      '/v2/_catalog': (_req, res) =>
        res.writeHead(200, { 'content-type': 'application/json' }).end(JSON.stringify({ repositories: ['evil/x', 'Evil\u001b[2J', '../up', 'ok/name_1'] })),
    })
    try {
      const tags = await oci(['tags', `${registry.host}/evil/x`])
      expect(tags.code, tags.stderr).toBe(0)
      expect(tags.json().map((t: { tag: string }) => t.tag)).toEqual(['v1', 'v2.0-rc_1'])
      const catalog = await oci(['catalog', registry.host])
      expect(catalog.code, catalog.stderr).toBe(0)
      expect(JSON.stringify(catalog.json())).not.toMatch(/\\u001b|\.\.|Evil/)
      expect(catalog.stdout).toContain('ok/name_1')
    } finally {
      await registry.close()
    }
  })

  it('a next-page link that repeats a page or points to another host is refused', async () => {
    const page = (tags: string[]) => JSON.stringify({ name: 'loop/y', tags })
    const elsewhere = await scriptedRegistry({
      '/v2/steal/tags/list': (_req, res) => res.writeHead(200, { 'content-type': 'application/json' }).end(page(['9.9.9'])),
    })
    const registry = await scriptedRegistry({
      '/v2/loop/y/tags/list': (req, res) =>
        res
          .writeHead(200, { 'content-type': 'application/json', link: '</v2/loop/y/tags/list?n=1000>; rel="next"' })
          .end(page([req.url?.includes('last') ? 'b' : 'a'])),
      '/v2/away/z/tags/list': (_req, res) =>
        res.writeHead(200, { 'content-type': 'application/json', link: `<http://${elsewhere.host}/v2/steal/tags/list>; rel="next"` }).end(page(['1.0.0'])),
    })
    try {
      const looped = await oci(['tags', `${registry.host}/loop/y`])
      expect(looped.code, looped.stderr).toBe(1)
      expect(looped.stderr).toMatch(/links back to a page it already gave: refused/)
      const away = await oci(['tags', `${registry.host}/away/z`])
      expect(away.code, away.stderr).toBe(1)
      expect(away.stderr).toMatch(/next-page link points to another host .*: refused/)
      expect(away.stdout).not.toContain('9.9.9')
    } finally {
      await registry.close()
      await elsewhere.close()
    }
  })

  it('a tag list that never stops paging is cut off', async () => {
    const page = JSON.stringify({ name: 'loop/x', tags: Array.from({ length: 1000 }, (_, i) => `t${i}`) })
    let pages = 0
    const registry = await scriptedRegistry({
      '/v2/loop/x/tags/list': (_req, res) =>
        res.writeHead(200, { 'content-type': 'application/json', link: `</v2/loop/x/tags/list?n=1000&last=t${++pages}>; rel="next"` }).end(page),
    })
    try {
      const result = await oci(['tags', `${registry.host}/loop/x`])
      expect(result.code, result.stderr).toBe(1)
      expect(result.stderr).toMatch(/the tags of .*loop\/x lists more than 100000 names: refused/)
    } finally {
      await registry.close()
    }
  })
})

describe('deeply nested documents', () => {
  const deep = (levels: number) => `${'['.repeat(levels)}${']'.repeat(levels)}`
  const expectTooDeep = (result: { code: number; stderr: string }, what: RegExp) => {
    expect(result.code, result.stderr).toBe(2)
    expect(result.stderr.trim().split('\n')).toHaveLength(1)
    expect(result.stderr).toMatch(new RegExp(`^prov-oci: error: ${what.source} is nested too deeply \\(more than 100 levels\\)`))
  }

  it('a manifest or a config nested 100 000 levels deep is refused (exit 2, one line), nothing written', async () => {
    const config = Buffer.from('{}')
    const configDescriptor = { mediaType: MEDIA.empty, digest: sha(config), size: config.length }
    const deepManifest = Buffer.from(
      `{"schemaVersion":2,"mediaType":"${MEDIA.manifest}","config":${JSON.stringify(configDescriptor)},"layers":[],"annotations":{"x":${deep(100_000)}}}`,
    )
    const deepConfig = Buffer.from(`{"a":${deep(100_000)}}`)
    const deepConfigDescriptor = { mediaType: 'application/vnd.prov.manifest.config.v1+json', digest: sha(deepConfig), size: deepConfig.length }
    const shallowManifest = Buffer.from(
      JSON.stringify({
        schemaVersion: 2,
        mediaType: MEDIA.manifest,
        artifactType: 'application/vnd.prov.taskserv.v1+json',
        config: deepConfigDescriptor,
        layers: [],
      }),
    )
    const registry = await scriptedRegistry({
      ...manifestRoutes('deep/manifest', deepManifest),
      ...manifestRoutes('deep/config', shallowManifest),
      [`/v2/deep/config/blobs/${deepConfigDescriptor.digest}`]: (_req, res) => res.writeHead(200, { 'content-length': deepConfig.length }).end(deepConfig),
    })
    try {
      expectTooDeep(await oci(['inspect', `${registry.host}/deep/manifest:v1`]), /manifest of .*deep\/manifest:v1/)
      const to = join(ws.root, 'out-deep')
      const pulled = await oci(['pull', `${registry.host}/deep/manifest:v1`, '--to', join(to, 'dest')])
      expectTooDeep(pulled, /manifest of .*deep\/manifest:(v1|sha256:[0-9a-f]{64})/)
      expect(existsSync(to)).toBe(false)
      expectTooDeep(await oci(['inspect', `${registry.host}/deep/config:v1`]), /config of .*deep\/config:v1/)
      const pulledConfig = await oci(['pull', `${registry.host}/deep/config:v1`, '--to', join(to, 'dest')])
      expectTooDeep(pulledConfig, /artifact config of .*deep\/config:v1/)
      expect(existsSync(to)).toBe(false)
    } finally {
      await registry.close()
    }
  })

  it("a registry's deeply nested error body still gives the registry's status as one line", async () => {
    const registry = await scriptedRegistry({
      '/v2/deep/errors/manifests/v1': (_req, res) => res.writeHead(403, { 'content-type': 'application/json' }).end(`{"errors":${deep(100_000)}}`),
    })
    try {
      const result = await oci(['inspect', `${registry.host}/deep/errors:v1`])
      expect(result.code, result.stderr).toBe(4)
      expect(result.stderr.trim().split('\n')).toHaveLength(1)
      expect(result.stderr).toMatch(/^prov-oci: error: access to .* denied \(HTTP 403\)/)
    } finally {
      await registry.close()
    }
  })

  it('a layout index.json nested 100 000 levels deep is refused (exit 2) by the commands that read it', async () => {
    const layout = await layoutWith('deep-index', [])
    writeFileSync(join(layout, 'index.json'), `{"schemaVersion":2,"manifests":${deep(100_000)}}`)
    for (const args of [
      ['tags', `layout:${layout}`],
      ['inspect', `layout:${layout}:v1`],
      ['delete', `layout:${layout}:v1`, '--yes'],
    ])
      expectTooDeep(await oci(args), /OCI layout index/)
  })
})

describe('layout references and containment', () => {
  it('a layout tag holding / or .. is refused (exit 2) by every command, and nothing is created', async () => {
    const layout = join(ws.root, 'traversal')
    const refused = async (args: string[]) => {
      const result = await oci(args)
      expect(result.code, `${args.join(' ')}: ${result.stderr}`).toBe(2)
      expect(result.stderr.trim().split('\n')).toHaveLength(1)
      expect(result.stderr).toMatch(/layout tag '.*' contains '\/' or '\.\.'|tag '\.\.' is not valid/)
    }
    for (const tag of ['a/b', 'x..y', '..']) await refused(['pull', `layout:${layout}:${tag}`, '--to', join(ws.root, 'never')])
    const ref = `layout:${layout}:../../escaped`
    for (const args of [
      ['pull', ref, '--to', join(ws.root, 'never')],
      ['package', redisDir, '--to', ref],
      ['push', ref, redisDir],
      ['copy', `layout:${layout}:v1`, ref],
      ['delete', ref, '--yes'],
      ['bundle', '--to', ref],
    ])
      await refused(args)
    expect(existsSync(layout)).toBe(false)
    expect(existsSync(join(ws.root, 'escaped'))).toBe(false)
    expect(existsSync(join(ws.root, 'never'))).toBe(false)
  })

  it('a layout whose blobs folder is a symlink out of it is refused (exit 4); nothing lands outside', async () => {
    const layout = join(ws.root, 'linked-layout')
    const outside = join(ws.root, 'outside')
    mkdirSync(layout, { recursive: true })
    mkdirSync(outside, { recursive: true })
    symlinkSync(outside, join(layout, 'blobs'))
    const result = await oci(['package', redisDir, '--to', `layout:${layout}:v1`])
    expect(result.code, result.stderr).toBe(4)
    expect(result.stderr).toMatch(/refusing a path outside layout:.*linked-layout/)
    expect(readdirSync(outside)).toEqual([])
  })

  it('sign refuses a private key that group or others can read (exit 4, one line); nothing is signed', async () => {
    const layout = join(ws.root, 'sign-layout')
    expect((await oci(['package', redisDir, '--to', `layout:${layout}:v1`])).code).toBe(0)
    const key = join(ws.root, 'open-key.pem')
    writeFileSync(key, generateKeyPairSync('ed25519').privateKey.export({ type: 'pkcs8', format: 'pem' }), { mode: 0o644 })
    chmodSync(key, 0o644)
    const before = readdirSync(join(layout, 'blobs', 'sha256')).sort()
    const result = await oci(['sign', `layout:${layout}:v1`, '--key', key])
    expect(result.code).toBe(4)
    expect(result.stderr.trim().split('\n')).toHaveLength(1)
    expect(result.stderr).toMatch(/private key .*open-key\.pem is readable by others \(mode 644\).*hint: chmod 600/)
    expect(readdirSync(join(layout, 'blobs', 'sha256')).sort()).toEqual(before)
  })
})
