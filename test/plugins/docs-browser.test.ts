// /docs in a real browser: Debian's Chromium, driven by playwright-core (never a downloaded browser).
import { existsSync } from 'node:fs'
import { readFile } from 'node:fs/promises'
import { join } from 'node:path'
import { chromium } from 'playwright-core'
import t from 'tap'
import { build } from '../helper.js'

const executablePath = '/usr/bin/chromium'
// DOCS_SCREENSHOT=docs/api-reference.png refreshes the README's picture.
const screenshotPath = process.env.DOCS_SCREENSHOT

t.test('/docs renders the login operation in headless Chromium, loading nothing from elsewhere', {
  skip: !existsSync(executablePath) && `needs ${executablePath} (apt-get install chromium; .ci/run installs it)`
}, async (t) => {
  const app = await build(t)
  const origin = await app.listen({ host: '127.0.0.1', port: 0 })
  const browser = await chromium.launch({
    executablePath,
    // This machine has no network beyond localhost: keep Chromium from calling home.
    args: ['--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run', '--disable-background-networking', '--disable-component-update', '--disable-sync']
  })
  t.teardown(() => browser.close())
  const page = await browser.newPage({ viewport: { width: 1280, height: 900 } })
  const requested: string[] = []
  page.on('request', (request) => { requested.push(request.url()) })

  await page.goto(`${origin}/docs`)
  const login = page.locator('.opblock-summary-path', { hasText: '/auth/login/' })
  await login.waitFor({ timeout: 30_000 })
  t.equal(await login.count(), 1, 'the login operation is rendered')
  t.match(await page.locator('.opblock-post', { hasText: '/auth/login/' }).innerText(), /Log in: a new session and its token pair/)
  t.ok(await page.locator('.btn.authorize').isVisible(), 'the Authorize button of the bearer scheme')

  const path = screenshotPath ?? join(t.testdir(), 'api-reference.png')
  await page.screenshot({ path })
  const png = await readFile(path)
  t.same(png.subarray(0, 8), Buffer.from([0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a]), 'a PNG screenshot is saved')
  t.same(requested.filter((url) => !url.startsWith(origin)), [], 'every request went to the service itself')
})
