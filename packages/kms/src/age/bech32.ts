/** Bech32 (BIP 173) as age uses it: no length limit, one case throughout. */

const CHARSET = 'qpzry9x8gf2tvdw0s3jn54khce6mua7l'
const GENERATORS = [0x3b6a57b2, 0x26508e6d, 0x1ea119fa, 0x3d4233dd, 0x2a1462b3]

function polymod(values: number[]): number {
  let chk = 1
  for (const v of values) {
    const top = chk >>> 25
    chk = ((chk & 0x1ffffff) << 5) ^ v
    for (let i = 0; i < 5; i++) if ((top >>> i) & 1) chk ^= GENERATORS[i]
  }
  return chk
}

const expandHrp = (hrp: string) => [...[...hrp].map((c) => c.charCodeAt(0) >>> 5), 0, ...[...hrp].map((c) => c.charCodeAt(0) & 31)]

function convertBits(data: number[], from: number, to: number, pad: boolean): number[] | undefined {
  let acc = 0
  let bits = 0
  const out: number[] = []
  const max = (1 << to) - 1
  for (const value of data) {
    acc = (acc << from) | value
    bits += from
    while (bits >= to) {
      bits -= to
      out.push((acc >>> bits) & max)
    }
  }
  if (pad) {
    if (bits > 0) out.push((acc << (to - bits)) & max)
  } else if (bits >= from || (acc << (to - bits)) & max) return undefined
  return out
}

/** The human-readable part (lower case) and the data; undefined when malformed or the checksum is wrong. */
export function bech32Decode(text: string): { hrp: string; data: Buffer } | undefined {
  const lower = text.toLowerCase()
  if (text !== lower && text !== text.toUpperCase()) return undefined
  const sep = lower.lastIndexOf('1')
  if (sep < 1 || sep + 7 > lower.length) return undefined
  const hrp = lower.slice(0, sep)
  const values: number[] = []
  for (const c of lower.slice(sep + 1)) {
    const v = CHARSET.indexOf(c)
    if (v < 0) return undefined
    values.push(v)
  }
  if (polymod([...expandHrp(hrp), ...values]) !== 1) return undefined
  const bytes = convertBits(values.slice(0, -6), 5, 8, false)
  return bytes ? { hrp, data: Buffer.from(bytes) } : undefined
}

export function bech32Encode(hrp: string, data: Buffer): string {
  const values = convertBits([...data], 8, 5, true) as number[]
  const mod = polymod([...expandHrp(hrp), ...values, 0, 0, 0, 0, 0, 0]) ^ 1
  const checksum = Array.from({ length: 6 }, (_, i) => (mod >>> (5 * (5 - i))) & 31)
  return `${hrp}1${[...values, ...checksum].map((v) => CHARSET[v]).join('')}`
}
