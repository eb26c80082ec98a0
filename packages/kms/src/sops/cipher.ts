/**
 * SOPS value encryption: AES-256-GCM with a 32-byte IV, the value's key path as AAD
 * ("a:b:c:"), written as ENC[AES256_GCM,data:<b64>,iv:<b64>,tag:<b64>,type:<str|int|float|bool|bytes>].
 * Values are turned into bytes the way sops does (bool -> True/False, floats without exponent),
 * which also feeds the MAC.
 */
import { createCipheriv, createDecipheriv, randomBytes } from 'node:crypto'
import { deniedError, usageError } from '@prov/core'

export type SopsScalar = string | number | boolean
export type SopsValue = SopsScalar | null | SopsValue[] | SopsMap
export type SopsMap = Map<string, SopsValue>

const encPattern = /^ENC\[AES256_GCM,data:(.*),iv:(.+),tag:(.+),type:(.+)\]$/

export function isEncrypted(value: unknown): value is string {
  return typeof value === 'string' && value.startsWith('ENC[AES256_GCM,')
}

/** Go's strconv.FormatFloat(f, 'f', -1, 64): shortest round-trip digits, never an exponent. */
export function formatFloat(value: number): string {
  if (!Number.isFinite(value)) return value > 0 ? '+Inf' : value < 0 ? '-Inf' : 'NaN'
  if (Object.is(value, -0)) return '-0'
  const [mantissa, expText] = Math.abs(value).toExponential().split('e')
  const exponent = Number(expText)
  const digits = mantissa.replace('.', '')
  const sign = value < 0 ? '-' : ''
  const point = exponent + 1
  if (point <= 0) return `${sign}0.${'0'.repeat(-point)}${digits}`
  if (point >= digits.length) return `${sign}${digits}${'0'.repeat(point - digits.length)}`
  return `${sign}${digits.slice(0, point)}.${digits.slice(point)}`
}

export function valueType(value: SopsScalar): 'str' | 'int' | 'float' | 'bool' {
  if (typeof value === 'boolean') return 'bool'
  if (typeof value === 'number') return Number.isInteger(value) && Math.abs(value) <= Number.MAX_SAFE_INTEGER ? 'int' : 'float'
  return 'str'
}

/** Bytes of a cleartext value as sops hashes and encrypts them. */
export function valueBytes(value: SopsScalar): Buffer {
  if (typeof value === 'boolean') return Buffer.from(value ? 'True' : 'False')
  if (typeof value === 'number') return Buffer.from(valueType(value) === 'int' ? String(value) : formatFloat(value))
  return Buffer.from(value, 'utf8')
}

export function encryptScalar(value: SopsScalar, key: Buffer, aad: string): string {
  if (value === '') return ''
  const iv = randomBytes(32)
  const cipher = createCipheriv('aes-256-gcm', key, iv)
  cipher.setAAD(Buffer.from(aad, 'utf8'))
  const data = Buffer.concat([cipher.update(valueBytes(value)), cipher.final()])
  return `ENC[AES256_GCM,data:${data.toString('base64')},iv:${iv.toString('base64')},tag:${cipher.getAuthTag().toString('base64')},type:${valueType(value)}]`
}

export function decryptScalar(text: string, key: Buffer, aad: string, where: string): SopsScalar {
  if (text === '') return ''
  const match = encPattern.exec(text)
  if (!match) throw usageError(`value at ${where} is not in sops' ENC[AES256_GCM,...] format`, { location: where })
  const [, data, iv, tag, type] = match
  let plain: Buffer
  try {
    const decipher = createDecipheriv('aes-256-gcm', key, Buffer.from(iv, 'base64'), { authTagLength: 16 })
    decipher.setAAD(Buffer.from(aad, 'utf8'))
    decipher.setAuthTag(Buffer.from(tag, 'base64'))
    plain = Buffer.concat([decipher.update(Buffer.from(data, 'base64')), decipher.final()])
  } catch {
    throw deniedError(`cannot decrypt the value at ${where}: it was altered or moved`, { location: where, hint: 'the file failed its integrity check' })
  }
  const text8 = plain.toString('utf8')
  switch (type) {
    case 'str':
    case 'comment':
    case 'time':
      return text8
    case 'bytes':
      return text8
    case 'int': {
      const n = Number.parseInt(text8, 10)
      if (!/^[-+]?\d+$/.test(text8)) throw usageError(`bad int at ${where}`, { location: where })
      return n
    }
    case 'float':
      return Number.parseFloat(text8)
    case 'bool':
      if (!/^(true|false|1|0|t|f)$/i.test(text8)) throw usageError(`bad bool at ${where}`, { location: where })
      return /^(true|1|t)$/i.test(text8)
    default:
      throw usageError(`unknown sops value type '${type}' at ${where}`, { location: where })
  }
}
