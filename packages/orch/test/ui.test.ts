// Functions given to page.evaluate run in the page: they reach its globals through globalThis
// (this file is type-checked without the DOM library).
// The dashboard in a real browser: Debian's Chromium driven by playwright-core (which downloads
// no browser), against a real `prov-orch serve` running real steps.
import { execFile } from 'node:child_process'
import { existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs'
import { createServer, type Server } from 'node:http'
import { join } from 'node:path'
import { promisify } from 'node:util'
import { type Browser, type BrowserContext, chromium, type Page } from 'playwright-core'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { isRoot, type Prerequisite, prerequisitesMet } from '../../../tests/helpers/prerequisites'
import { devEnv, freePort, orchBin, repoRoot, startOrch, tempDir, waitExit, waitFor } from './helpers'

const CHROMIUM = '/usr/bin/chromium'
const uiIndex = join(repoRoot, 'packages', 'orch', 'dist', 'ui', 'index.html')
const artifacts = join(repoRoot, 'tests', 'artifacts')

const chromiumInstalled: Prerequisite = { what: `Debian's chromium (${CHROMIUM}; apt-get install chromium)`, ok: () => existsSync(CHROMIUM) }
const dashboardBuilt: Prerequisite = { what: 'the built dashboard (npm run build writes packages/orch/dist/ui)', ok: () => existsSync(uiIndex) }
const runs = prerequisitesMet('prov-orch dashboard in Chromium', [chromiumInstalled, dashboardBuilt])

const tmp = tempDir('prov-orch-ui-')
const store = `sqlite:${join(tmp.dir, 'orch.db')}`
let base = ''
let server: ReturnType<typeof startOrch> | undefined
let browser: Browser
let evil: Server | undefined
let evilBase = ''

/** A one-time login link from `prov-orch ui` (over the owner-only socket), as a user would get it. */
async function loginLink(role = 'admin'): Promise<string> {
  const { stdout } = await promisify(execFile)(process.execPath, [orchBin, 'ui', '--store', store, '--role', role, '--no-open', '--out', 'json'], {
    cwd: tmp.dir,
    env: { ...process.env, ...devEnv, NO_COLOR: '1' },
  })
  const record = JSON.parse(stdout)
  expect(record).toMatchObject({ schema: 'prov.orch.ui-login/v1', role, url: expect.stringMatching(/\/ui\/#login=[\w-]{20,}$/) })
  return record.url
}

const ownerToken = () => readFileSync(join(tmp.dir, 'orch.token'), 'utf8').trim()

async function submit(name: string, steps: Record<string, unknown>[]): Promise<string> {
  const res = await fetch(`${base}/v1/workflows`, {
    method: 'POST',
    headers: { authorization: `Bearer ${ownerToken()}`, 'content-type': 'application/json' },
    body: JSON.stringify({ schema: 'prov.orch.workflow/v1', name, steps }),
  })
  expect(res.status).toBe(202)
  return ((await res.json()) as { data: { workflow_id: string } }).data.workflow_id
}

async function workflowStatus(id: string): Promise<string> {
  const res = await fetch(`${base}/v1/workflows/${id}`, { headers: { authorization: `Bearer ${ownerToken()}` } })
  return ((await res.json()) as { data: { status: string } }).data.status
}

async function loggedIn(role = 'admin', viewport = { width: 1280, height: 800 }): Promise<{ context: BrowserContext; page: Page }> {
  const context = await browser.newContext({ viewport })
  const page = await context.newPage()
  await page.goto(await loginLink(role))
  await page.getByRole('heading', { name: 'Workflows' }).waitFor()
  return { context, page }
}

const shot = (page: Page, name: string) => page.screenshot({ path: join(artifacts, `${name}.png`), fullPage: true })

// A browser and a server per flow are slow on a loaded machine: each flow gets three minutes.
describe.skipIf(!runs)('prov-orch dashboard in Chromium', { timeout: 180_000 }, () => {
  beforeAll(async () => {
    mkdirSync(artifacts, { recursive: true })
    const port = await freePort()
    server = startOrch(['serve', '--port', String(port), '--store', store, '--rate-limit', '1000'], devEnv)
    base = `http://127.0.0.1:${port}`
    await waitFor(async () => (await fetch(`${base}/health`).catch(() => undefined))?.ok, 60_000, 100)
    // Chromium refuses to run its sandbox as root; the tests run as root on CI machines.
    browser = await chromium.launch({ executablePath: CHROMIUM, args: isRoot ? ['--no-sandbox'] : [] })
    // A page of another origin on the same host (another port: same site, so SameSite=Strict
    // cookies still go along) trying to act on the dashboard's session.
    evil = createServer((_req, res) => {
      res.setHeader('content-type', 'text/html')
      res.end(
        `<!doctype html><title>evil</title><form id="f" method="post" enctype="text/plain" action="${base}/v1/workflows"><input name='{"a":"' value='"}'></form>`,
      )
    })
    await new Promise<void>((r) => evil?.listen(0, '127.0.0.1', () => r()))
    const address = evil.address()
    evilBase = `http://127.0.0.1:${typeof address === 'object' && address ? address.port : 0}`
  }, 120_000)

  afterAll(async () => {
    await browser?.close()
    await new Promise((r) => (evil ? evil.close(r) : r(undefined)))
    if (server) {
      server.kill('SIGTERM')
      await waitExit(server, 20_000).catch(() => server?.kill('SIGKILL'))
    }
    tmp.cleanup()
  })

  it('a login link opens a session once (HttpOnly, SameSite=Strict cookie); the workflows table updates live', async () => {
    const { context, page } = await loggedIn()
    const cookies = await context.cookies(base)
    expect(cookies).toHaveLength(1)
    expect(cookies[0]).toMatchObject({ httpOnly: true, sameSite: 'Strict', path: '/' })
    expect(page.url()).not.toMatch(/login=/)
    const id = await submit('listed-live', [{ id: 'hello', run: 'echo hello' }])
    // No reload: the table polls.
    const row = page.locator(`tr[data-workflow="${id}"]`)
    await row.waitFor()
    await expect.poll(() => row.locator('[data-status]').getAttribute('data-status'), { timeout: 30_000 }).toBe('succeeded')
    expect(await row.textContent()).toContain('1/1')
    await page.getByLabel('Status').selectOption('failed')
    await expect.poll(() => page.locator(`tr[data-workflow="${id}"]`).count()).toBe(0)
    await page.getByLabel('Status').selectOption('')
    await shot(page, 'workflows')

    // The same link again, in a fresh browser: spent.
    const url = await loginLink()
    const first = await browser.newContext()
    const firstPage = await first.newPage()
    await firstPage.goto(url)
    await firstPage.getByRole('heading', { name: 'Workflows' }).waitFor()
    const second = await browser.newContext()
    const again = await second.newPage()
    await again.goto(url)
    await again.getByRole('alert').waitFor()
    expect(await again.getByRole('alert').textContent()).toMatch(/invalid, already used or expired/)
    expect(await again.getByRole('heading', { name: 'Workflows' }).count()).toBe(0)
    await Promise.all([context.close(), first.close(), second.close()])
  })

  it('the DAG follows the event stream: running turns succeeded without a reload; a failed step shows its stderr and exit code', async () => {
    const gate = join(tmp.dir, 'gate')
    const id = await submit('dag-live', [
      { id: 'wait', run: `while [ ! -e '${gate}' ]; do sleep 0.1; done; echo gate-open` },
      { id: 'after', run: 'echo after', depends_on: ['wait'] },
      { id: 'boom', run: 'echo boom-on-stderr >&2; exit 3', depends_on: ['after'] },
    ])
    const { context, page } = await loggedIn()
    await page.goto(`${base}/ui/#/workflows/${id}`)
    const node = (step: string) => page.locator(`g[data-step="${step}"]`)
    await expect.poll(() => node('wait').getAttribute('data-status'), { timeout: 30_000 }).toBe('running')
    expect(await node('wait').textContent()).toContain('running')
    expect(await node('boom').getAttribute('data-status')).toBe('queued')
    await shot(page, 'workflow-running')
    writeFileSync(gate, '')
    await expect.poll(() => node('wait').getAttribute('data-status'), { timeout: 30_000 }).toBe('succeeded')
    await expect.poll(() => node('after').getAttribute('data-status'), { timeout: 30_000 }).toBe('succeeded')
    await expect.poll(() => node('boom').getAttribute('data-status'), { timeout: 30_000 }).toBe('failed')
    expect(await node('wait').textContent()).toContain('✔ succeeded')
    expect(await page.locator('h1 [data-status]').getAttribute('data-status')).toBe('failed')

    // Keyboard: focus the failed step and open it with Enter.
    await node('boom').focus()
    await page.keyboard.press('Enter')
    const panel = page.locator('.step-panel')
    await expect.poll(() => panel.locator('.log').textContent(), { timeout: 15_000 }).toContain('boom-on-stderr')
    expect(await panel.locator('.exit-code').textContent()).toBe('3')
    await shot(page, 'workflow-step')
    await context.close()
  })

  it('cancel asks first and works for an operator; a viewer sees no cancel button and the API refuses it', async () => {
    const id = await submit('long', [{ id: 'sleep', run: 'sleep 300' }])
    const { context, page } = await loggedIn('operator')
    await page.goto(`${base}/ui/#/workflows/${id}`)
    await expect.poll(() => page.locator('g[data-step="sleep"]').getAttribute('data-status'), { timeout: 30_000 }).toBe('running')
    await page.getByRole('button', { name: 'Cancel', exact: true }).click()
    const dialog = page.getByRole('dialog')
    await dialog.waitFor()
    expect(await dialog.textContent()).toContain('Cancel workflow long?')
    await shot(page, 'workflow-confirm')
    await dialog.getByRole('button', { name: 'Keep as is' }).click()
    expect(await workflowStatus(id)).toBe('running')

    const viewer = await loggedIn('viewer')
    await viewer.page.goto(`${base}/ui/#/workflows/${id}`)
    await viewer.page.locator('g[data-step="sleep"]').waitFor()
    expect(await viewer.page.getByRole('button', { name: 'Cancel', exact: true }).count()).toBe(0)
    // The button is absent, and the server says no as well.
    const refused = await viewer.page.evaluate(async (path) => {
      const res = await fetch(path, { method: 'DELETE', headers: { 'x-csrf-token': (globalThis as any).localStorage.getItem('prov-orch-csrf') ?? '' } })
      return { status: res.status, body: await res.json() }
    }, `/v1/workflows/${id}`)
    expect(refused).toMatchObject({ status: 403, body: { error: { code: 'FORBIDDEN', message: expect.stringMatching(/role 'viewer' may not do this/) } } })
    await viewer.context.close()

    await page.getByRole('button', { name: 'Cancel', exact: true }).click()
    await page.getByRole('dialog').getByRole('button', { name: 'Cancel workflow' }).click()
    await expect.poll(() => workflowStatus(id), { timeout: 30_000 }).toBe('cancelled')
    await expect.poll(() => page.locator('h1 [data-status]').getAttribute('data-status'), { timeout: 30_000 }).toBe('cancelled')
    expect(await page.getByRole('button', { name: 'Cancel', exact: true }).count()).toBe(0)
    await context.close()
  })

  it('requests from another origin, or without the CSRF token, are refused and change nothing', async () => {
    const id = await submit('target', [{ id: 'sleep', run: 'sleep 300' }])
    const { context, page } = await loggedIn()
    // Same session, same origin, but no X-CSRF-Token: the cookie alone opens nothing (reads included).
    const bare = await page.evaluate(async (path) => {
      const del = await fetch(path, { method: 'DELETE' })
      const get = await fetch(path)
      return { del: del.status, delCode: ((await del.json()) as { error: { code: string } }).error.code, get: get.status }
    }, `/v1/workflows/${id}`)
    expect(bare).toEqual({ del: 403, delCode: 'CSRF', get: 403 })

    // A page of another origin on this host: its fetch and its form post carry the cookie but fail.
    const other = await context.newPage()
    await other.goto(evilBase)
    const attempt = await other.evaluate(
      async ({ at, id, body }) => {
        const out: string[] = []
        try {
          await fetch(`${at}/v1/workflows/${id}`, { method: 'DELETE', credentials: 'include' })
          out.push('delete answered')
        } catch {
          out.push('delete blocked')
        }
        // no-cors: the page cannot read the answer, but the request would still reach the server.
        const res = await fetch(`${at}/v1/workflows`, { method: 'POST', credentials: 'include', mode: 'no-cors', body })
        out.push(res.type)
        return out
      },
      { at: base, id, body: JSON.stringify({ schema: 'prov.orch.workflow/v1', name: 'evil-submitted', steps: [{ id: 'x', run: 'true' }] }) },
    )
    expect(attempt).toEqual(['delete blocked', 'opaque'])
    await Promise.all([other.waitForEvent('load'), other.evaluate(() => (globalThis as any).document.getElementById('f').submit())])
    expect(await other.locator('body').textContent()).toMatch(/FORBIDDEN_ORIGIN|UNSUPPORTED_MEDIA_TYPE/)
    expect(await workflowStatus(id)).toBe('running')
    const listed = await fetch(`${base}/v1/workflows?limit=500`, { headers: { authorization: `Bearer ${ownerToken()}` } })
    expect(JSON.stringify(await listed.json())).not.toContain('evil-submitted')

    // The same request with the session's own CSRF token but a foreign Origin (from outside a browser).
    const cookie = (await context.cookies(base))[0]
    const csrf = await page.evaluate(() => (globalThis as any).localStorage.getItem('prov-orch-csrf'))
    const forged = await fetch(`${base}/v1/workflows/${id}`, {
      method: 'DELETE',
      headers: { cookie: `${cookie.name}=${cookie.value}`, 'x-csrf-token': csrf ?? '', origin: evilBase },
    })
    expect(forged.status).toBe(403)
    expect(((await forged.json()) as { error: { code: string } }).error.code).toBe('FORBIDDEN_ORIGIN')
    expect(await workflowStatus(id)).toBe('running')
    await fetch(`${base}/v1/workflows/${id}`, { method: 'DELETE', headers: { authorization: `Bearer ${ownerToken()}` } })
    await context.close()
  })

  it('the metrics page shows counts and step latency percentiles; pages stay usable at phone width', async () => {
    const { context, page } = await loggedIn()
    await page.getByRole('link', { name: 'Metrics' }).click()
    const completed = page.locator('[data-metric="completed"] .value')
    await completed.waitFor()
    expect(Number(await completed.textContent())).toBeGreaterThanOrEqual(1)
    expect(await page.locator('[data-metric="p50"] .value').textContent()).toMatch(/\d+ (ms|s)/)
    await shot(page, 'metrics')
    await context.close()

    const phone = await loggedIn('viewer', { width: 390, height: 844 })
    const overflow = await phone.page.evaluate(
      () => (globalThis as any).document.documentElement.scrollWidth - (globalThis as any).document.documentElement.clientWidth,
    )
    expect(overflow).toBeLessThanOrEqual(0)
    await shot(phone.page, 'workflows-phone')
    await phone.context.close()
  })
})
