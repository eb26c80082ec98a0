import { existsSync, mkdirSync, mkdtempSync, rmSync, symlinkSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { afterAll, describe, expect, it } from 'vitest'
import { assertPathSegment, containedPath, mkdirContained, ProvError, removeContained } from '../src/index'

const base = mkdtempSync(join(tmpdir(), 'prov-contain-'))
const root = join(base, 'root')
const outside = join(base, 'outside')
mkdirSync(root)
mkdirSync(outside)
writeFileSync(join(outside, 'keep'), 'x')
symlinkSync(outside, join(root, 'link-out'))
afterAll(() => rmSync(base, { recursive: true, force: true }))

const code = (fn: () => unknown) => {
  try {
    fn()
  } catch (error) {
    return error instanceof ProvError ? error.code : -1
  }
  return 0
}

describe('containment of filesystem paths', () => {
  it('accepts paths below the root, existing or not', () => {
    expect(containedPath(root, ['a', 'b'])).toBe(join(root, 'a', 'b'))
    expect(containedPath(root, 'x/../y')).toBe(join(root, 'y'))
  })
  it('refuses .. and absolute paths that leave the root (exit 4), naming the path', () => {
    expect(code(() => containedPath(root, '../outside/keep'))).toBe(4)
    expect(code(() => containedPath(root, ['..', '..', 'etc']))).toBe(4)
    expect(code(() => containedPath(root, '/etc/passwd'))).toBe(4)
    expect(() => containedPath(root, '../x', { what: 'the workspace state' })).toThrow(/outside the workspace state/)
  })
  it('refuses paths that leave the root through a symlink', () => {
    expect(code(() => containedPath(root, 'link-out/keep'))).toBe(4)
    expect(code(() => containedPath(root, 'link-out/new/deeper'))).toBe(4)
    expect(code(() => mkdirContained(root, 'link-out/sub'))).toBe(4)
    expect(existsSync(join(outside, 'sub'))).toBe(false)
  })
  it('removes a symlink itself, never what it points to', () => {
    symlinkSync(outside, join(root, 'link-two'))
    removeContained(root, 'link-two')
    expect(existsSync(join(root, 'link-two'))).toBe(false)
    expect(existsSync(join(outside, 'keep'))).toBe(true)
    expect(code(() => removeContained(root, 'link-out/keep'))).toBe(4)
    expect(code(() => removeContained(root, '.'))).toBe(4)
    expect(existsSync(join(outside, 'keep'))).toBe(true)
  })
  it('refuses NUL bytes (exit 2) and multi-part names where one segment is expected', () => {
    expect(code(() => containedPath(root, 'a\0b'))).toBe(2)
    for (const bad of ['', '.', '..', 'a/b', '../x', 'a\\b', 'x\0']) expect(code(() => assertPathSegment(bad, 'name'))).toBe(2)
    expect(assertPathSegment('web-01', 'name')).toBe('web-01')
  })
})
