// Image recipes, manifests and cgroup CPU choice: pure functions, no root needed.
import { chmodSync, mkdirSync, mkdtempSync, rmSync, symlinkSync, unlinkSync, utimesSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { afterEach, beforeEach, describe, expect, it } from 'vitest'
import { createManifest, verifyTree } from '../src/images/manifest'
import {
  builtinRecipes,
  catalogPackages,
  DEFAULT_IMAGE,
  findRecipe,
  hostMirrors,
  loadStoredRecipe,
  recipeChain,
  storeRecipe,
  workspaceRecipes,
} from '../src/images/recipe'
import { chooseCpus, parseCpuList } from '../src/providers/local/cgroups'

let dir: string
beforeEach(() => {
  dir = mkdtempSync(join(tmpdir(), 'prov-images-'))
})
afterEach(() => rmSync(dir, { recursive: true, force: true }))

const recipes = (yaml: string) => {
  writeFileSync(join(dir, 'images.yaml'), yaml)
  return workspaceRecipes(dir)
}
const failure = (yaml: string) => {
  try {
    recipes(yaml)
  } catch (error) {
    return error as Error & { code: number; location?: string; hint?: string }
  }
  throw new Error('expected images.yaml to be refused')
}

describe('image recipes', () => {
  it('debian-12 is built in: bookworm, the base packages, the catalog packages cached', () => {
    const base = builtinRecipes().get(DEFAULT_IMAGE)
    expect(base).toMatchObject({ name: 'debian-12', suite: 'bookworm', from: null, source: 'builtin' })
    expect(base?.packages).toEqual(expect.arrayContaining(['openssh-server', 'iproute2', 'python3', 'sudo', 'ca-certificates']))
    expect(base?.cache).toEqual(expect.arrayContaining(['postgresql', 'redis-server', 'nginx', 'haproxy']))
    expect(base?.hash).toMatch(/^[0-9a-f]{64}$/)
  })

  it('the catalog packages come from the taskserv manifests', () => {
    const catalog = join(dir, 'taskservs')
    mkdirSync(join(catalog, 'a'), { recursive: true })
    mkdirSync(join(catalog, 'b'), { recursive: true })
    writeFileSync(join(catalog, 'a', 'manifest.yaml'), 'name: a\nkind: taskserv\nversion: 1.0.0\npackages: [nginx, curl]\n')
    writeFileSync(join(catalog, 'b', 'manifest.yaml'), 'name: b\nkind: taskserv\nversion: 1.0.0\npackages: [curl, "bad name;rm"]\n')
    expect(catalogPackages(catalog)).toEqual(['curl', 'nginx'])
  })

  it("the host's Debian mirror: one-line and deb822 sources for the release, -updates and -security only", () => {
    mkdirSync(join(dir, 'apt', 'sources.list.d'), { recursive: true })
    writeFileSync(
      join(dir, 'apt', 'sources.list'),
      '# comment\ndeb [arch=amd64] http://mirror.example/debian bookworm main contrib\ndeb http://mirror.example/debian trixie main\n',
    )
    writeFileSync(
      join(dir, 'apt', 'sources.list.d', 'debian.sources'),
      'Types: deb\nURIs: http://security.example/debian-security\nSuites: bookworm-security\nComponents: main\n\nTypes: deb-src\nURIs: http://src.example\nSuites: bookworm\nComponents: main\n',
    )
    writeFileSync(join(dir, 'apt', 'sources.list.d', 'other.sources.disabled'), 'Types: deb\nURIs: http://x\nSuites: bookworm\nComponents: main\n')
    expect(hostMirrors('bookworm', join(dir, 'apt'))).toEqual([
      'deb http://mirror.example/debian bookworm main contrib',
      'deb http://security.example/debian-security bookworm-security main',
    ])
    expect(hostMirrors('bookworm', join(dir, 'nothing'))).toEqual([
      'deb http://deb.debian.org/debian bookworm main',
      'deb http://deb.debian.org/debian bookworm-updates main',
      'deb http://deb.debian.org/debian-security bookworm-security main',
    ])
  })

  it('images.yaml: layered recipes with packages, cache and files; the hash follows every input', () => {
    writeFileSync(join(dir, 'tool'), '#!/bin/sh\necho hi\n')
    const first = recipes(
      'images:\n  web:\n    packages: [nginx]\n    files:\n      - path: /etc/motd\n        content: "hi"\n  app:\n    from: web\n    cache: [postgresql]\n    files:\n      - { path: /usr/local/bin/tool, source: tool, mode: "0755" }\n',
    )
    const app = first.get('app')
    expect(recipeChain(app as never).map((r) => r.name)).toEqual(['debian-12', 'web', 'app'])
    expect(app?.files[0]).toMatchObject({ path: '/usr/local/bin/tool', mode: 0o755 })
    expect(app?.files[0].content.toString()).toContain('echo hi')
    const changed = recipes(
      'images:\n  web:\n    packages: [nginx]\n    files:\n      - path: /etc/motd\n        content: "hello"\n  app:\n    from: web\n    cache: [postgresql]\n    files:\n      - { path: /usr/local/bin/tool, source: tool, mode: "0755" }\n',
    )
    // A changed parent changes the child's hash too.
    expect(changed.get('web')?.hash).not.toBe(first.get('web')?.hash)
    expect(changed.get('app')?.hash).not.toBe(app?.hash)
  })

  it('bad recipes name the place: unknown field, bad package, reserved path, symlink-free absolute paths, cycles, built-in names', () => {
    expect(failure('images:\n  web:\n    packages: [nginx]\n    pakages: [x]\n')).toMatchObject({
      code: 3,
      message: "invalid images.yaml at 'images.web.pakages': unknown field 'pakages'",
      location: 'images.yaml:4',
      hint: "did you mean 'packages'?",
    })
    expect(failure('images:\n  web:\n    packages: ["nginx; rm -rf /"]\n').message).toMatch(/a Debian package name/)
    expect(failure('images:\n  web:\n    files:\n      - { path: /proc/x, content: "" }\n').message).toMatch(/under \/proc, which each sandbox mounts itself/)
    expect(failure('images:\n  web:\n    files:\n      - { path: etc/x, content: "" }\n').message).toMatch(/must be absolute and normalised/)
    expect(failure('images:\n  web:\n    files:\n      - { path: /etc/../x, content: "" }\n').message).toMatch(/must be absolute and normalised/)
    expect(failure('images:\n  web:\n    files:\n      - { path: /etc/x, content: "", mode: "4755" }\n').message).toMatch(/no set-id bits/)
    expect(failure('images:\n  web:\n    files:\n      - { path: /etc/x }\n').message).toMatch(/give exactly one of content or source/)
    expect(failure('images:\n  a:\n    from: b\n  b:\n    from: a\n').message).toMatch(/image 'a' is layered on itself \(a -> b -> a\)/)
    expect(failure('images:\n  debian-12:\n    packages: [nginx]\n')).toMatchObject({
      code: 3,
      message: "image 'debian-12' is built in; give your recipe another name",
    })
    expect(failure('images:\n  web:\n    from: debian-13\n')).toMatchObject({ code: 5, message: "image 'web' is layered on unknown image 'debian-13'" })
  })

  it('a file source must stay inside the workspace', () => {
    const outside = mkdtempSync(join(tmpdir(), 'prov-outside-'))
    try {
      writeFileSync(join(outside, 'secret'), 'x')
      symlinkSync(join(outside, 'secret'), join(dir, 'link'))
      expect(failure('images:\n  web:\n    files:\n      - { path: /etc/x, source: ../x }\n')).toMatchObject({ code: 4 })
      expect(failure('images:\n  web:\n    files:\n      - { path: /etc/x, source: link }\n')).toMatchObject({ code: 4 })
    } finally {
      rmSync(outside, { recursive: true, force: true })
    }
  })

  it('unknown image names exit 5 with the names there are', () => {
    recipes('images:\n  web: {}\n')
    expect(() => findRecipe('debian-13', dir)).toThrow(expect.objectContaining({ code: 5, message: "unknown image 'debian-13'" }))
    try {
      findRecipe('wbe', dir)
    } catch (error) {
      expect((error as { hint: string }).hint).toBe("did you mean 'web'?; images: debian-12, web (declare your own in images.yaml)")
    }
  })

  it("a server's stored recipe loads back to the same hash; a tampered one gets another hash or is refused", () => {
    const web = recipes('images:\n  web:\n    packages: [nginx]\n    files:\n      - { path: /etc/motd, content: "hi" }\n').get('web')
    if (!web) throw new Error('no recipe')
    const stored = storeRecipe(web)
    expect(loadStoredRecipe(JSON.parse(JSON.stringify(stored))).hash).toBe(web.hash)
    expect(loadStoredRecipe({ ...stored, packages: ['nginx', 'curl'] }).hash).not.toBe(web.hash)
    expect(() => loadStoredRecipe({ ...stored, name: '../x' })).toThrow(/unreadable/)
    expect(() => loadStoredRecipe({ ...stored, files: [{ path: '/proc/x', mode: 0o644, content_base64: '' }] })).toThrow(/under \/proc/)
  })
})

describe('image manifests', () => {
  const tree = () => {
    const root = join(dir, 'rootfs')
    mkdirSync(join(root, 'etc'), { recursive: true })
    writeFileSync(join(root, 'etc', 'os-release'), 'ID=debian\n')
    writeFileSync(join(root, 'etc', 'hostname'), 'x\n')
    symlinkSync('../etc/os-release', join(root, 'os-link'))
    return root
  }

  it('an untouched tree verifies, quickly from stat data (nothing hashed)', () => {
    const root = tree()
    const { manifest, stats } = createManifest(root)
    expect(manifest.entries.map((e) => e[0])).toEqual(['.', 'etc', 'etc/hostname', 'etc/os-release', 'os-link'])
    expect(verifyTree(root, manifest)).toMatchObject({ ok: true, hashed: 5 })
    expect(verifyTree(root, manifest, stats)).toMatchObject({ ok: true, hashed: 0 })
  })

  it('changed, missing, added and re-moded entries are corruption; a touch alone is not', () => {
    const root = tree()
    const { manifest, stats } = createManifest(root)
    utimesSync(join(root, 'etc', 'hostname'), new Date(0), new Date(0))
    expect(verifyTree(root, manifest, stats)).toMatchObject({ ok: true, hashed: 1 })
    writeFileSync(join(root, 'etc', 'os-release'), 'ID=evil\n')
    expect(verifyTree(root, manifest, stats)).toMatchObject({ ok: false, problems: ['changed etc/os-release'] })
    writeFileSync(join(root, 'etc', 'os-release'), 'ID=debian\n')
    unlinkSync(join(root, 'etc', 'hostname'))
    writeFileSync(join(root, 'etc', 'added'), '')
    expect(verifyTree(root, manifest, stats).problems).toEqual(['unexpected etc/added', 'missing etc/hostname'])
    unlinkSync(join(root, 'etc', 'added'))
    writeFileSync(join(root, 'etc', 'hostname'), 'x\n')
    chmodSync(join(root, 'etc', 'hostname'), 0o666)
    expect(verifyTree(root, manifest, stats).problems).toEqual(['changed etc/hostname'])
  })
})

describe('cpu choice for cores', () => {
  it('parses cpu lists and picks `cores` CPUs, spread by sandbox id', () => {
    expect(parseCpuList('0-3,6, 8-9')).toEqual([0, 1, 2, 3, 6, 8, 9])
    expect(parseCpuList('')).toEqual([])
    expect(chooseCpus([0, 1], 4, 'x')).toEqual([0, 1])
    const picks = new Set(['a', 'b', 'c', 'd', 'e', 'f', 'g', 'h'].map((id) => chooseCpus([0, 1, 2, 3], 1, id)[0]))
    expect(picks.size).toBeGreaterThan(1)
    expect(chooseCpus([0, 1, 2, 3], 2, 'same')).toEqual(chooseCpus([0, 1, 2, 3], 2, 'same'))
    expect(chooseCpus([0, 1, 2, 3], 3, 'id')).toHaveLength(3)
  })
})
