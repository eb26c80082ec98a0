import { execFileSync } from 'node:child_process'
import { chmodSync, existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, symlinkSync, utimesSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { Readable } from 'node:stream'
import { gzipSync } from 'node:zlib'
import { ProvError } from '@prov/core'
import fc from 'fast-check'
import { afterAll, describe, expect, it } from 'vitest'
import { prerequisitesMet, root } from '../../../tests/helpers/prerequisites'
import { buildArtifact, copyGraph, packageExtension, pushBuilt } from '../src/artifact'
import { writeBlobFile } from '../src/blob-file'
import { descriptorFor, sha256 } from '../src/digest'
import { LayoutTarget } from '../src/layout'
import { formatReference, isLoopbackHost, parseReference } from '../src/ref'
import { createTar, type TarEntry } from '../src/tarball'
import { MEDIA } from '../src/types'
import { scanLayers, UnpackBudget, unpackLayers } from '../src/unpack'

const temp = mkdtempSync(join(tmpdir(), 'prov-oci-unit-'))
afterAll(() => rmSync(temp, { recursive: true, force: true }))

function extension(dir: string, name = 'demo', version = '1.2.3') {
  mkdirSync(join(dir, 'templates'), { recursive: true })
  writeFileSync(join(dir, 'manifest.yaml'), `name: ${name}\nkind: taskserv\nversion: ${version}\ndescription: demo\n`)
  writeFileSync(join(dir, 'install.sh'), '#!/bin/sh\necho hi\n')
  chmodSync(join(dir, 'install.sh'), 0o755)
  writeFileSync(join(dir, 'templates', 'a.conf'), 'x=1\n')
  return dir
}

/** Unpacks one tar (or gzip tar) layer into `temp/name`; the default limit is the product's. */
function unpack(layer: Buffer, name: string, limit = 1024 ** 3): Promise<number> {
  return unpackLayers(
    [{ where: 'test layer', open: async () => Readable.from([layer]) }],
    { root: temp, segments: [name] },
    new UnpackBudget(limit, 'test artifact'),
  )
}

function exitCode(fn: () => unknown): number | undefined {
  try {
    fn()
  } catch (error) {
    return error instanceof ProvError ? error.code : -1
  }
  return undefined
}

describe('references', () => {
  it('parses registry, digest, oci:// and layout forms', () => {
    expect(parseReference('127.0.0.1:5000/prov/taskservs/redis:7.0.0')).toEqual({
      type: 'registry',
      registry: '127.0.0.1:5000',
      repository: 'prov/taskservs/redis',
      tag: '7.0.0',
      digest: undefined,
    })
    const digest = `sha256:${'a'.repeat(64)}`
    expect(parseReference(`oci://localhost:5000/ns/name@${digest}`)).toMatchObject({ registry: 'localhost:5000', repository: 'ns/name', digest })
    expect(parseReference('redis:1.0.0', { defaultRegistry: 'reg.example:443', defaultNamespace: 'prov' })).toMatchObject({
      registry: 'reg.example:443',
      repository: 'prov/redis',
    })
    expect(parseReference('layout:/tmp/x:v1')).toEqual({ type: 'layout', path: '/tmp/x', tag: 'v1', digest: undefined })
    expect(formatReference(parseReference('ghcr.io/a/b:c'))).toBe('ghcr.io/a/b:c')
  })

  it('refuses bad syntax with exit 2', () => {
    for (const bad of [
      '',
      'has space/x:1',
      'HOST.io/Upper/x:1',
      'reg.io/ns/name:bad tag',
      'reg.io/ns/name@sha256:xyz',
      'http://reg.io/a:1',
      'reg.io/ns/name',
      'reg.io:99999/a:1',
      'reg.io/a/../b:1',
      'layout::tag',
    ]) {
      expect(
        exitCode(() => parseReference(bad)),
        bad,
      ).toBe(2)
    }
  })

  it('never throws anything but a usage error on random input (property)', () => {
    // Random text alone almost never parses: reference-shaped input reaches the round-trip check too.
    const referenceLike = fc
      .tuple(
        fc.constantFrom('', 'localhost:5000/', 'registry.example:443/'),
        fc.array(fc.stringMatching(/^[a-z0-9]+([._-][a-z0-9]+)*$/), { minLength: 1, maxLength: 3 }),
        fc.option(fc.stringMatching(/^[A-Za-z0-9_][A-Za-z0-9._-]{0,20}$/)),
      )
      .map(([registry, parts, tag]) => `${registry}${parts.join('/')}${tag ? `:${tag}` : ''}`)
    fc.assert(
      fc.property(fc.oneof(fc.string({ maxLength: 80 }), referenceLike), (input) => {
        const code = exitCode(() => {
          const ref = parseReference(input, { defaultRegistry: 'localhost:5000' })
          // what parses, formats back to something that parses to the same value
          expect(parseReference(formatReference(ref), { defaultRegistry: 'localhost:5000' })).toEqual(ref)
        })
        return code === undefined || code === 2
      }),
      { numRuns: 500 },
    )
  })

  it('knows loopback hosts', () => {
    expect(isLoopbackHost('127.0.0.1:5000')).toBe(true)
    expect(isLoopbackHost('127.9.8.7')).toBe(true)
    expect(isLoopbackHost('localhost:5000')).toBe(true)
    expect(isLoopbackHost('[::1]:5000')).toBe(true)
    expect(isLoopbackHost('registry.example.com')).toBe(false)
    expect(isLoopbackHost('128.0.0.1')).toBe(false)
  })
})

describe('reproducible artifacts', () => {
  it('same folder, same digest, whatever the mtimes, modes and umask', () => {
    const a = extension(join(temp, 'repro-a'))
    const first = packageExtension(a)
    utimesSync(join(a, 'install.sh'), new Date(2001, 1, 1), new Date(2001, 1, 1))
    chmodSync(join(a, 'templates', 'a.conf'), 0o600)
    const second = packageExtension(a)
    expect(second.descriptor.digest).toBe(first.descriptor.digest)
    const b = extension(join(temp, 'repro-b'))
    expect(packageExtension(b).blobs[1].descriptor.digest).toBe(first.blobs[1].descriptor.digest)
    expect(first.manifest.artifactType).toBe('application/vnd.prov.taskserv.v1+json')
    expect(first.manifest.annotations).toMatchObject({
      'org.opencontainers.image.title': 'demo',
      'org.opencontainers.image.version': '1.2.3',
      'org.opencontainers.image.created': '1970-01-01T00:00:00Z',
    })
    expect(JSON.parse(first.blobs[0].bytes.toString())).toMatchObject({ name: 'demo', kind: 'taskserv', version: '1.2.3' })
    // gzip header: no name, mtime 0
    expect(first.blobs[1].bytes.readUInt32LE(4)).toBe(0)
  })

  it('created follows SOURCE_DATE_EPOCH', () => {
    const dir = extension(join(temp, 'epoch'))
    process.env.SOURCE_DATE_EPOCH = '1700000000'
    try {
      expect(packageExtension(dir).manifest.annotations?.['org.opencontainers.image.created']).toBe('2023-11-14T22:13:20Z')
    } finally {
      delete process.env.SOURCE_DATE_EPOCH
    }
  })

  it('a changed file changes the digest', () => {
    const dir = extension(join(temp, 'changed'))
    const before = packageExtension(dir).descriptor.digest
    writeFileSync(join(dir, 'install.sh'), '#!/bin/sh\necho changed\n')
    expect(packageExtension(dir).descriptor.digest).not.toBe(before)
  })

  it('the layer is a tar that GNU tar lists', () => {
    const dir = extension(join(temp, 'gnutar'))
    const layer = packageExtension(dir).blobs[1].bytes
    writeFileSync(join(temp, 'layer.tgz'), layer)
    const listing = execFileSync('tar', ['tzvf', join(temp, 'layer.tgz')], { encoding: 'utf8' })
    expect(listing).toMatch(/-rwxr-xr-x 0\/0 .* install\.sh/)
    expect(listing).toMatch(/-rw-r--r-- 0\/0 .* templates\/a\.conf/)
  })

  it('long paths survive (pax) and read back', async () => {
    const long = `${'d'.repeat(80)}/${'f'.repeat(90)}.txt`
    const tar = createTar([{ path: long, type: 'file', mode: 0o644, data: Buffer.from('x') }])
    expect(await unpack(gzipSync(tar), 'long-paths')).toBe(1)
    expect(readFileSync(join(temp, 'long-paths', long), 'utf8')).toBe('x')
  })
})

describe('tar safety', () => {
  const cases: [string, TarEntry[]][] = [
    ['absolute path', [{ path: '/etc/evil', type: 'file', mode: 0o644, data: Buffer.from('x') }]],
    ['dot-dot', [{ path: 'a/../../evil', type: 'file', mode: 0o644, data: Buffer.from('x') }]],
    ['symlink out (relative)', [{ path: 'link', type: 'symlink', mode: 0o777, linkname: '../../etc' }]],
    ['symlink out (absolute)', [{ path: 'link', type: 'symlink', mode: 0o777, linkname: '/etc/passwd' }]],
    ['hardlink out', [{ path: 'hard', type: 'hardlink', mode: 0o644, linkname: '../outside' }]],
    [
      'symlink out through another symlink',
      [
        { path: 'a', type: 'dir', mode: 0o755 },
        { path: 'a/b', type: 'symlink', mode: 0o777, linkname: '..' },
        { path: 'x', type: 'symlink', mode: 0o777, linkname: 'a/b/..' },
      ],
    ],
    [
      'symlink made before the link it passes through',
      [
        { path: 'x', type: 'symlink', mode: 0o777, linkname: 'a/b/..' },
        { path: 'a', type: 'dir', mode: 0o755 },
        { path: 'a/b', type: 'symlink', mode: 0o777, linkname: '..' },
      ],
    ],
    [
      'a file written through a symlink of the archive',
      [
        { path: 'd', type: 'symlink', mode: 0o777, linkname: '.' },
        { path: 'd/evil', type: 'file', mode: 0o644, data: Buffer.from('x') },
      ],
    ],
  ]
  for (const [name, entries] of cases) {
    it(`refuses ${name} and writes nothing`, async () => {
      const dest = `safety-${name.replace(/\W+/g, '-')}`
      const good: TarEntry = { path: 'ok.txt', type: 'file', mode: 0o644, data: Buffer.from('ok') }
      await expect(unpack(createTar([good, ...entries]), dest)).rejects.toThrow(/refused/)
      expect(existsSync(join(temp, dest))).toBe(false)
      expect(readdirSync(temp).filter((f) => f.includes(dest))).toEqual([])
    })
  }

  it('keeps links that stay inside', async () => {
    await unpack(
      createTar([
        { path: 'dir/file', type: 'file', mode: 0o644, data: Buffer.from('data') },
        { path: 'dir/link', type: 'symlink', mode: 0o777, linkname: 'file' },
        { path: 'up', type: 'symlink', mode: 0o777, linkname: 'dir/../dir/file' },
        { path: 'hard', type: 'hardlink', mode: 0o644, linkname: 'dir/file' },
      ]),
      'inside-links',
    )
    expect(readFileSync(join(temp, 'inside-links', 'dir', 'link'), 'utf8')).toBe('data')
    expect(readFileSync(join(temp, 'inside-links', 'hard'), 'utf8')).toBe('data')
  })

  it('refuses device entries', async () => {
    const tar = createTar([{ path: 'x', type: 'file', mode: 0o644, data: Buffer.from('x') }])
    tar[156] = '3'.charCodeAt(0)
    // fix the checksum so only the type is wrong
    tar.write('        ', 148, 8, 'ascii')
    let sum = 0
    for (const b of tar.subarray(0, 512)) sum += b
    tar.write(`${sum.toString(8).padStart(6, '0')}\0 `, 148, 8, 'ascii')
    await expect(unpack(tar, 'device')).rejects.toThrow(/device, FIFO/)
    expect(existsSync(join(temp, 'device'))).toBe(false)
  })

  it('refuses names past NAME_MAX and PATH_MAX', async () => {
    const file = (path: string) => createTar([{ path, type: 'file', mode: 0o644, data: Buffer.from('x') }])
    await expect(unpack(file(`d/${'n'.repeat(256)}`), 'name-max')).rejects.toThrow(/component longer than 255 bytes: refused/)
    await expect(unpack(file(`${'d'.repeat(200)}/`.repeat(21)), 'path-max')).rejects.toThrow(/path longer than 4096 bytes: refused/)
    expect(readdirSync(temp).filter((f) => f.includes('-max'))).toEqual([])
  })

  it('refuses more than 100000 entries, counted as the stream goes (nothing is held)', async () => {
    const header = createTar([{ path: 'f', type: 'file', mode: 0o644, data: Buffer.alloc(0) }]).subarray(0, 512)
    const endless = Readable.from(
      (function* () {
        for (let i = 0; i <= 100_000; i++) yield header
      })(),
    )
    await expect(scanLayers([{ where: 'count', open: async () => endless }], new UnpackBudget(1024 ** 3, 'test artifact'))).rejects.toThrow(
      /more than 100000 tar entries: refused/,
    )
  })

  it('refuses a header whose checksum does not match', async () => {
    const tar = createTar([{ path: 'x', type: 'file', mode: 0o644, data: Buffer.from('x') }])
    tar[0] = 'y'.charCodeAt(0)
    await expect(unpack(tar, 'checksum')).rejects.toThrow(/checksum mismatch/)
  })

  it('refuses a folder with a symlink pointing outside when packaging', () => {
    const dir = extension(join(temp, 'pkg-link-out'))
    symlinkSync('/etc/passwd', join(dir, 'passwd'))
    expect(exitCode(() => packageExtension(dir))).toBe(2)
  })
})

describe('OCI layout target', () => {
  it('round-trips an artifact, lists tags, copies into another layout', async () => {
    const dir = extension(join(temp, 'layout-src'))
    const built = packageExtension(dir)
    const layout = new LayoutTarget(join(temp, 'layout1'))
    await pushBuilt(layout, built, '1.2.3')
    expect(await layout.tags()).toEqual(['1.2.3'])
    expect((await layout.resolve('1.2.3')).digest).toBe(built.descriptor.digest)
    const other = new LayoutTarget(join(temp, 'layout2'))
    await copyGraph(layout, other, '1.2.3', { tag: 'copied' })
    expect((await other.resolve('copied')).digest).toBe(built.descriptor.digest)
    await other.delete('copied')
    expect(await other.tags()).toEqual([])
  })

  it('refuses a blob whose bytes do not match the digest, and writes nothing', async () => {
    const dir = extension(join(temp, 'corrupt-src'))
    const built = packageExtension(dir)
    const layout = new LayoutTarget(join(temp, 'corrupt'))
    await pushBuilt(layout, built, 'v1')
    const layer = built.blobs[1].descriptor
    writeFileSync(join(temp, 'corrupt', 'blobs', 'sha256', layer.digest.slice(7)), Buffer.from(built.blobs[1].bytes).fill(7, 20, 21))
    const dest = new LayoutTarget(join(temp, 'corrupt-dest'))
    await expect(copyGraph(layout, dest, 'v1')).rejects.toThrow(/digest mismatch/)
    expect(existsSync(join(temp, 'corrupt-dest', 'blobs', 'sha256', layer.digest.slice(7)))).toBe(false)
    expect(existsSync(join(temp, 'corrupt-dest', 'index.json'))).toBe(false)
    await expect(dest.pushBlob(layer, Buffer.from('not it'))).rejects.toThrow(/refused/)
  })

  it('refuses a manifest of an unknown media type', async () => {
    const layout = new LayoutTarget(join(temp, 'unknown-type'))
    const bytes = Buffer.from(JSON.stringify({ schemaVersion: 2, mediaType: 'application/vnd.example.unknown+json', config: {}, layers: [] }))
    const descriptor = descriptorFor('application/vnd.example.unknown+json', bytes)
    await layout.pushManifest(descriptor, bytes, 'weird')
    await expect(copyGraph(layout, new LayoutTarget(join(temp, 'unknown-dest')), 'weird')).rejects.toThrow(
      /unknown manifest media type 'application\/vnd\.example\.unknown\+json'/,
    )
  })

  it('builds multi-layer artifacts whose digests verify', () => {
    const built = buildArtifact({
      artifactType: 'application/vnd.prov.test.v1+json',
      configMediaType: MEDIA.empty,
      config: {},
      layers: [{ entries: [{ path: 'a', type: 'file', mode: 0o644, data: Buffer.from('a') }] }, { entries: [] }],
      annotations: {},
    })
    for (const blob of built.blobs) expect(sha256(blob.bytes)).toBe(blob.descriptor.digest)
    expect(built.manifest.layers).toHaveLength(2)
  })
})

describe.skipIf(!prerequisitesMet('full disk (tmpfs)', [root]))('full disk (tmpfs, needs root)', () => {
  it('a full cache is a clear error and leaves no half-written blob', () => {
    const mount = join(temp, 'tiny')
    mkdirSync(mount)
    execFileSync('mount', ['-t', 'tmpfs', '-o', 'size=64k', 'tmpfs', mount])
    try {
      const path = join(mount, 'blobs', 'sha256', 'f'.repeat(64))
      let error: unknown
      try {
        writeBlobFile(path, Buffer.alloc(256 * 1024, 1))
      } catch (e) {
        error = e
      }
      expect(error).toBeInstanceOf(ProvError)
      expect((error as ProvError).message).toMatch(/no space left on device/)
      expect(readdirSync(join(mount, 'blobs', 'sha256'))).toEqual([])
    } finally {
      execFileSync('umount', [mount])
    }
  })
})
