import { randomBytes } from 'node:crypto'
import { lstatSync, mkdirSync, readdirSync, readFileSync, readlinkSync, renameSync, rmSync, symlinkSync, writeFileSync } from 'node:fs'
import { dirname, join, posix } from 'node:path'
import { failedError, usageError } from '@prov/core'

/** One archive entry; paths are relative and use `/`. */
export interface TarEntry {
  path: string
  type: 'file' | 'dir' | 'symlink' | 'hardlink'
  mode: number
  data?: Buffer
  linkname?: string
}

const BLOCK = 512

function octal(value: number, length: number): string {
  return `${value.toString(8).padStart(length - 1, '0')}\0`
}

function header(fields: { name: string; mode: number; size: number; mtime: number; type: string; linkname?: string; prefix?: string }): Buffer {
  const block = Buffer.alloc(BLOCK)
  block.write(fields.name, 0, 100, 'utf8')
  block.write(octal(fields.mode, 8), 100, 8, 'ascii')
  block.write(octal(0, 8), 108, 8, 'ascii')
  block.write(octal(0, 8), 116, 8, 'ascii')
  block.write(octal(fields.size, 12), 124, 12, 'ascii')
  block.write(octal(fields.mtime, 12), 136, 12, 'ascii')
  block.write('        ', 148, 8, 'ascii')
  block.write(fields.type, 156, 1, 'ascii')
  if (fields.linkname) block.write(fields.linkname, 157, 100, 'utf8')
  block.write('ustar\0', 257, 6, 'ascii')
  block.write('00', 263, 2, 'ascii')
  if (fields.prefix) block.write(fields.prefix, 345, 155, 'utf8')
  let sum = 0
  for (const byte of block) sum += byte
  block.write(`${sum.toString(8).padStart(6, '0')}\0 `, 148, 8, 'ascii')
  return block
}

function padded(data: Buffer): Buffer[] {
  const rest = data.length % BLOCK
  return rest ? [data, Buffer.alloc(BLOCK - rest)] : [data]
}

function paxRecord(key: string, value: string): string {
  const body = ` ${key}=${value}\n`
  let length = Buffer.byteLength(body) + 1
  while (String(length).length + Buffer.byteLength(body) !== length) length = String(length).length + Buffer.byteLength(body)
  return `${length}${body}`
}

/**
 * A reproducible ustar archive: entries in the given order, uid/gid 0, no user names,
 * a fixed mtime, modes normalised to 0644/0755 (0755 for dirs and executables).
 */
export function createTar(entries: TarEntry[], mtime = 0): Buffer {
  const parts: Buffer[] = []
  for (const entry of entries) {
    const name = entry.type === 'dir' && !entry.path.endsWith('/') ? `${entry.path}/` : entry.path
    const mode = entry.type === 'dir' || entry.mode & 0o111 ? 0o755 : entry.type === 'symlink' ? 0o777 : 0o644
    const data = entry.type === 'file' ? (entry.data ?? Buffer.alloc(0)) : Buffer.alloc(0)
    const type = { file: '0', dir: '5', symlink: '2', hardlink: '1' }[entry.type]
    const longName = Buffer.byteLength(name) > 100
    const longLink = entry.linkname !== undefined && Buffer.byteLength(entry.linkname) > 100
    if (longName || longLink) {
      const pax = Buffer.from((longName ? paxRecord('path', name) : '') + (longLink ? paxRecord('linkpath', entry.linkname as string) : ''))
      parts.push(header({ name: 'PaxHeader', mode: 0o644, size: pax.length, mtime, type: 'x' }), ...padded(pax))
    }
    parts.push(header({ name: longName ? name.slice(0, 99) : name, mode, size: data.length, mtime, type, linkname: longLink ? '' : entry.linkname }))
    if (data.length) parts.push(...padded(data))
  }
  parts.push(Buffer.alloc(BLOCK * 2))
  return Buffer.concat(parts)
}

/** Files of a folder, sorted by byte order of their paths, for createTar. */
export function collectEntries(root: string, options: { exclude?: (relative: string) => boolean } = {}): TarEntry[] {
  const entries: TarEntry[] = []
  const walk = (relative: string) => {
    const names = readdirSync(join(root, relative)).sort((a, b) => (Buffer.from(a) < Buffer.from(b) ? -1 : 1))
    for (const name of names) {
      const path = relative ? `${relative}/${name}` : name
      if (options.exclude?.(path)) continue
      const full = join(root, path)
      const stat = lstatSync(full)
      if (stat.isDirectory()) {
        entries.push({ path, type: 'dir', mode: 0o755 })
        walk(path)
      } else if (stat.isSymbolicLink()) {
        const linkname = readlinkSync(full)
        if (posix.isAbsolute(linkname) || posix.normalize(posix.join(posix.dirname(path), linkname)).startsWith('..')) {
          throw usageError(`symbolic link ${path} -> ${linkname} points outside the folder`, {
            location: full,
            hint: 'replace it by a copy or a relative link',
          })
        }
        entries.push({ path, type: 'symlink', mode: 0o777, linkname })
      } else if (stat.isFile()) {
        entries.push({ path, type: 'file', mode: stat.mode & 0o777, data: readFileSync(full) })
      }
    }
  }
  walk('')
  return entries
}

function readString(block: Buffer, offset: number, length: number): string {
  const slice = block.subarray(offset, offset + length)
  const end = slice.indexOf(0)
  return slice.subarray(0, end < 0 ? length : end).toString('utf8')
}

function readOctal(block: Buffer, offset: number, length: number, where: string): number {
  if (block[offset] & 0x80) throw failedError(`tar header with a base-256 number: unsupported`, { location: where })
  const text = readString(block, offset, length).trim()
  if (!text) return 0
  if (!/^[0-7]+$/.test(text)) throw failedError(`corrupt tar header (number '${text}')`, { location: where })
  return Number.parseInt(text, 8)
}

function parsePax(data: Buffer): Record<string, string> {
  const out: Record<string, string> = {}
  let offset = 0
  while (offset < data.length) {
    const space = data.indexOf(0x20, offset)
    if (space < 0) break
    const length = Number(data.subarray(offset, space).toString('ascii'))
    if (!Number.isFinite(length) || length <= 0) break
    const record = data.subarray(space + 1, offset + length - 1).toString('utf8')
    const eq = record.indexOf('=')
    if (eq > 0) out[record.slice(0, eq)] = record.slice(eq + 1)
    offset += length
  }
  return out
}

/** Parses a tar archive into entries (file data included). Device files and FIFOs are refused. */
export function readTar(archive: Buffer, where = 'layer'): TarEntry[] {
  const entries: TarEntry[] = []
  let offset = 0
  let pax: Record<string, string> = {}
  let longName: string | undefined
  let longLink: string | undefined
  while (offset + BLOCK <= archive.length) {
    const block = archive.subarray(offset, offset + BLOCK)
    if (block.every((b) => b === 0)) break
    const size = readOctal(block, 124, 12, where)
    const type = String.fromCharCode(block[156] || 48)
    const dataStart = offset + BLOCK
    if (dataStart + size > archive.length) throw failedError('truncated tar archive', { location: where })
    const data = archive.subarray(dataStart, dataStart + size)
    offset = dataStart + Math.ceil(size / BLOCK) * BLOCK
    if (type === 'x') {
      pax = { ...pax, ...parsePax(data) }
      continue
    }
    if (type === 'g') continue
    if (type === 'L') {
      longName = readString(data, 0, data.length)
      continue
    }
    if (type === 'K') {
      longLink = readString(data, 0, data.length)
      continue
    }
    const prefix = block.subarray(257, 263).toString('ascii').startsWith('ustar') ? readString(block, 345, 155) : ''
    const name = pax.path ?? longName ?? (prefix ? `${prefix}/${readString(block, 0, 100)}` : readString(block, 0, 100))
    const linkname = pax.linkpath ?? longLink ?? readString(block, 157, 100)
    pax = {}
    longName = undefined
    longLink = undefined
    const mode = readOctal(block, 100, 8, where)
    if (type === '0' || type === '7') entries.push({ path: name, type: 'file', mode, data: Buffer.from(data) })
    else if (type === '5') entries.push({ path: name, type: 'dir', mode })
    else if (type === '2') entries.push({ path: name, type: 'symlink', mode, linkname })
    else if (type === '1') entries.push({ path: name, type: 'hardlink', mode, linkname })
    else throw failedError(`tar entry '${name}' has type '${type}' (device, FIFO or unknown): refused`, { location: where })
  }
  return entries
}

/** Normalises an entry path and refuses anything that would land outside the target. */
export function safeEntryPath(raw: string, where: string): string {
  if (raw.includes('\0')) throw failedError(`tar entry with a NUL byte in its path: refused`, { location: where })
  if (raw.startsWith('/') || /^[A-Za-z]:[\\/]/.test(raw)) throw failedError(`tar entry '${raw}' has an absolute path: refused`, { location: where })
  const segments = raw.split(/[\\/]+/)
  if (segments.includes('..')) throw failedError(`tar entry '${raw}' contains '..': refused`, { location: where })
  return segments.filter((s) => s && s !== '.').join('/')
}

/** Checks every entry (paths, link targets) before anything is written. */
export function checkEntries(entries: TarEntry[], where: string): TarEntry[] {
  return entries.map((entry) => {
    const path = safeEntryPath(entry.path, where)
    if (entry.type === 'symlink') {
      const link = entry.linkname ?? ''
      if (posix.isAbsolute(link)) throw failedError(`tar entry '${entry.path}' is a link to the absolute path '${link}': refused`, { location: where })
      const resolved = posix.normalize(posix.join(posix.dirname(path), link))
      if (resolved === '..' || resolved.startsWith('../'))
        throw failedError(`tar entry '${entry.path}' links outside the target ('${link}'): refused`, { location: where })
    }
    if (entry.type === 'hardlink') {
      const link = entry.linkname ?? ''
      if (posix.isAbsolute(link) || link.split('/').includes('..'))
        throw failedError(`tar entry '${entry.path}' is a hard link outside the target ('${link}'): refused`, { location: where })
    }
    return { ...entry, path }
  })
}

/**
 * Extracts checked entries into `dest` atomically: everything is written into a sibling temp
 * folder first and renamed into place, so a refused or failed extraction leaves `dest` untouched.
 */
export function extractEntries(raw: TarEntry[], dest: string, where: string): number {
  const entries = checkEntries(raw, where)
  const temp = `${dest}.tmp-${randomBytes(4).toString('hex')}`
  mkdirSync(dirname(dest), { recursive: true })
  try {
    mkdirSync(temp, { recursive: true })
    const files = new Map<string, Buffer>()
    for (const entry of entries) {
      if (!entry.path) continue
      const target = join(temp, entry.path)
      mkdirSync(dirname(target), { recursive: true })
      if (entry.type === 'dir') mkdirSync(target, { recursive: true, mode: 0o755 })
      else if (entry.type === 'file') {
        writeFileSync(target, entry.data ?? Buffer.alloc(0), { mode: entry.mode & 0o111 ? 0o755 : 0o644 })
        files.set(entry.path, entry.data ?? Buffer.alloc(0))
      } else if (entry.type === 'symlink') symlinkSync(entry.linkname as string, target)
      else if (entry.type === 'hardlink') {
        const source = files.get(safeEntryPath(entry.linkname as string, where))
        if (!source) throw failedError(`tar entry '${entry.path}' links to '${entry.linkname}', which is not in the archive: refused`, { location: where })
        writeFileSync(target, source, { mode: 0o644 })
      }
    }
    rmSync(dest, { recursive: true, force: true })
    renameSync(temp, dest)
    return entries.length
  } catch (error) {
    rmSync(temp, { recursive: true, force: true })
    throw error
  }
}
