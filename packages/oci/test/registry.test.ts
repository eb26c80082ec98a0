import { execFileSync } from 'node:child_process'
import { randomBytes } from 'node:crypto'
import { copyFileSync, existsSync, mkdirSync, readdirSync, readFileSync, writeFileSync } from 'node:fs'
import { join } from 'node:path'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { repoRoot, runCli, tempWorkspace } from '../../../tests/helpers/cli'
import { type RunningRegistry, removeRegistry, startRegistry } from './registry-fixture'
import { cuttingProxy, lyingRegistry } from './servers'

type Ws = Awaited<ReturnType<typeof tempWorkspace>>
let registry: RunningRegistry
let src: Ws
let dst: Ws
let host: string
const redisDir = join(repoRoot, 'extensions', 'taskservs', 'redis')

const oci = (ws: Ws, args: string[], extra: { input?: string; env?: Record<string, string | undefined>; cwd?: string } = {}) =>
  runCli('prov-oci', args, { env: { ...ws.env, XDG_CACHE_HOME: join(ws.root, 'cache'), ...extra.env }, cwd: extra.cwd ?? ws.path, input: extra.input })

function extension(ws: Ws, name: string, version: string, requires = '', extra?: (dir: string) => void) {
  const dir = join(ws.root, 'src-ext', `${name}-${version}`)
  mkdirSync(dir, { recursive: true })
  writeFileSync(join(dir, 'manifest.yaml'), `name: ${name}\nkind: taskserv\nversion: ${version}\nrequires: {${requires}}\n`)
  writeFileSync(join(dir, 'install.sh'), `#!/bin/sh\necho ${name} ${version}\n`)
  extra?.(dir)
  return dir
}

beforeAll(async () => {
  registry = await startRegistry()
  host = registry.host
  src = await tempWorkspace('src')
  dst = await tempWorkspace('dst')
})

afterAll(async () => {
  await removeRegistry(registry)
  src?.cleanup()
  dst?.cleanup()
})

describe('push, pull and interop with skopeo (real docker-registry)', () => {
  let digest: string

  it('package + push; skopeo inspect shows the manifest', async () => {
    const packaged = await oci(src, ['package', redisDir])
    expect(packaged.code, packaged.stderr).toBe(0)
    const pushed = await oci(src, ['push', `${host}/prov/taskservs/redis:7.0.0`, redisDir])
    expect(pushed.code, pushed.stderr).toBe(0)
    digest = pushed.json().digest
    expect(digest).toBe(packaged.json().digest)
    const raw = JSON.parse(
      execFileSync('skopeo', ['inspect', '--raw', `docker://${host}/prov/taskservs/redis:7.0.0`, '--tls-verify=false'], { encoding: 'utf8' }),
    )
    expect(raw.artifactType).toBe('application/vnd.prov.taskserv.v1+json')
    expect(raw.annotations['org.opencontainers.image.version']).toBe('7.0.0')
    // skopeo copies it into a layout; prov-oci reads that layout
    const layout = join(src.root, 'skopeo-layout')
    execFileSync('skopeo', ['copy', '--src-tls-verify=false', `docker://${host}/prov/taskservs/redis:7.0.0`, `oci:${layout}:copied`], { stdio: 'ignore' })
    const inspected = await oci(src, ['inspect', `layout:${layout}:copied`])
    expect(inspected.json()).toMatchObject({ digest, kind: 'taskserv', config: { content: { name: 'redis' } } })
  })

  it('pull installs into another workspace; prov ext list shows the registry layer', async () => {
    const pulled = await oci(dst, ['pull', `oci://${host}/prov/taskservs/redis:7.0.0`])
    expect(pulled.code, pulled.stderr).toBe(0)
    expect(pulled.json()).toMatchObject({ digest, name: 'redis', cached: false, layer: 'registry' })
    expect(existsSync(join(dst.path, '.prov', 'extensions', 'taskservs', 'redis', 'install.sh'))).toBe(true)
    const list = await runCli('prov', ['ext', 'list', '--kind', 'taskserv'], { env: dst.env, cwd: dst.path })
    expect(list.json().find((e: { name: string }) => e.name === 'redis')).toMatchObject({ layer: 'registry', version: '7.0.0' })
  })

  it('a second pull of the digest reads no network (registry stopped)', async () => {
    await registry.stop()
    try {
      const byDigest = await oci(dst, ['pull', `${host}/prov/taskservs/redis@${digest}`])
      expect(byDigest.code, byDigest.stderr).toBe(0)
      expect(byDigest.json()).toMatchObject({ cached: true, digest })
      const byTag = await oci(dst, ['pull', `${host}/prov/taskservs/redis:7.0.0`])
      expect(byTag.code, byTag.stderr).toBe(0)
      expect(byTag.stderr).toMatch(/unreachable; using the cached/)
      const unknown = await oci(dst, ['pull', `${host}/prov/taskservs/nothing:1.0.0`])
      expect(unknown.code).toBe(1)
      expect(unknown.stderr).toMatch(/cannot reach registry/)
    } finally {
      await registry.start()
    }
  })

  it('skopeo pushes from an OCI layout; prov-oci pulls it', async () => {
    const layout = join(src.root, 'prov-layout')
    const packaged = await oci(src, ['package', redisDir, '--to', `layout:${layout}:7.0.0`])
    expect(packaged.code, packaged.stderr).toBe(0)
    execFileSync('skopeo', ['copy', '--dest-tls-verify=false', `oci:${layout}:7.0.0`, `docker://${host}/skopeo/redis:7.0.0`], { stdio: 'ignore' })
    const to = join(dst.root, 'from-skopeo')
    const pulled = await oci(dst, ['pull', `${host}/skopeo/redis:7.0.0`, '--to', to])
    expect(pulled.code, pulled.stderr).toBe(0)
    expect(readFileSync(join(to, 'manifest.yaml'), 'utf8')).toMatch(/name: redis/)
    // and a plain (non-prov) image layout made by skopeo from a tarball-like dir
    const foreign = join(src.root, 'foreign')
    execFileSync('skopeo', ['copy', `oci:${layout}:7.0.0`, `oci:${foreign}:x`], { stdio: 'ignore' })
    expect((await oci(dst, ['inspect', `layout:${foreign}:x`])).code).toBe(0)
  })

  it('tags, inspect, catalog', async () => {
    const tags = await oci(src, ['tags', `${host}/prov/taskservs/redis`])
    expect(tags.json().map((t: { tag: string }) => t.tag)).toEqual(['7.0.0'])
    const inspect = await oci(src, ['inspect', `${host}/prov/taskservs/redis:7.0.0`])
    const info = inspect.json()
    expect(info).toMatchObject({ digest, kind: 'taskserv', annotations: { 'org.opencontainers.image.title': 'redis' } })
    expect(info.layers).toHaveLength(1)
    expect(info.size).toBeGreaterThan(info.layers[0].size)
    const catalog = await oci(src, ['catalog', host])
    expect(catalog.json().map((r: { repository: string }) => r.repository)).toEqual(expect.arrayContaining(['prov/taskservs/redis', 'skopeo/redis']))
  })

  it('copy between registry repositories (blob mount), to a layout and back', async () => {
    const mounted = await oci(src, ['copy', `${host}/prov/taskservs/redis:7.0.0`, `${host}/mirror/redis:7.0.0`])
    expect(mounted.code, mounted.stderr).toBe(0)
    expect(mounted.json().blobs).toMatchObject({ mounted: 2, copied: 0 })
    const layout = join(src.root, 'copy-layout')
    const toLayout = await oci(src, ['copy', `${host}/mirror/redis:7.0.0`, `layout:${layout}`])
    expect(toLayout.code, toLayout.stderr).toBe(0)
    expect(JSON.parse(readFileSync(join(layout, 'index.json'), 'utf8')).manifests[0].annotations['org.opencontainers.image.ref.name']).toBe('7.0.0')
    const back = await oci(src, ['copy', `layout:${layout}:7.0.0`, `${host}/back/redis:v1`])
    expect(back.code, back.stderr).toBe(0)
    expect(back.json().digest).toBe(digest)
  })

  it('delete removes a tag (with --yes off a terminal); then it is not found (exit 5)', async () => {
    const refused = await oci(src, ['delete', `${host}/mirror/redis:7.0.0`])
    expect(refused.code).toBe(2)
    expect(refused.stderr).toMatch(/refusing to delete .*mirror\/redis:7\.0\.0 without --yes/)
    expect((await oci(src, ['inspect', `${host}/mirror/redis:7.0.0`])).code).toBe(0)
    const deleted = await oci(src, ['delete', `${host}/mirror/redis:7.0.0`, '--yes'])
    expect(deleted.code, deleted.stderr).toBe(0)
    const gone = await oci(src, ['inspect', `${host}/mirror/redis:7.0.0`])
    expect(gone.code).toBe(5)
    expect(gone.stderr).toMatch(/mirror\/redis:7\.0\.0 not found/)
  })

  it('chunked upload of a larger artifact round-trips', async () => {
    const dir = extension(src, 'bigone', '1.0.0', '', (d) =>
      writeFileSync(
        join(d, 'payload.bin'),
        Buffer.alloc(300_000).map((_, i) => (i * 7919) % 251),
      ),
    )
    const pushed = await oci(src, ['push', `${host}/prov/taskservs/bigone:1.0.0`, dir], { env: { PROV_OCI__CHUNK_SIZE: '65536' } })
    expect(pushed.code, pushed.stderr).toBe(0)
    const to = join(dst.root, 'bigone')
    const pulled = await oci(dst, ['pull', `${host}/prov/taskservs/bigone:1.0.0`, '--to', to])
    expect(pulled.code, pulled.stderr).toBe(0)
    expect(readFileSync(join(to, 'payload.bin')).equals(readFileSync(join(dir, 'payload.bin')))).toBe(true)
  })
})

describe('bad input', () => {
  it('bad reference syntax is exit 2 with one line', async () => {
    for (const ref of ['not a ref', `${'x'}/UPPER/x:1`, 'reg.io/a/b@sha256:short']) {
      const result = await oci(src, ['pull', ref])
      expect(result.code, ref).toBe(2)
      expect(result.stderr.trim().split('\n')).toHaveLength(1)
      expect(result.stderr).toMatch(/invalid reference/)
    }
  })

  it('unknown repository or tag is exit 5', async () => {
    for (const [args, message] of [
      [['pull', `${host}/prov/taskservs/nope:1.0.0`], /prov\/taskservs\/nope:1\.0\.0 not found/],
      [['pull', `${host}/prov/taskservs/redis:9.9.9`], /prov\/taskservs\/redis:9\.9\.9 not found/],
      [['tags', `${host}/prov/none`], /repository .*prov\/none not found/],
      [['inspect', 'layout:/nonexistent/layout:x'], /tag 'x' not found in layout:\/nonexistent\/layout/],
    ] as const) {
      const result = await oci(src, [...args])
      expect(result.code, args.join(' ')).toBe(5)
      expect(result.stderr, args.join(' ')).toMatch(message)
    }
  })

  it('pull reads references piped on stdin; malformed or reference-less input is exit 2 and changes nothing', async () => {
    const tags = await oci(src, ['tags', `${host}/prov/taskservs/redis`])
    const piped = await runCli('prov-oci', ['pull'], { env: { ...dst.env, XDG_CACHE_HOME: join(dst.root, 'cache') }, cwd: dst.path, input: tags.stdout })
    expect(piped.code, piped.stderr).toBe(0)
    expect(piped.json()[0]).toMatchObject({ name: 'redis', layer: 'registry' })
    const cacheDir = join(dst.root, 'stdin-cache')
    const refusals: [string, RegExp][] = [
      ['{"reference": ', /stdin is not valid JSON/],
      ['[{"name": "redis"}]', /stdin record 1 has no 'reference' string \(at stdin\[0\]\)/],
      ['- [unclosed', /stdin is not JSON, NDJSON or YAML/],
      ['[42]', /stdin record 1 has no 'reference' string/],
    ]
    for (const [input, reason] of refusals) {
      const result = await runCli('prov-oci', ['pull'], {
        env: { ...dst.env, XDG_CACHE_HOME: join(dst.root, 'cache'), PROV_OCI_CACHE: cacheDir },
        cwd: dst.path,
        input,
      })
      expect(result.code, input).toBe(2)
      expect(result.stderr.trim().split('\n'), input).toHaveLength(1)
      expect(result.stderr, input).toMatch(new RegExp(`^prov-oci: error: ${reason.source}`))
    }
    expect(existsSync(cacheDir)).toBe(false)
    const planned = await oci(dst, ['pull', `${host}/prov/taskservs/redis:7.0.0`, '--check'], { env: { PROV_OCI_CACHE: cacheDir } })
    expect(planned.code, planned.stderr).toBe(0)
    expect(planned.json()).toMatchObject({ planned: true })
    expect(existsSync(cacheDir)).toBe(false)
  })

  it('a malformed dependencies.extensions is a configuration error (exit 3)', async () => {
    const ws = await tempWorkspace('badconfig')
    try {
      writeFileSync(
        join(ws.path, 'prov.config.yaml'),
        `${readFileSync(join(ws.path, 'prov.config.yaml'), 'utf8')}\ndependencies:\n  extensions:\n    modules:\n      taskservs: oci://x/y:1\n`,
      )
      const result = await oci(ws, ['resolve'])
      expect(result.code).toBe(3)
      expect(result.stderr).toMatch(/must be a list of references/)
    } finally {
      ws.cleanup()
    }
  })

  it('unknown subcommand option is exit 2', async () => {
    const bogus = await oci(src, ['pull', `${host}/prov/taskservs/redis:7.0.0`, '--bogus'])
    expect(bogus.code).toBe(2)
    expect(bogus.stderr).toMatch(/unknown option '--bogus'/)
  })

  it('a blob whose bytes do not match its digest is refused and nothing is written', async () => {
    const liar = await lyingRegistry()
    try {
      const to = join(dst.root, 'liar')
      const result = await oci(dst, ['pull', `${liar.host}/bad/blob:v1`, '--to', to])
      expect(result.code).toBe(1)
      expect(result.stderr).toMatch(new RegExp(`digest mismatch: expected ${liar.honestDigest}, got sha256:[0-9a-f]{64}: refused, nothing written`))
      expect(existsSync(to)).toBe(false)
      const blobs = join(dst.path, '.prov', 'cache', 'oci', 'blobs', 'sha256')
      expect(existsSync(join(blobs, liar.honestDigest.slice(7)))).toBe(false)
      expect(readdirSync(blobs).some((f) => f.startsWith('.tmp'))).toBe(false)
      const unknown = await oci(dst, ['inspect', `${liar.host}/bad/type:v1`])
      expect(unknown.code).toBe(1)
      expect(unknown.stderr).toMatch(/unknown manifest media type 'application\/vnd\.example\.thing\.v1\+json'/)
    } finally {
      await liar.close()
    }
  })

  it('a corrupted layout blob pushed to a registry is refused by prov-oci; no manifest lands', async () => {
    const layout = join(src.root, 'corrupt-layout')
    const packaged = await oci(src, ['package', redisDir, '--to', `layout:${layout}:v1`])
    const layer = packaged.json().layers[0].digest as string
    const file = join(layout, 'blobs', 'sha256', layer.slice(7))
    const bytes = readFileSync(file)
    bytes[bytes.length >> 1] ^= 0xff
    writeFileSync(file, bytes)
    const copied = await oci(src, ['copy', `layout:${layout}:v1`, `${host}/corrupt/redis:v1`])
    expect(copied.code).toBe(1)
    expect(copied.stderr).toMatch(new RegExp(`digest mismatch: expected ${layer}, got sha256:[0-9a-f]{64}: refused, nothing written`))
    expect((await oci(src, ['inspect', `${host}/corrupt/redis:v1`])).code).toBe(5)
    // and reading it locally is refused too
    const pulled = await oci(src, ['pull', `layout:${layout}:v1`, '--to', join(src.root, 'corrupt-out')])
    expect(pulled.code).toBe(1)
    expect(pulled.stderr).toMatch(/digest mismatch/)
    expect(existsSync(join(src.root, 'corrupt-out'))).toBe(false)
  })

  it('a registry that drops the connection mid-push: the push resumes (chunked) or restarts (monolithic)', async () => {
    const big = extension(src, 'cutme', '1.0.0', '', (d) => writeFileSync(join(d, 'blob.bin'), randomBytes(600_000)))
    const chunked = await cuttingProxy(registry.port, { cutAfter: 200_000, cuts: 1 })
    try {
      const result = await oci(src, ['push', `${chunked.host}/prov/taskservs/cutme:1.0.0`, big], { env: { PROV_OCI__CHUNK_SIZE: '131072' } })
      expect(result.code, result.stderr).toBe(0)
      expect(chunked.cuts()).toBe(1)
    } finally {
      await chunked.close()
    }
    const mono = await cuttingProxy(registry.port, { cutAfter: 200_000, cuts: 1 })
    try {
      const other = extension(src, 'cutme', '1.0.1', '', (d) => writeFileSync(join(d, 'blob.bin'), randomBytes(600_000)))
      const result = await oci(src, ['push', `${mono.host}/prov/taskservs/cutme:1.0.1`, other])
      expect(result.code, result.stderr).toBe(0)
      expect(mono.cuts()).toBe(1)
    } finally {
      await mono.close()
    }
    const pulled = await oci(dst, ['pull', `${host}/prov/taskservs/cutme:1.0.0`, '--to', join(dst.root, 'cutme')])
    expect(pulled.code, pulled.stderr).toBe(0)
    expect(readFileSync(join(dst.root, 'cutme', 'blob.bin')).equals(readFileSync(join(big, 'blob.bin')))).toBe(true)
    // A registry that keeps cutting gives a clean error.
    const always = await cuttingProxy(registry.port, { cutAfter: 100_000, cuts: 100 })
    try {
      const fresh = extension(src, 'cutme', '2.0.0', '', (d) => writeFileSync(join(d, 'blob.bin'), randomBytes(400_000)))
      const result = await oci(src, ['push', `${always.host}/prov/taskservs/cutme:2.0.0`, fresh])
      expect(result.code).toBe(1)
      expect(result.stderr.trim().split('\n').at(-1)).toMatch(/cannot reach registry/)
    } finally {
      await always.close()
    }
  })
})

describe('signatures', () => {
  let keys: { ed: string; edPub: string; ec: string; ecPub: string; other: string }
  beforeAll(() => {
    const dir = join(src.root, 'keys')
    mkdirSync(dir)
    const gen = (name: string, args: string[]) => {
      execFileSync('openssl', ['genpkey', ...args, '-out', join(dir, `${name}.pem`)], { stdio: 'ignore' })
      execFileSync('openssl', ['pkey', '-in', join(dir, `${name}.pem`), '-pubout', '-out', join(dir, `${name}.pub`)], { stdio: 'ignore' })
    }
    gen('ed', ['-algorithm', 'ed25519'])
    gen('ec', ['-algorithm', 'EC', '-pkeyopt', 'ec_paramgen_curve:P-256'])
    gen('other', ['-algorithm', 'ed25519'])
    keys = { ed: join(dir, 'ed.pem'), edPub: join(dir, 'ed.pub'), ec: join(dir, 'ec.pem'), ecPub: join(dir, 'ec.pub'), other: join(dir, 'other.pub') }
  })

  it('unsigned artifacts are refused by pull --verify (exit 4)', async () => {
    const result = await oci(dst, ['pull', `${host}/prov/taskservs/redis:7.0.0`, '--verify', '--key', keys.edPub, '--to', join(dst.root, 'unsigned')])
    expect(result.code).toBe(4)
    expect(result.stderr).toMatch(/not signed/)
    expect(existsSync(join(dst.root, 'unsigned'))).toBe(false)
  })

  it('sign (ed25519 and ECDSA P-256) stores referrers via the fallback tag; verify and pull --verify accept', async () => {
    const ref = `${host}/prov/taskservs/redis:7.0.0`
    const signed = await oci(src, ['sign', ref, '--key', keys.ed])
    expect(signed.code, signed.stderr).toBe(0)
    // distribution 2.8 has no referrers API: the sha256-<hex> tag scheme is used
    expect(signed.json().referrers).toBe('fallback-tag')
    expect((await oci(src, ['sign', ref, '--key', keys.ec])).code).toBe(0)
    const tags = (await oci(src, ['tags', `${host}/prov/taskservs/redis`, '--all'])).json().map((t: { tag: string }) => t.tag)
    expect(tags).toContain(signed.json().subject.replace(':', '-'))
    const index = JSON.parse(
      execFileSync('skopeo', ['inspect', '--raw', `docker://${host}/prov/taskservs/redis:${signed.json().subject.replace(':', '-')}`, '--tls-verify=false'], {
        encoding: 'utf8',
      }),
    )
    expect(index.manifests).toHaveLength(2)
    const verified = await oci(src, ['verify', ref, '--key', keys.ecPub])
    expect(verified.code, verified.stderr).toBe(0)
    expect(verified.json()).toMatchObject({ verified: true, algorithm: 'ecdsa-p256-sha256' })
    const untrusted = await oci(src, ['verify', ref, '--key', keys.other])
    expect(untrusted.code).toBe(4)
    expect(untrusted.stderr).toMatch(/no valid signature by a trusted key for .*redis:7\.0\.0 \(2 signature\(s\) checked\): refused/)
    const pulled = await oci(dst, ['pull', ref, '--verify', '--key', keys.edPub, '--to', join(dst.root, 'signed')])
    expect(pulled.code, pulled.stderr).toBe(0)
    expect(pulled.json()).toMatchObject({ verified: true })
  })

  it('the config policy oci.require_signatures refuses unsigned artifacts and accepts signed ones', async () => {
    const policy = { PROV_OCI__REQUIRE_SIGNATURES: 'true', PROV_OCI__TRUSTED_KEYS: JSON.stringify([keys.edPub]) }
    const unsigned = await oci(dst, ['pull', `${host}/prov/taskservs/bigone:1.0.0`, '--to', join(dst.root, 'policy-unsigned')], { env: policy })
    expect(unsigned.code).toBe(4)
    expect(unsigned.stderr).toMatch(/bigone:1\.0\.0 is not signed: refused/)
    expect(existsSync(join(dst.root, 'policy-unsigned'))).toBe(false)
    const signed = await oci(dst, ['pull', `${host}/prov/taskservs/redis:7.0.0`, '--to', join(dst.root, 'policy-signed')], { env: policy })
    expect(signed.code, signed.stderr).toBe(0)
    const noKeys = await oci(dst, ['pull', `${host}/prov/taskservs/redis:7.0.0`], { env: { PROV_OCI__REQUIRE_SIGNATURES: 'true' } })
    expect(noKeys.code).toBe(3)
    expect(noKeys.stderr).toMatch(/signature verification is required but no key is trusted/)
    // --check refuses what the pull would refuse.
    const previewNoKeys = await oci(dst, ['pull', `${host}/prov/taskservs/redis:7.0.0`, '--check'], { env: { PROV_OCI__REQUIRE_SIGNATURES: 'true' } })
    expect(previewNoKeys.code).toBe(3)
    expect(previewNoKeys.stderr).toMatch(/signature verification is required but no key is trusted/)
  })

  it('signatures in a layout are found by subject', async () => {
    const layout = join(src.root, 'signed-layout')
    await oci(src, ['package', redisDir, '--to', `layout:${layout}:v1`])
    expect((await oci(src, ['sign', `layout:${layout}:v1`, '--key', keys.ed])).code).toBe(0)
    expect((await oci(src, ['verify', `layout:${layout}:v1`, '--key', keys.edPub])).json().verified).toBe(true)
    const untrusted = await oci(src, ['verify', `layout:${layout}:v1`, '--key', keys.other])
    expect(untrusted.code).toBe(4)
    expect(untrusted.stderr).toMatch(/no valid signature by a trusted key/)
  })
})

describe('dependencies from registries', () => {
  const config = (ws: Ws, refs: string[]) =>
    writeFileSync(
      join(ws.path, 'prov.config.yaml'),
      `${readFileSync(join(ws.path, 'prov.config.yaml'), 'utf8').replace(/\ndependencies:[\s\S]*$/, '')}\ndependencies:\n  extensions:\n    oci:\n      registry: ${host}\n      namespace: deps/taskservs\n    modules:\n      taskservs:\n${refs.map((r) => `        - "${r}"`).join('\n')}\n`,
    )

  beforeAll(async () => {
    const push = async (name: string, version: string, requires = '') => {
      const r = await oci(src, ['push', `${host}/deps/taskservs/${name}:${version}`, extension(src, name, version, requires)])
      expect(r.code, r.stderr).toBe(0)
    }
    await push('libz', '1.0.0')
    await push('libz', '1.4.0')
    await push('libz', '2.0.0')
    await push('appx', '1.0.0', 'libz: "^1.2"')
    await push('appx', '1.1.0', 'libz: "^2"')
    await push('cyca', '1.0.0', 'cycb: "*"')
    await push('cycb', '1.0.0', 'cyca: "*"')
  })

  it('resolve pulls recursively the highest matching tags, installs in order, writes the lock', async () => {
    config(src, [`oci://${host}/deps/taskservs/appx:1.0.0`])
    const result = await oci(src, ['resolve'])
    expect(result.code, result.stderr).toBe(0)
    expect(result.json().map((r: { name: string; version: string; level: number }) => [r.name, r.version, r.level])).toEqual([
      ['libz', '1.4.0', 0],
      ['appx', '1.0.0', 1],
    ])
    const lock = JSON.parse(readFileSync(join(src.path, 'prov.lock.json'), 'utf8'))
    expect(Object.keys(lock.extensions)).toEqual(['appx', 'libz'])
    const list = await runCli('prov', ['ext', 'list', '--kind', 'taskserv'], { env: src.env, cwd: src.path })
    expect(
      list
        .json()
        .filter((e: { layer: string }) => e.layer === 'registry')
        .map((e: { name: string }) => e.name),
    ).toEqual(expect.arrayContaining(['appx', 'libz']))
    const again = await oci(src, ['resolve'])
    expect(again.json().every((r: { action: string }) => r.action === 'unchanged')).toBe(true)
  })

  it('the lock file gives a second machine the same bits even after a tag moved', async () => {
    const other = await tempWorkspace('second')
    try {
      config(other, [`oci://${host}/deps/taskservs/appx:1.0.0`])
      copyFileSync(join(src.path, 'prov.lock.json'), join(other.path, 'prov.lock.json'))
      const locked = JSON.parse(readFileSync(join(src.path, 'prov.lock.json'), 'utf8')).extensions.libz.digest
      // someone re-pushes libz 1.4.0 with different content
      const moved = await oci(src, [
        'push',
        `${host}/deps/taskservs/libz:1.4.0`,
        extension(src, 'libz', '1.4.0', '', (d) => writeFileSync(join(d, 'extra'), 'x')),
      ])
      expect(moved.json().digest).not.toBe(locked)
      const result = await oci(other, ['resolve'])
      expect(result.code, result.stderr).toBe(0)
      expect(result.json().find((r: { name: string }) => r.name === 'libz').digest).toBe(locked)
      const updated = await oci(other, ['resolve', '--update'])
      expect(updated.json().find((r: { name: string }) => r.name === 'libz').digest).toBe(moved.json().digest)
    } finally {
      other.cleanup()
    }
  })

  it('check-updates lists newer compatible tags', async () => {
    const result = await oci(src, ['check-updates'])
    expect(result.code, result.stderr).toBe(0)
    const byName = Object.fromEntries(result.json().map((r: { name: string }) => [r.name, r]))
    expect(byName.appx).toMatchObject({ current: '1.0.0', latest: '1.1.0', update_available: true })
    expect(byName.libz).toMatchObject({ current: '1.4.0', latest: '2.0.0', latest_compatible: '1.4.0', update_available: false })
  })

  it('cycles and conflicts are refused (exit 3), nothing installed', async () => {
    const ws = await tempWorkspace('cycles')
    try {
      config(ws, [`oci://${host}/deps/taskservs/cyca:1.0.0`])
      const cycle = await oci(ws, ['resolve'])
      expect(cycle.code).toBe(3)
      expect(cycle.stderr).toMatch(/cycle: (cyca -> cycb -> cyca|cycb -> cyca -> cycb)/)
      expect(existsSync(join(ws.path, '.prov', 'extensions', 'taskservs', 'cyca'))).toBe(false)
      config(ws, [`oci://${host}/deps/taskservs/appx:1.0.0`, `oci://${host}/deps/taskservs/libz:2.0.0`])
      const conflict = await oci(ws, ['resolve'])
      expect(conflict.code).toBe(3)
      expect(conflict.stderr).toMatch(/conflict/)
      expect(existsSync(join(ws.path, 'prov.lock.json'))).toBe(false)
      config(ws, ['libz@^9'])
      const none = await oci(ws, ['resolve'])
      expect(none.code).toBe(5)
      expect(none.stderr).toMatch(/no tag of .*libz satisfies \^9/)
    } finally {
      ws.cleanup()
    }
  })
})
