import { execFileSync } from 'node:child_process'
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { afterAll, describe, expect, it } from 'vitest'
import { generateOpenSshEd25519 } from '../src/util/ssh-keygen'

const dir = mkdtempSync(join(tmpdir(), 'prov-keygen-'))
afterAll(() => rmSync(dir, { recursive: true, force: true }))

describe('generateOpenSshEd25519', () => {
  it('writes keys OpenSSH reads back: ssh-keygen derives the same public key and comment from the private file', () => {
    for (const comment of ['root@web-1', '']) {
      const pair = generateOpenSshEd25519(comment)
      const file = join(dir, `key-${comment || 'none'}`)
      writeFileSync(file, pair.privateKey, { mode: 0o600 })
      const derived = execFileSync('ssh-keygen', ['-y', '-f', file], { encoding: 'utf8' }).trim()
      expect(derived.split(' ').slice(0, 2)).toEqual(pair.publicKey.split(' ').slice(0, 2))
      const fingerprint = execFileSync('ssh-keygen', ['-l', '-f', file], { encoding: 'utf8' })
      expect(fingerprint).toMatch(/^256 SHA256:\S+ .*\(ED25519\)/)
      if (comment) expect(fingerprint).toContain(comment)
      expect(pair.publicKey).toBe(comment ? `${derived.split(' ').slice(0, 2).join(' ')} ${comment}` : derived.split(' ').slice(0, 2).join(' '))
    }
  })

  it('makes a new key every call', () => {
    expect(generateOpenSshEd25519('a').publicKey).not.toBe(generateOpenSshEd25519('a').publicKey)
  })
})
