import { generateKeyPairSync, randomBytes } from 'node:crypto'

/** An ed25519 key pair in OpenSSH's own formats. */
export interface OpenSshKeyPair {
  /** `-----BEGIN OPENSSH PRIVATE KEY-----` file, unencrypted (as `ssh-keygen -N ''` writes it). */
  privateKey: string
  /** The `ssh-ed25519 AAAA... comment` line. */
  publicKey: string
}

const sshString = (value: Buffer | string) => {
  const data = typeof value === 'string' ? Buffer.from(value) : value
  const length = Buffer.alloc(4)
  length.writeUInt32BE(data.length)
  return Buffer.concat([length, data])
}
const uint32 = (value: number) => {
  const out = Buffer.alloc(4)
  out.writeUInt32BE(value >>> 0)
  return out
}

/**
 * A fresh ed25519 key pair in OpenSSH's formats, made in-process by node:crypto: the same files
 * `ssh-keygen -t ed25519 -N ''` writes, without a process per key (creating many servers at once
 * spent most of a sandbox's setup waiting for ssh-keygen on a loaded host).
 */
export function generateOpenSshEd25519(comment: string): OpenSshKeyPair {
  const { privateKey, publicKey } = generateKeyPairSync('ed25519')
  const seed = Buffer.from(privateKey.export({ format: 'jwk' }).d as string, 'base64url')
  const pub = Buffer.from(publicKey.export({ format: 'jwk' }).x as string, 'base64url')
  const publicBlob = Buffer.concat([sshString('ssh-ed25519'), sshString(pub)])
  const check = randomBytes(4).readUInt32BE()
  const section = [uint32(check), uint32(check), sshString('ssh-ed25519'), sshString(pub), sshString(Buffer.concat([seed, pub])), sshString(comment)]
  let secret = Buffer.concat(section)
  // The private section is padded to the cipher's block size (8 for "none") with 1, 2, 3, ...
  const padding = Buffer.from(Array.from({ length: (8 - (secret.length % 8)) % 8 }, (_, i) => i + 1))
  secret = Buffer.concat([secret, padding])
  const body = Buffer.concat([
    Buffer.from('openssh-key-v1\0'),
    sshString('none'),
    sshString('none'),
    sshString(''),
    uint32(1),
    sshString(publicBlob),
    sshString(secret),
  ]).toString('base64')
  const lines = body.match(/.{1,70}/g) ?? []
  return {
    privateKey: `-----BEGIN OPENSSH PRIVATE KEY-----\n${lines.join('\n')}\n-----END OPENSSH PRIVATE KEY-----\n`,
    publicKey: `ssh-ed25519 ${publicBlob.toString('base64')}${comment ? ` ${comment}` : ''}`,
  }
}
