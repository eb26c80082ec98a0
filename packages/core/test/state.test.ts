import { spawn } from 'node:child_process'
import { mkdtempSync, readdirSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { afterAll, describe, expect, it } from 'vitest'
import { readJsonFile, updateJsonFile, withLock, writeFileAtomic, writeFileAtomicAsync } from '../src/state'

const dir = mkdtempSync(join(tmpdir(), 'prov-state-'))
afterAll(() => rmSync(dir, { recursive: true, force: true }))

const stateModule = join(import.meta.dirname, '../src/state.ts')

function worker(file: string, id: number, times: number): Promise<number> {
  // A separate node process (jiti runs the TypeScript source) doing locked read-modify-writes.
  const code = `
    const { createJiti } = await import('jiti')
    const jiti = createJiti(${JSON.stringify(import.meta.url)})
    const { updateJsonFile } = await jiti.import(${JSON.stringify(stateModule)})
    for (let i = 0; i < ${times}; i++) await updateJsonFile(${JSON.stringify(file)}, { items: [] }, (s) => ({ items: [...s.items, '${id}-' + i] }))
  `
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, ['--input-type=module', '-e', code], { stdio: ['ignore', 'ignore', 'inherit'] })
    child.on('error', reject)
    child.on('close', (c) => resolve(c ?? 1))
  })
}

describe('state files', () => {
  it('are written 0600 by updateJsonFile, also when an older file was world-readable', async () => {
    const file = join(mkdtempSync(join(dir, 'mode-')), 'servers.json')
    writeFileSync(file, '{"servers":[]}', { mode: 0o644 })
    await updateJsonFile(file, { servers: [] as string[] }, (s) => ({ servers: [...s.servers, 'web-01'] }))
    expect(statSync(file).mode & 0o777).toBe(0o600)
    expect(JSON.parse(readFileSync(file, 'utf8'))).toEqual({ servers: ['web-01'] })
  })

  it('the off-thread atomic write replaces the file whole, with its mode, and leaves no temp file', async () => {
    const folder = mkdtempSync(join(dir, 'async-'))
    const file = join(folder, 'key')
    writeFileSync(file, 'old')
    await writeFileAtomicAsync(file, 'new content', { mode: 0o600 })
    expect(readFileSync(file, 'utf8')).toBe('new content')
    expect(statSync(file).mode & 0o777).toBe(0o600)
    await writeFileAtomicAsync(join(folder, 'sub', 'bytes'), new Uint8Array([1, 2, 3]))
    expect([...readFileSync(join(folder, 'sub', 'bytes'))]).toEqual([1, 2, 3])
    expect(readdirSync(folder).sort()).toEqual(['key', 'sub'])
  })

  it('two or more processes updating one file never lose an update', async () => {
    const file = join(dir, 'servers.json')
    const codes = await Promise.all([1, 2, 3, 4].map((id) => worker(file, id, 25)))
    expect(codes).toEqual([0, 0, 0, 0])
    const state = readJsonFile<{ items: string[] }>(file, { items: [] })
    expect(state.items).toHaveLength(100)
    expect(new Set(state.items).size).toBe(100)
  }, 120_000)

  it('parallel updaters inside one process are queued, not all let in', async () => {
    const file = join(dir, 'inproc.json')
    await Promise.all(
      Array.from({ length: 40 }, (_, i) =>
        updateJsonFile(file, { items: [] as number[] }, async (s) => {
          await new Promise((r) => setTimeout(r, 1))
          return { items: [...s.items, i] }
        }),
      ),
    )
    expect(readJsonFile(file, { items: [] as number[] }).items).toHaveLength(40)
  })

  it('takes over the lock of a dead process', async () => {
    const file = join(dir, 'stale.json')
    writeFileSync(`${file}.lock`, '999999\n')
    await updateJsonFile(file, { n: 0 }, (s) => ({ n: s.n + 1 }))
    expect(readJsonFile(file, { n: 0 }).n).toBe(1)
  })

  it('is re-entrant within a process and writes atomically with a mode', async () => {
    const file = join(dir, 'key')
    await withLock(file, () => withLock(file, () => writeFileAtomic(file, 'secret', { mode: 0o600 })))
    expect(readFileSync(file, 'utf8')).toBe('secret')
  })

  it('reports a corrupt state file as a config error', () => {
    const file = join(dir, 'bad.json')
    writeFileSync(file, '{oops')
    expect(() => readJsonFile(file, {})).toThrow(/state file is not valid JSON/)
  })
})
