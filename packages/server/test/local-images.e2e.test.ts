// Images of local servers: a workspace recipe layered on debian-12 (images.yaml), built once and
// cached, pinned per server, rebuilt when its recipe changes or its cache is corrupted; bad names
// and bad recipes fail cleanly. Real sandboxes and real apt (root).
import { existsSync, mkdirSync, readdirSync, readFileSync, rmSync, unlinkSync, writeFileSync } from 'node:fs'
import { join } from 'node:path'
import { afterAll, beforeAll, expect, it } from 'vitest'
import { runCli, tempWorkspace } from '../../../tests/helpers/cli'
import { cleanupPrefix, describeSandbox, systemSsh, tearDownSandboxes, useSubnet } from './helpers/local'

const SUBNET = '10.213.7.0/24'
const BRIDGE = 'provt7'
const CACHE = process.env.PROV_IMAGE_CACHE || '/var/cache/prov/images'
// Unique per run: the image cache is shared by every workspace of the machine.
const WEB = `e2e-web-${process.pid}`
const BAD = `e2e-bad-${process.pid}`

type Ws = Awaited<ReturnType<typeof tempWorkspace>>
let ws: Ws
const cli = (args: string[], input?: string) => runCli('prov-server', args, { env: ws.env, cwd: ws.path, input, timeoutMs: 900_000 })
const ipOf = async (name: string) =>
  ((await cli(['list', '--out', 'json'])).json() as { name: string; ip_address: string }[]).find((s) => s.name === name)?.ip_address as string
const inside = async (name: string, command: string) => systemSsh(ws.path, await ipOf(name), command)

interface ImageRecord {
  name: string
  hash: string
  status: string
  current: boolean
  action?: string
  path: string
  problems?: string[]
  in_use: string[]
}
const images = async () => (await cli(['image', 'list', '--out', 'json'])).json() as ImageRecord[]

function writeRecipes(version: string) {
  writeFileSync(
    join(ws.path, 'images.yaml'),
    [
      'images:',
      `  ${WEB}:`,
      '    from: debian-12',
      '    packages: [redis-tools]',
      '    files:',
      '      - path: /etc/prov-image-version',
      `        content: "${version}\\n"`,
      `  ${BAD}:`,
      '    packages: [no-such-package-prov]',
      '',
    ].join('\n'),
  )
}

function servers(entries: { name: string; image: string }[]) {
  writeFileSync(
    join(ws.path, 'infra', 'img', 'servers.yaml'),
    `servers:\n${entries.map((e) => `  - name: ${e.name}\n    provider: local\n    image: ${e.image}\n`).join('')}`,
  )
}

describeSandbox('local server images (root)', { timeout: 1_200_000 }, () => {
  beforeAll(async () => {
    cleanupPrefix(BRIDGE)
    ws = await tempWorkspace('images')
    useSubnet(ws.path, SUBNET, BRIDGE, false)
    mkdirSync(join(ws.path, 'infra', 'img'), { recursive: true })
    writeRecipes('1')
  })

  afterAll(() => tearDownSandboxes(ws, BRIDGE, { also: () => cli(['image', 'rm', WEB, BAD, '--yes', '-q']) }))

  it('an unknown image name: exit 5 naming the images there are; nothing changes', async () => {
    servers([{ name: 'img-01', image: 'debian-13' }])
    const plan = await cli(['plan', '--infra', 'img'])
    expect(plan.code).toBe(5)
    expect(plan.stderr).toMatch(
      /server 'img-01': unknown image 'debian-13' \(at infra\/img\/servers\.yaml:\d+\); hint: .*images: debian-12, e2e-web-\d+, e2e-bad-\d+/,
    )
    expect(plan.stderr.trim().split('\n')).toHaveLength(1)
    const create = await cli(['create', 'img-01', '--infra', 'img'])
    expect(create.code).toBe(5)
    expect(existsSync(join(ws.path, '.prov', 'servers.json')) ? readFileSync(join(ws.path, '.prov', 'servers.json'), 'utf8') : '{}').not.toContain('img-01')
  })

  it("a recipe with an unknown package: the build fails with apt's message and leaves nothing half-built", async () => {
    const r = await cli(['image', 'build', BAD])
    expect(r.code).toBe(1)
    expect(r.stderr).toMatch(/image e2e-bad-\d+: build failed \(exit \d+\): E: Unable to locate package no-such-package-prov/)
    const left = readdirSync(CACHE).filter((e) => e.includes(BAD))
    expect(left).toEqual([])
  })

  it('build, then build again: built once, kept the second time', async () => {
    const first = await cli(['image', 'build', WEB, '--out', 'json'])
    expect(first.code, first.stderr).toBe(0)
    expect(first.json()).toMatchObject([{ name: WEB, status: 'ready', action: 'built' }])
    const again = await cli(['image', 'build', WEB, '--out', 'json'])
    expect(again.json()).toMatchObject([{ name: WEB, status: 'ready', action: 'kept' }])
    const listed = (await images()).find((i) => i.name === WEB)
    expect(listed).toMatchObject({ status: 'ready' })
  })

  it('a server of that image has its packages and files, on Debian 12', async () => {
    servers([{ name: 'img-01', image: WEB }])
    const applied = await cli(['apply', '--yes', '-q'], (await cli(['plan', '--infra', 'img', '-q'])).stdout)
    expect(applied.code, applied.stderr).toBe(0)
    const r = await inside('img-01', 'cat /etc/prov-image-version; redis-cli --version; . /etc/os-release; echo $VERSION_CODENAME')
    expect(r.stdout).toMatch(/^1\nredis-cli 7[^\n]*\nbookworm\n$/)
    // Packages installed over the image leave no manuals or docs (copyright kept), and man-db does not re-index.
    const slim = await inside(
      'img-01',
      'find /usr/share/man /usr/share/doc/redis-tools -type f 2>/dev/null; grep -A2 "^Name: man-db/auto-update" /var/cache/debconf/config.dat | grep ^Value',
    )
    expect(slim.stdout).toBe('/usr/share/doc/redis-tools/copyright\nValue: false\n')
  })

  it('a changed recipe builds a new image; the existing server keeps its own (even across stop/start); recreated, it gets the new one', async () => {
    writeRecipes('2')
    const built = await cli(['image', 'build', WEB, '--out', 'json'])
    expect(built.code, built.stderr).toBe(0)
    expect(built.json()).toMatchObject([{ action: 'built' }])
    expect((await cli(['restart', 'img-01', '--yes', '-q'])).code).toBe(0)
    expect((await inside('img-01', 'cat /etc/prov-image-version')).stdout.trim()).toBe('1')
    expect((await cli(['delete', 'img-01', '--yes', '-q'])).code).toBe(0)
    expect((await cli(['create', 'img-01', '--infra', 'img', '-q'])).code).toBe(0)
    expect((await inside('img-01', 'cat /etc/prov-image-version')).stdout.trim()).toBe('2')
    // The build of the old recipe is still listed, as not current.
    expect((await images()).filter((i) => i.name === WEB)).toHaveLength(2)
  })

  it('a corrupted cache is detected and rebuilt before use', async () => {
    const current = (await images()).find((i) => i.name === WEB && i.current) as ImageRecord
    expect(current.status).toBe('ready')
    const file = join(current.path, 'rootfs', 'etc', 'prov-image-version')
    writeFileSync(file, 'tampered\n')
    const listed = (await images()).find((i) => i.path === current.path) as ImageRecord
    expect(listed.status).toBe('corrupted')
    expect(listed.problems).toEqual(['changed etc/prov-image-version'])
    servers([
      { name: 'img-01', image: WEB },
      { name: 'img-02', image: WEB },
    ])
    const created = await cli(['create', 'img-02', '--infra', 'img'])
    expect(created.code, created.stderr).toBe(0)
    expect(created.stderr).toMatch(/image e2e-web-\d+: corrupted: changed etc\/prov-image-version; rebuilding/)
    expect((await inside('img-02', 'cat /etc/prov-image-version')).stdout.trim()).toBe('2')
    expect((await images()).find((i) => i.path === current.path)?.status).toBe('ready')
    // A missing file is noticed too.
    unlinkSync(join(current.path, 'rootfs', 'etc', 'prov-image-version'))
    expect((await images()).find((i) => i.path === current.path)).toMatchObject({ status: 'corrupted', problems: ['missing etc/prov-image-version'] })
    const rebuilt = await cli(['image', 'build', WEB, '--out', 'json'])
    expect(rebuilt.json()).toMatchObject([{ status: 'ready', action: 'rebuilt' }])
  })

  it('image rm: refused while servers use it; previews with --check; needs --yes; unknown names exit 5', async () => {
    // The servers so far run on builds that were replaced since (kept aside while used); a fresh one uses the current build.
    expect((await cli(['delete', 'img-02', '--yes', '-q'])).code).toBe(0)
    expect((await cli(['create', 'img-02', '--infra', 'img', '-q'])).code).toBe(0)
    expect((await images()).find((i) => i.name === WEB && i.current)?.in_use).toEqual([expect.stringMatching(/^provt7-img-02-/)])
    const inUse = await cli(['image', 'rm', WEB, '--yes'])
    expect(inUse.code).toBe(1)
    expect(inUse.stderr).toMatch(/image in use by running servers: e2e-web-\d+ by provt7-img-02-/)
    expect((await images()).filter((i) => i.name === WEB).length).toBeGreaterThan(0)
    const unknown = await cli(['image', 'rm', 'no-such-image'])
    expect(unknown.code).toBe(5)
    expect(unknown.stderr).toMatch(/unknown image 'no-such-image'.*images: debian-12/)
    expect((await cli(['delete', '--all', '--yes', '-q'])).code).toBe(0)
    const check = await cli(['image', 'rm', WEB, '--check', '--out', 'json'])
    expect(check.code).toBe(0)
    expect((check.json() as { action: string }[]).every((p) => p.action === 'remove')).toBe(true)
    const unconfirmed = await cli(['image', 'rm', WEB])
    expect(unconfirmed.code).toBe(2)
    expect(unconfirmed.stderr).toMatch(/refusing to remove images without --yes/)
    const removed = await cli(['image', 'rm', WEB, '--yes', '--out', 'json'])
    expect(removed.code, removed.stderr).toBe(0)
    expect((removed.json() as { removed: boolean }[]).every((r) => r.removed)).toBe(true)
    expect(readdirSync(CACHE).filter((e) => e.startsWith(`${WEB}-`))).toEqual([])
    rmSync(join(ws.path, 'images.yaml'))
  })
})
