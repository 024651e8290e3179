// The console in a real browser (Debian's chromium, driven by
// puppeteer-core, headless): log in, the overview's figures after pulls
// through ferry, search a repository, open an image and copy its pull
// command, create and revoke a robot (and what its secret can pull before
// and after), search the audit log, phone width, dark mode, the keyboard;
// a user limited to team-a sees no team-b on any page; an upstream outage
// turns its health red. Screenshots of each page go to test-output/console/.
import { existsSync, mkdirSync, writeFileSync } from 'node:fs'
import { join } from 'node:path'
import bcrypt from 'bcryptjs'
import puppeteer, { type Browser, type Page } from 'puppeteer-core'
import t, { type Test } from 'tap'
import { ROOT, startFerry, type Ferry } from '../helpers/ferry.ts'
import { get } from '../helpers/http.ts'
import { image, OCI_INDEX, OCI_MANIFEST, pushImage, type Image } from '../helpers/images.ts'
import { scratchDir } from '../helpers/procs.ts'
import { startRegistry, type Registry } from '../helpers/registry.ts'
import { registerFile, registerSecret } from '../helpers/secrets.ts'
import { seedStandard, type Seeded } from '../helpers/seed.ts'

// the callbacks given to page.evaluate run in the page: its globals, loosely typed here (the DOM lib clashes with Node's fetch types)
type Loose = any // eslint-disable-line @typescript-eslint/no-explicit-any
declare const document: Loose, location: Loose, navigator: Loose, window: Loose
declare function getComputedStyle (el: unknown): Loose

const CHROMIUM = process.env.CHROMIUM ?? '/usr/bin/chromium'
if (!existsSync(CHROMIUM)) throw new Error(`the console tests need a browser: apt-get install -y chromium (or set CHROMIUM to its path); ${CHROMIUM} is missing`)

const PASSWORDS = { root: 'root-Browser-1', alice: 'alice-Browser-2' }
const dir = scratchDir('ferry-console-ui-')
const shots = join(ROOT, 'test-output', 'console')
let upstream: Registry
let ferry: Ferry
let seeded: Seeded
let teamB: Image
let browser: Browser

const basic = (user: keyof typeof PASSWORDS): Record<string, string> => ({ authorization: `Basic ${Buffer.from(`${user}:${PASSWORDS[user]}`).toString('base64')}` })

t.before(async () => {
  registerSecret(...Object.values(PASSWORDS))
  registerFile(join(dir, 'audit.jsonl'))
  mkdirSync(shots, { recursive: true })
  writeFileSync(join(dir, 'htpasswd'), Object.entries(PASSWORDS).map(([u, p]) => `${u}:${bcrypt.hashSync(p, 8)}`).join('\n') + '\n')
  upstream = await startRegistry()
  seeded = await seedStandard(upstream.url)
  const teamA = await image()
  teamB = await image()
  await pushImage(upstream.url, 'team-a/app', 'v1', teamA)
  await pushImage(upstream.url, 'team-b/secret-app', 'v1', teamB)
  ferry = await startFerry({
    config: {
      upstreams: [{ name: 'up', url: upstream.url, default: true, tagTTL: '1s' }],
      auth: {
        htpasswd: join(dir, 'htpasswd'),
        access: [
          { repositories: ['team-a/**'], allow: { 'user:alice': 'reader', 'user:root': 'admin' } },
          { repositories: ['**'], allow: { 'user:root': 'admin' } },
        ],
      },
      audit: { file: join(dir, 'audit.jsonl') },
      // a disaster-recovery peer that is down: what this region pulled waits for it
      replication: { peers: [{ name: 'dr', url: 'http://127.0.0.1:9' }] },
    },
  })
  for (let round = 0; round < 3; round++) {
    for (const [repo, img] of [['test/oci', seeded.oci], ['team-a/app', teamA], ['team-b/secret-app', teamB]] as const) {
      await get(`${ferry.url}/v2/${repo}/manifests/v1`, { ...basic('root'), accept: OCI_MANIFEST })
      for (const b of [img.config, ...img.layers]) await get(`${ferry.url}/v2/${repo}/blobs/${b.digest}`, basic('root'))
    }
    await get(`${ferry.url}/v2/test/multi/manifests/v1`, { ...basic('root'), accept: OCI_INDEX })
  }
  browser = await puppeteer.launch({
    executablePath: CHROMIUM,
    headless: true,
    userDataDir: scratchDir('ferry-chromium-'),
    args: ['--no-sandbox', '--disable-gpu', '--disable-dev-shm-usage', '--no-first-run', '--disable-extensions'],
  })
})
t.teardown(async () => { await browser?.close(); await ferry?.stop(); await upstream?.stop() })

async function newPage (width = 1280, height = 900): Promise<Page> {
  const context = await browser.createBrowserContext()
  await context.overridePermissions(ferry.url, ['clipboard-read', 'clipboard-write', 'clipboard-sanitized-write'])
  const page = await context.newPage()
  await page.setViewport({ width, height })
  page.on('dialog', d => { void d.accept() })
  return page
}

async function login (page: Page, user: keyof typeof PASSWORDS): Promise<void> {
  await page.goto(`${ferry.url}/ui/`)
  await page.waitForSelector('input[name=username]')
  await page.type('input[name=username]', user)
  await page.type('input[name=password]', PASSWORDS[user])
  await page.click('button[type=submit]')
  await page.waitForSelector(`[data-user="${user}"]`)
}

const text = async (page: Page): Promise<string> => await page.evaluate(() => document.body.innerText)
const shot = async (page: Page, name: string): Promise<void> => { await page.screenshot({ path: join(shots, `${name}.png`), fullPage: true }) }

async function go (page: Page, hash: string, ready: string): Promise<void> {
  await page.evaluate(h => { location.hash = h }, hash)
  await page.waitForSelector(ready)
}

let admin: Page

t.test('log in, and the overview shows the pulls', async t => {
  admin = await newPage()
  await page0(t)
})

async function page0 (t: Test): Promise<void> {
  await admin.goto(`${ferry.url}/ui/`)
  await admin.waitForSelector('input[name=username]')
  t.equal(await admin.evaluate(() => location.hash), '#/login', 'an anonymous visitor is sent to log in')
  await admin.type('input[name=username]', 'root')
  await admin.type('input[name=password]', 'wrong')
  await admin.click('button[type=submit]')
  await admin.waitForSelector('.error')
  t.match(await text(admin), /invalid username or password/, 'a wrong password is said so')
  await admin.$eval('input[name=password]', el => { (el as Loose).value = '' })
  await admin.type('input[name=password]', PASSWORDS.root)
  await admin.click('button[type=submit]')
  await admin.waitForSelector('[data-figure=hit-1h]')
  const figure = async (id: string): Promise<string> => await admin.$eval(`[data-figure=${id}]`, el => el.textContent ?? '')
  t.equal(await figure('hit-1h'), '66.7%', 'two of three rounds hit: 66.7%')
  t.match(await figure('saved-24h'), /^\d+(\.\d)? (B|KiB)$/, 'bytes served from cache')
  t.not(await figure('saved-24h'), '0 B')
  t.equal(await figure('cache-blobs'), '6', 'six blobs cached')
  t.ok(await admin.$('.chart canvas, .chart .uplot'), 'the chart is drawn')
  t.equal(await admin.$eval('[data-upstream-status=up]', el => el.className), 'badge up', 'the upstream is up')
  t.ok(await admin.$('a[href="#/robots"]') !== null && await admin.$eval('a[href="#/robots"]', el => !(el.parentElement as Loose).hidden), 'an admin sees Robots')
  await shot(admin, 'overview')
}

t.test('replication: the peer that is down, and how far behind it is', async t => {
  await go(admin, '#/replication', 'main[data-page="Replication"] table')
  const row = await admin.$eval('table tbody tr', el => [...el.children].map(c => c.textContent))
  t.equal(row[0], 'dr')
  t.ok(Number(row[1]) >= 10, `events waiting for it (${row[1]})`)
  t.match(row[2], /KiB|B$/, 'and their bytes')
  await shot(admin, 'replication')
})

t.test('search a repository, open an image, copy its pull command', async t => {
  await go(admin, '#/repositories', 'input[name=q]')
  await admin.type('input[name=q]', 'multi')
  await admin.keyboard.press('Enter')
  await admin.waitForFunction(() => location.hash.includes('q=multi') && document.querySelector('a[href="#/repository/test%2Foci"]') === null && document.querySelector('a[href="#/repository/test%2Fmulti"]') !== null)
  t.notMatch(await admin.$eval('table', el => el.textContent ?? ''), /test\/oci/, 'the search left the others out')
  await shot(admin, 'repositories')
  await admin.click('a[href="#/repository/test%2Fmulti"]')
  await admin.waitForSelector('a[href="#/image/test%2Fmulti/v1"]')
  t.match(await text(admin), /linux\/amd64, linux\/arm64/, 'the tag\'s platforms')
  t.match(await text(admin), /\b3\b/, 'its pull count')
  await shot(admin, 'tags')
  await admin.click('a[href="#/image/test%2Fmulti/v1"]')
  await admin.waitForSelector('[data-copy=docker]')
  await admin.click('[data-copy=docker]')
  await admin.waitForFunction(() => document.getElementById('copied')?.textContent !== '')
  const copied = await admin.evaluate(async () => await navigator.clipboard.readText())
  t.equal(copied, `docker pull ${ferry.host}/test/multi:v1`, 'the docker command is on the clipboard')
  t.equal(await admin.$eval('[data-pull=ctr]', el => (el as Loose).value), `ctr images pull --plain-http ${ferry.host}/test/multi:v1`)
  t.match(await text(admin), /linux\/arm64/, 'the index\'s platforms')
  await shot(admin, 'image')
  await go(admin, `#/image/test%2Foci/v1`, 'h2')
  await admin.waitForFunction(() => document.body.innerText.includes('Layers'))
  t.match(await text(admin), new RegExp(seeded.oci.layers[0]!.digest), 'the layer digests')
  await shot(admin, 'image-oci')
})

t.test('create a robot, use it, revoke it', async t => {
  await go(admin, '#/robots', 'form input[name=name]')
  await admin.type('input[name=name]', 'ui-bot')
  await admin.type('input[name=patterns]', 'team-a/**')
  await admin.select('select[name=role]', 'reader')
  await admin.click('button.primary')
  await admin.waitForSelector('[data-secret=ui-bot]')
  const secret = await admin.$eval('[data-secret=ui-bot]', el => (el as Loose).value)
  registerSecret(secret)
  t.ok(secret.length >= 32, 'the secret is shown once')
  await shot(admin, 'robots')
  const auth = { authorization: `Basic ${Buffer.from(`robot$ui-bot:${secret}`).toString('base64')}` }
  t.equal((await get(`${ferry.url}/v2/team-a/app/manifests/v1`, { ...auth, accept: OCI_MANIFEST })).status, 200, 'the robot pulls team-a')
  await admin.click('[data-revoke=ui-bot]')
  await admin.waitForFunction(() => document.querySelector('[data-revoke="ui-bot"]') === null && document.body.innerText.includes('revoked'))
  t.equal((await get(`${ferry.url}/v2/team-a/app/manifests/v1`, { ...auth, accept: OCI_MANIFEST })).status, 401, 'revoked in the console: its secret no longer works')
})

t.test('search the audit log', async t => {
  await go(admin, '#/audit', 'input[name=user]')
  await admin.type('input[name=user]', 'root')
  await admin.select('select[name=decision]', 'allow')
  await admin.click('form button[type=submit]')
  await admin.waitForFunction(() => location.hash.includes('user=root') && document.body.innerText.includes('console:robot-revoke'))
  const body = await admin.$eval('table', el => el.textContent ?? '')
  t.match(body, /console:robot-create/, 'the robot\'s creation')
  t.match(body, /console:robot-revoke/, 'its revocation')
  t.notMatch(body, /\bdeny\b/, 'only allowed records')
  await shot(admin, 'audit')
})

t.test('keyboard, phone width, dark mode', async t => {
  const page = await newPage(390, 844)
  await login(page, 'root')
  await page.waitForSelector('[data-figure=hit-1h]')
  const overflow = await page.evaluate(() => document.documentElement.scrollWidth - window.innerWidth)
  t.ok(overflow <= 1, `nothing wider than a phone's screen (overflow ${overflow}px)`)
  await shot(page, 'overview-phone')
  await page.reload()
  await page.waitForSelector('[data-figure=hit-1h]')
  await page.keyboard.press('Tab')
  t.equal(await page.evaluate(() => document.activeElement?.textContent), 'Skip to content', 'the first Tab reaches "Skip to content"')
  await page.keyboard.press('Enter')
  t.equal(await page.evaluate(() => document.activeElement?.id), 'main', 'which moves to the page\'s content')
  await page.reload()
  await page.waitForSelector('[data-figure=hit-1h]')
  await page.keyboard.press('Tab')
  await page.keyboard.press('Tab')
  await page.keyboard.press('Tab')
  await page.keyboard.press('Tab')
  t.equal(await page.evaluate(() => document.activeElement?.textContent), 'Repositories', 'then the sections, in order')
  await page.keyboard.press('Enter')
  await page.waitForSelector('input[name=q]')
  t.equal(await page.evaluate(() => location.hash), '#/repositories', 'Enter follows it')
  await page.emulateMediaFeatures([{ name: 'prefers-color-scheme', value: 'dark' }])
  await page.setViewport({ width: 1280, height: 900 })
  await page.goto(`${ferry.url}/ui/#/`)
  await page.waitForSelector('[data-figure=hit-1h]')
  t.equal(await page.evaluate(() => getComputedStyle(document.body).backgroundColor), 'rgb(13, 17, 23)', 'dark when the system is')
  await shot(page, 'overview-dark')
  await page.browserContext().close()
})

t.test('a user limited to team-a sees no team-b on any page', async t => {
  const page = await newPage()
  await login(page, 'alice')
  t.equal(await page.$eval('a[href="#/robots"]', el => (el.parentElement as Loose).hidden), true, 'no Robots for a non-admin')
  const seen: string[] = []
  for (const [hash, ready] of [['#/', '[data-figure=hit-1h]'], ['#/repositories', 'input[name=q]'], ['#/repository/team-a%2Fapp', 'table'], ['#/image/team-a%2Fapp/v1', '[data-copy=docker]'], ['#/upstreams', 'main[data-page="Upstreams"] table'], ['#/replication', 'main[data-page="Replication"]']] as const) {
    await go(page, hash, ready)
    seen.push(await page.content())
  }
  await go(page, '#/repositories?q=secret', 'input[name=q]')
  await page.waitForFunction(() => document.body.innerText.includes('No repository matches'))
  seen.push(await page.content())
  for (const hash of ['#/repository/team-b%2Fsecret-app', '#/image/team-b%2Fsecret-app/v1', '#/audit', '#/robots']) {
    await go(page, hash, '[role=alert], .error')
    seen.push(await page.content())
  }
  const all = seen.join('\n')
  t.notMatch(all, /team-b\/secret-app(?!%)/, 'no page lists team-b')
  t.notMatch(all, teamB.manifest.digest, 'nor any digest of it')
  t.notMatch(all, teamB.layers[0]!.digest)
  t.match(all, /team-a\/app/, 'while team-a is there')
  await shot(page, 'limited-user')
  await page.browserContext().close()
})

t.test('an upstream outage turns its health red', async t => {
  await upstream.stop()
  // a tag past its TTL: ferry asks the upstream, which is gone
  await new Promise(resolve => setTimeout(resolve, 1100))
  const res = await get(`${ferry.url}/v2/test/docker/manifests/v1`, { ...basic('root'), accept: OCI_MANIFEST })
  t.ok(res.status >= 500, `a pull that needs the upstream fails (${res.status})`)
  await admin.goto(`${ferry.url}/ui/#/upstreams`)
  await admin.waitForSelector('[data-upstream-status=up]')
  t.equal(await admin.$eval('[data-upstream-status=up]', el => el.className), 'badge down', 'the upstream is shown down')
  t.match(await text(admin), /UPSTREAM_UNREACHABLE|REGISTRY_UNREACHABLE|HTTP 5\d\d/, 'with what went wrong')
  await shot(admin, 'upstream-down')
})
