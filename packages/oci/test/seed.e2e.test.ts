import { join } from 'node:path'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { runCli, tempWorkspace } from '../../../tests/helpers/cli'
import { prerequisitesMet, sandboxPrerequisites } from '../../../tests/helpers/prerequisites'
import { cleanupPrefix, systemSsh, tearDownSandboxes, useSubnet } from '../../server/test/helpers/local'

const canSandbox = prerequisitesMet('prov-oci seed on a local sandbox server', sandboxPrerequisites)

// Own subnet and bridge for the seed test: nothing clashes with other suites.
const SUBNET = '10.213.3.0/24'
const BRIDGE = 'provt3'

type Ws = Awaited<ReturnType<typeof tempWorkspace>>
let ws: Ws
let ip: string
const oci = (args: string[]) => runCli('prov-oci', args, { env: { ...ws.env, XDG_CACHE_HOME: join(ws.root, 'cache') }, cwd: ws.path, timeoutMs: 240_000 })

describe.skipIf(!canSandbox)('seed: a bundle seeds a fresh local sandbox server over SSH', () => {
  beforeAll(async () => {
    cleanupPrefix(BRIDGE)
    ws = await tempWorkspace('seedsrc', 'full')
    useSubnet(ws.path, SUBNET, BRIDGE)
    const created = await runCli('prov-server', ['create', 'seed-01', '--provider', 'local', '--out', 'json'], {
      env: ws.env,
      cwd: ws.path,
      timeoutMs: 180_000,
    })
    if (created.code !== 0) throw new Error(`prov-server create failed: ${created.stderr}`)
    const record = created.json()
    ip = (Array.isArray(record) ? record[0] : record).ip_address
  }, 300_000)

  afterAll(() => tearDownSandboxes(ws, BRIDGE, { verify: false }), 180_000)

  it('seed FILE.tar --server unpacks, bootstraps, and prov config show runs there', async () => {
    const file = join(ws.root, 'spore.tar')
    const bundled = await oci(['bundle', '--to', file])
    expect(bundled.code, bundled.stderr).toBe(0)
    const seeded = await oci(['seed', file, '--server', 'seed-01'])
    expect(seeded.code, seeded.stderr).toBe(0)
    const result = seeded.json()
    expect(result).toMatchObject({
      schema: 'prov.oci.seed/v1',
      server: 'seed-01',
      workspace: 'seedsrc',
      destination: '/opt/prov/seedsrc',
      digest: bundled.json().digest,
      // The image has no Node.js: seed ships this one with the prov runtime.
      runtime: 'shipped-with-node',
      bootstrap: { ok: true },
      prov_config_show: true,
    })
    expect(JSON.stringify(result)).not.toMatch(/PRIVATE KEY|AGE-SECRET-KEY/)
    // On the server itself: the workspace is there, no .prov state came along, prov runs from it.
    const listing = systemSsh(ws.path, ip, 'ls -A /opt/prov/seedsrc/workspace && test ! -e /opt/prov/seedsrc/workspace/.prov/ssh && echo no-keys')
    expect(listing.stdout).toMatch(/prov\.config\.yaml/)
    expect(listing.stdout).toMatch(/no-keys/)
    const show = systemSsh(ws.path, ip, '. /opt/prov/seedsrc/env.sh && prov config show -o json')
    expect(show.status, show.stderr).toBe(0)
    expect(JSON.parse(show.stdout).workspace.name).toBe('seedsrc')
    // Nothing of it on the seeding host: the sandbox root is its own copy.
    expect(systemSsh(ws.path, ip, 'hostname').stdout.trim()).toBe('seed-01')
  }, 300_000)

  it('seeding again from the embedded layout replaces the previous copy', async () => {
    expect((await oci(['bundle', '-q'])).code).toBe(0)
    const seeded = await oci(['seed', `layout:${join(ws.path, '.prov', 'oci')}:bundle`, '--server', 'seed-01', '--dest', '/opt/prov/again'])
    expect(seeded.code, seeded.stderr).toBe(0)
    expect(seeded.json().destination).toBe('/opt/prov/again')
  }, 300_000)

  it('bad input: unknown server (exit 5), not a bundle (exit 2); --check previews', async () => {
    const file = join(ws.root, 'spore.tar')
    const unknown = await oci(['seed', file, '--server', 'nope-01'])
    expect(unknown.code).toBe(5)
    expect(unknown.stderr).toMatch(/unknown server 'nope-01'/)
    // The destination is written into shell files on the server and replaced whole: plain names, never a top-level folder.
    for (const dest of ['/etc', '/opt/', '/opt/$(touch /tmp/pwned)', '/opt/a"b', '//opt/x']) {
      const refused = await oci(['seed', file, '--server', 'seed-01', '--dest', dest, '--check'])
      expect(refused.code, dest).toBe(2)
      expect(refused.stderr, dest).toMatch(/--dest must be an absolute folder below a top-level one/)
    }
    const layout = join(ws.root, 'ext-layout')
    const redis = join(ws.root, '..', 'redis-ext')
    await runCli('prov', ['ext', 'new', 'taskserv', 'redisx', '--path', redis], { env: ws.env, cwd: ws.path })
    expect((await oci(['package', join(redis, 'redisx'), '--to', `layout:${layout}:v1`])).code).toBe(0)
    const notBundle = await oci(['seed', `layout:${layout}:v1`, '--server', 'seed-01'])
    expect(notBundle.code).toBe(2)
    expect(notBundle.stderr).toMatch(/is not a prov workspace bundle/)
    const check = await oci(['seed', file, '--server', 'seed-01', '--check'])
    expect(check.code, check.stderr).toBe(0)
    expect(check.json()).toMatchObject({ planned: true, server: 'seed-01', destination: '/opt/prov/seedsrc' })
  })
})
