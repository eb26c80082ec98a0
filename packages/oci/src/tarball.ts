import { lstatSync, readdirSync, readFileSync, readlinkSync } from 'node:fs'
import { join, posix } from 'node:path'
import { usageError } from '@prov/core'

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
