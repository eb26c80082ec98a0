import { createHash, createPrivateKey, createPublicKey, type KeyObject, sign, verify } from 'node:crypto'
import { existsSync, readFileSync } from 'node:fs'
import { assertPrivateKeyMode, deniedError, forEachLimit, registerSecretValue, usageError } from '@prov/core'
import { descriptorFor } from './digest'
import { parseJson } from './json'
import { parseManifest } from './manifest'
import { copyBlob, type Target } from './target'
import { type Descriptor, type ImageManifest, MAX_CONFIG_BYTES, MEDIA, PROV_ARTIFACT, PROV_SIGNATURE_PAYLOAD } from './types'

const SIG = 'dev.prov.signature'
const SIG_KEY = 'dev.prov.signature.key'
const SIG_ALG = 'dev.prov.signature.algorithm'

export function readKey(path: string, kind: 'private' | 'public'): KeyObject {
  // A signing key others can read is as good as theirs: refused (exit 4) before it is read.
  if (kind === 'private' && existsSync(path)) assertPrivateKeyMode(path)
  let pem: string
  try {
    pem = readFileSync(path, 'utf8')
  } catch {
    throw usageError(`cannot read key file ${path}`, { location: path })
  }
  try {
    if (kind === 'private') {
      registerSecretValue(pem)
      return createPrivateKey(pem)
    }
    return createPublicKey(pem)
  } catch (error) {
    throw usageError(`${path} is not a PEM ${kind} key: ${(error as Error).message.split('\n')[0]}`, { location: path })
  }
}

/** sha256 of the public key (SPKI DER): names the key without revealing anything. */
export function keyFingerprint(key: KeyObject): string {
  const publicKey = key.type === 'private' ? createPublicKey(key) : key
  return `sha256:${createHash('sha256')
    .update(publicKey.export({ type: 'spki', format: 'der' }))
    .digest('hex')}`
}

function algorithmOf(key: KeyObject): 'ed25519' | 'ecdsa-p256-sha256' {
  if (key.asymmetricKeyType === 'ed25519') return 'ed25519'
  if (key.asymmetricKeyType === 'ec' && key.asymmetricKeyDetails?.namedCurve === 'prime256v1') return 'ecdsa-p256-sha256'
  throw usageError(`unsupported key type '${key.asymmetricKeyType}${key.asymmetricKeyDetails?.namedCurve ? ` ${key.asymmetricKeyDetails.namedCurve}` : ''}'`, {
    hint: 'use an ed25519 or ECDSA P-256 key (openssl genpkey -algorithm ed25519)',
  })
}

export interface SignResult {
  schema: 'prov.oci.signature/v1'
  reference: string
  subject: string
  signature: string
  key: string
  algorithm: string
  referrers: 'api' | 'fallback-tag' | 'layout'
}

/** Signs the manifest `reference` points at and stores the signature as a referrer artifact. */
/** The signing key: readable by its owner only (exit 4), a PEM private key of a supported type (exit 2). */
export function signingKey(keyPath: string): { key: KeyObject; algorithm: 'ed25519' | 'ecdsa-p256-sha256'; fingerprint: string } {
  const key = readKey(keyPath, 'private')
  return { key, algorithm: algorithmOf(key), fingerprint: keyFingerprint(key) }
}

export async function signManifest(target: Target, reference: string, keyPath: string, displayRef: string): Promise<SignResult> {
  const { key, algorithm } = signingKey(keyPath)
  const subject = await target.resolve(reference)
  const payload = Buffer.from(
    JSON.stringify({
      schema: 'prov.oci.signature.payload/v1',
      critical: { identity: { reference: displayRef }, image: { manifest_digest: subject.digest }, type: 'prov signature' },
    }),
  )
  const signature = sign(algorithm === 'ed25519' ? null : 'sha256', payload, key).toString('base64')
  const empty = Buffer.from('{}')
  const payloadDescriptor = descriptorFor(PROV_SIGNATURE_PAYLOAD, payload)
  const manifest: ImageManifest = {
    schemaVersion: 2,
    mediaType: MEDIA.manifest,
    artifactType: PROV_ARTIFACT.signature,
    config: descriptorFor(MEDIA.empty, empty),
    layers: [payloadDescriptor],
    subject: { mediaType: subject.mediaType, digest: subject.digest, size: subject.size },
    annotations: { [SIG]: signature, [SIG_KEY]: keyFingerprint(key), [SIG_ALG]: algorithm },
  }
  const bytes = Buffer.from(JSON.stringify(manifest))
  const descriptor = descriptorFor(MEDIA.manifest, bytes, { artifactType: PROV_ARTIFACT.signature, annotations: manifest.annotations })
  await target.pushBlob(manifest.config, empty)
  await target.pushBlob(payloadDescriptor, payload)
  await target.pushManifest(descriptor, bytes)
  const referrers: SignResult['referrers'] = target.publishReferrer ? await target.publishReferrer(subject, descriptor) : 'layout'
  return {
    schema: 'prov.oci.signature/v1',
    reference: displayRef,
    subject: subject.digest,
    signature: descriptor.digest,
    key: keyFingerprint(key),
    algorithm,
    referrers,
  }
}

export interface VerifyResult {
  schema: 'prov.oci.verification/v1'
  reference: string
  subject: string
  verified: boolean
  signature?: string
  key?: string
  algorithm?: string
  checked: number
}

/** Finds a signature of `subjectDigest` made by one of `keys`; throws exit 4 when none holds. */
export async function verifyManifest(target: Target, subject: Descriptor, keys: KeyObject[], displayRef: string): Promise<VerifyResult> {
  if (!keys.length) throw usageError('no public key to verify with', { hint: 'pass --key PUB.pem or set oci.trusted_keys' })
  const byFingerprint = new Map(keys.map((k) => [keyFingerprint(k), k]))
  const candidates = await target.referrers(subject.digest, PROV_ARTIFACT.signature)
  let checked = 0
  for (const candidate of candidates) {
    checked++
    try {
      const { descriptor, bytes } = await target.fetchManifest(candidate.digest)
      const parsed = parseManifest(bytes, descriptor, target.name)
      if (parsed.type !== 'manifest') continue
      const manifest = parsed.value
      if (manifest.subject?.digest !== subject.digest || manifest.artifactType !== PROV_ARTIFACT.signature) continue
      const fingerprint = manifest.annotations?.[SIG_KEY] ?? ''
      const key = byFingerprint.get(fingerprint)
      const layer = manifest.layers[0]
      if (!key || !layer || layer.mediaType !== PROV_SIGNATURE_PAYLOAD) continue
      if (layer.size > MAX_CONFIG_BYTES) continue
      const payload = await target.fetchBlob(layer)
      if (signedDigest(payload) !== subject.digest) continue
      const algorithm = algorithmOf(key)
      const ok = verify(algorithm === 'ed25519' ? null : 'sha256', payload, key, Buffer.from(manifest.annotations?.[SIG] ?? '', 'base64'))
      if (ok) {
        return {
          schema: 'prov.oci.verification/v1',
          reference: displayRef,
          subject: subject.digest,
          verified: true,
          signature: descriptor.digest,
          key: fingerprint,
          algorithm,
          checked,
        }
      }
    } catch {
      // a broken signature artifact is just not a valid signature
    }
  }
  throw deniedError(
    checked ? `no valid signature by a trusted key for ${displayRef} (${checked} signature(s) checked): refused` : `${displayRef} is not signed: refused`,
    { location: subject.digest, hint: 'sign it with prov-oci sign REF --key KEY.pem, or check oci.trusted_keys' },
  )
}

/** Copies signature artifacts of `subject` along with it (used by pull into the cache and copy). */
export async function copyReferrers(src: Target, dst: Target, subject: Descriptor, parallel = 4): Promise<number> {
  let referrers: Descriptor[]
  try {
    referrers = await src.referrers(subject.digest, PROV_ARTIFACT.signature)
  } catch {
    return 0
  }
  for (const referrer of referrers) {
    const { descriptor, bytes } = await src.fetchManifest(referrer.digest)
    const parsed = parseManifest(bytes, descriptor, src.name)
    if (parsed.type !== 'manifest') continue
    await forEachLimit([parsed.value.config, ...parsed.value.layers], parallel, async (blob) => {
      if (!(await dst.exists(blob))) await copyBlob(src, dst, blob)
    })
    const full = { ...descriptor, artifactType: parsed.value.artifactType, annotations: parsed.value.annotations }
    await dst.pushManifest(full, bytes)
    await dst.publishReferrer?.(subject, full)
  }
  return referrers.length
}

export function trustedKeys(paths: string[]): KeyObject[] {
  return paths.map((p) => readKey(p, 'public'))
}

/** The manifest digest a signature payload claims; a payload that is not such JSON claims nothing. */
function signedDigest(payload: Buffer): string | undefined {
  try {
    return parseJson<{ critical?: { image?: { manifest_digest?: string } } } | null>(payload, 'signature payload')?.critical?.image?.manifest_digest
  } catch {
    return undefined
  }
}
