import { generateKeyPairSync } from 'node:crypto'
import { chmodSync, chownSync, mkdirSync, mkdtempSync, rmSync, statSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { dirname, join } from 'node:path'
import { ProvError } from '@prov/core'
import { afterAll, describe, expect, it } from 'vitest'
import { packageExtension, pushBuilt } from '../src/artifact'
import { descriptorFor } from '../src/digest'
import { LayoutTarget } from '../src/layout'
import { readKey, signManifest, verifyManifest } from '../src/sign'
import type { ImageManifest } from '../src/types'

const temp = mkdtempSync(join(tmpdir(), 'prov-oci-sign-'))
afterAll(() => rmSync(temp, { recursive: true, force: true }))

function keyFiles(name: string, type: 'ed25519' | 'ec') {
  const pair = type === 'ed25519' ? generateKeyPairSync('ed25519') : generateKeyPairSync('ec', { namedCurve: 'prime256v1' })
  const priv = join(temp, `${name}.pem`)
  const pub = join(temp, `${name}.pub`)
  writeFileSync(priv, pair.privateKey.export({ type: 'pkcs8', format: 'pem' }), { mode: 0o600 })
  writeFileSync(pub, pair.publicKey.export({ type: 'spki', format: 'pem' }))
  return { priv, pub }
}

async function signedLayout(name: string) {
  const dir = join(temp, `${name}-ext`)
  mkdirSync(dir, { recursive: true })
  writeFileSync(join(dir, 'manifest.yaml'), `name: ${name}\nkind: taskserv\nversion: 1.0.0\n`)
  const layout = new LayoutTarget(join(temp, `${name}-layout`))
  await pushBuilt(layout, packageExtension(dir), 'v1')
  return layout
}

async function denied(promise: Promise<unknown>): Promise<string> {
  try {
    await promise
  } catch (error) {
    expect(error).toBeInstanceOf(ProvError)
    expect((error as ProvError).code).toBe(4)
    return (error as ProvError).message
  }
  throw new Error('expected a refusal')
}

describe('signatures', () => {
  it('ed25519 and ECDSA P-256 signatures verify; other keys do not', async () => {
    const layout = await signedLayout('sigok')
    const ed = keyFiles('ed', 'ed25519')
    const ec = keyFiles('ec', 'ec')
    const other = keyFiles('other', 'ed25519')
    const subject = await layout.resolve('v1')
    expect((await signManifest(layout, 'v1', ed.priv, 'sigok:v1')).algorithm).toBe('ed25519')
    expect((await signManifest(layout, 'v1', ec.priv, 'sigok:v1')).algorithm).toBe('ecdsa-p256-sha256')
    expect((await verifyManifest(layout, subject, [readKey(ed.pub, 'public')], 'sigok:v1')).verified).toBe(true)
    expect((await verifyManifest(layout, subject, [readKey(ec.pub, 'public')], 'sigok:v1')).verified).toBe(true)
    expect(await denied(verifyManifest(layout, subject, [readKey(other.pub, 'public')], 'sigok:v1'))).toMatch(/no valid signature/)
  })

  it('a forged signature (right key id, wrong bytes) is refused', async () => {
    const layout = await signedLayout('forged')
    const ed = keyFiles('forger', 'ed25519')
    const subject = await layout.resolve('v1')
    const real = await signManifest(layout, 'v1', ed.priv, 'forged:v1')
    const { bytes } = await layout.fetchManifest(real.signature)
    const manifest = JSON.parse(bytes.toString()) as ImageManifest
    const annotations = manifest.annotations as Record<string, string>
    annotations['dev.prov.signature'] = Buffer.alloc(64, 7).toString('base64')
    const forgedBytes = Buffer.from(JSON.stringify(manifest))
    await layout.pushManifest(descriptorFor(manifest.mediaType as string, forgedBytes), forgedBytes)
    await layout.delete(real.signature)
    expect(await denied(verifyManifest(layout, subject, [readKey(ed.pub, 'public')], 'forged:v1'))).toMatch(
      /no valid signature by a trusted key for forged:v1 \(1 signature/,
    )
  })

  it('a signature of another manifest does not count; an unsigned artifact is refused', async () => {
    const a = await signedLayout('sig-a')
    const ed = keyFiles('cross', 'ed25519')
    expect(await denied(verifyManifest(a, await a.resolve('v1'), [readKey(ed.pub, 'public')], 'sig-a:v1'))).toMatch(/is not signed/)
    await signManifest(a, 'v1', ed.priv, 'sig-a:v1')
    const other = await signedLayout('sig-b')
    expect(await denied(verifyManifest(other, await other.resolve('v1'), [readKey(ed.pub, 'public')], 'sig-b:v1'))).toMatch(/is not signed/)
  })

  it('unsupported or unreadable keys are usage errors', async () => {
    const rsa = generateKeyPairSync('rsa', { modulusLength: 1024 })
    const file = join(temp, 'rsa.pem')
    writeFileSync(file, rsa.privateKey.export({ type: 'pkcs8', format: 'pem' }), { mode: 0o600 })
    const layout = await signedLayout('sig-rsa')
    await expect(signManifest(layout, 'v1', file, 'x')).rejects.toMatchObject({ code: 2 })
    await expect(signManifest(layout, 'v1', join(temp, 'missing.pem'), 'x')).rejects.toMatchObject({ code: 2 })
    writeFileSync(join(temp, 'junk.pem'), 'not a key')
    expect(() => readKey(join(temp, 'junk.pem'), 'public')).toThrow(/not a PEM public key/)
  })

  it('a private key that group or others can read is refused (exit 4) and nothing is signed', async () => {
    const layout = await signedLayout('sig-mode')
    const ed = keyFiles('open', 'ed25519')
    const before = await layout.referrers((await layout.resolve('v1')).digest)
    for (const mode of [0o644, 0o640, 0o604]) {
      chmodSync(ed.priv, mode)
      const message = await denied(signManifest(layout, 'v1', ed.priv, 'sig-mode:v1'))
      expect(message).toMatch(/private key .*open\.pem is readable by others \(mode 6[04][04]\)/)
    }
    expect(await layout.referrers((await layout.resolve('v1')).digest)).toEqual(before)
    chmodSync(ed.priv, 0o600)
    // 0600 is not enough: a key another user owns, or one in a folder others can write to, is refused too.
    if (process.getuid?.() === 0) {
      chownSync(ed.priv, 65534, 65534)
      expect(await denied(signManifest(layout, 'v1', ed.priv, 'sig-mode:v1'))).toMatch(/open\.pem belongs to another user \(uid 65534\)/)
      chownSync(ed.priv, 0, 0)
    }
    const folder = dirname(ed.priv)
    const folderMode = statSync(folder).mode & 0o7777
    chmodSync(folder, 0o777)
    try {
      expect(await denied(signManifest(layout, 'v1', ed.priv, 'sig-mode:v1'))).toMatch(/open\.pem is in a folder others can write to/)
    } finally {
      chmodSync(folder, folderMode)
    }
    expect(await layout.referrers((await layout.resolve('v1')).digest)).toEqual(before)
    expect((await signManifest(layout, 'v1', ed.priv, 'sig-mode:v1')).algorithm).toBe('ed25519')
  })
})
