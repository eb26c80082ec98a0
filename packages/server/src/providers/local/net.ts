import { execFile } from 'node:child_process'
import { failedError } from '@prov/core'

export interface CommandResult {
  code: number
  stdout: string
  stderr: string
}

/** Runs a system command (ip, iptables, ssh-keygen...) without a shell; `input` goes to its stdin. */
export function sh(file: string, args: string[], timeoutMs = 30_000, input?: string): Promise<CommandResult> {
  return new Promise((resolve, reject) => {
    const child = execFile(file, args, { timeout: timeoutMs, maxBuffer: 8 << 20 }, (error, stdout, stderr) => {
      const err = error as (NodeJS.ErrnoException & { code?: number | string }) | null
      if (err && typeof err.code === 'string') return reject(failedError(`cannot run ${file}: ${err.message}`, { hint: `install ${file}` }))
      resolve({ code: err ? (typeof err.code === 'number' ? err.code : 1) : 0, stdout: String(stdout), stderr: String(stderr) })
    })
    if (input !== undefined) {
      // A command that exits before reading its input reports that through its exit code.
      child.stdin?.on('error', () => undefined)
      child.stdin?.end(input)
    }
  })
}

/** Like sh() but fails with the command's stderr on a non-zero exit. */
export async function must(file: string, args: string[], what?: string): Promise<string> {
  return mustWithInput(file, args, undefined, what)
}

/** must() with `input` on the command's stdin. */
export async function mustWithInput(file: string, args: string[], input: string | undefined, what?: string): Promise<string> {
  const result = await sh(file, args, 30_000, input)
  if (result.code !== 0) {
    throw failedError(`${what ?? `${file} ${args.join(' ')}`} failed: ${result.stderr.trim() || `exit ${result.code}`}`)
  }
  return result.stdout
}

/** IPv4 helpers for the sandbox subnet. */
export interface Subnet {
  cidr: string
  base: number
  prefix: number
  size: number
}

export const ipToInt = (ip: string) => ip.split('.').reduce((n, part) => (n << 8) + Number(part), 0) >>> 0
export const intToIp = (n: number) => [n >>> 24, (n >>> 16) & 255, (n >>> 8) & 255, n & 255].join('.')

export function parseSubnet(cidr: string): Subnet {
  const match = /^(\d+\.\d+\.\d+\.\d+)\/(\d+)$/.exec(cidr)
  if (!match) throw failedError(`not a CIDR subnet: ${cidr}`)
  const prefix = Number(match[2])
  if (prefix < 16 || prefix > 29) throw failedError(`subnet ${cidr} must have a prefix between /16 and /29`)
  const size = 2 ** (32 - prefix)
  const base = (ipToInt(match[1]) & ~(size - 1)) >>> 0
  return { cidr: `${intToIp(base)}/${prefix}`, base, prefix, size }
}

export const hostAddress = (subnet: Subnet) => intToIp(subnet.base + 1)

export function inSubnet(subnet: Subnet, ip: string): boolean {
  if (!/^\d+\.\d+\.\d+\.\d+$/.test(ip)) return false
  const n = ipToInt(ip)
  return n > subnet.base + 1 && n < subnet.base + subnet.size - 1
}

/** The lowest free sandbox address (.2 upwards; .1 is the host's). */
export function allocateAddress(subnet: Subnet, used: Set<string>): string | undefined {
  for (let n = subnet.base + 2; n < subnet.base + subnet.size - 1; n++) {
    const ip = intToIp(n)
    if (!used.has(ip)) return ip
  }
  return undefined
}
