// Scenario 14: the console with a large state. A ferry whose region state
// holds 10,000 hosted repositories (written into the embedded state before
// it starts) and some traffic; Debian's chromium (puppeteer-core, headless)
// opens the overview and the repositories page. Measured: first contentful
// paint of the overview, the time until its figures are on the page, and
// the same for the repositories page, each the median of 5 loads.
// npm run bench -- --console runs it alone.
import { createHash } from 'node:crypto'
import { existsSync, mkdirSync } from 'node:fs'
import { join } from 'node:path'
import puppeteer from 'puppeteer-core'
import { embeddedState } from '../src/state/embedded/index.ts'
import { get } from '../test/helpers/http.ts'
import { median } from './load.ts'
import { startFerryTarget } from './targets.ts'

export interface ConsoleRun {
  readonly repositories: number
  readonly overviewPaintMs: number
  readonly overviewReadyMs: number
  readonly repositoriesReadyMs: number
  readonly apiRepositoriesMs: number
}

const OCI_MANIFEST = 'application/vnd.oci.image.manifest.v1+json'

export async function consoleScenario (opts: { dir: string, repositories: number, stops: (() => Promise<void>)[], log: (m: string) => void }): Promise<ConsoleRun> {
  const chromium = process.env.CHROMIUM ?? '/usr/bin/chromium'
  if (!existsSync(chromium)) throw new Error(`the console scenario needs chromium: apt-get install -y chromium (${chromium} is missing)`)
  opts.log(`14. console: ${opts.repositories} repositories in the state`)
  await seedRepositories(join(opts.dir, 'ferry', 'ferry-data'), opts.repositories)
  const ferry = await startFerryTarget(join(opts.dir, 'ferry'), 'http://127.0.0.1:1', '1h', { hosted: [{ prefix: 'acme/' }] })
  opts.stops.push(() => ferry.stop())
  const apiMs: number[] = []
  for (let i = 0; i < 5; i++) {
    const t0 = performance.now()
    const r = await get(`${ferry.url}/_ferry/api/v1/repositories?n=50`)
    if (r.status !== 200) throw new Error(`the repositories API answered ${r.status}`)
    apiMs.push(performance.now() - t0)
  }
  const browser = await puppeteer.launch({ executablePath: chromium, headless: true, args: ['--no-sandbox', '--disable-gpu', '--disable-dev-shm-usage', '--no-first-run'] })
  opts.stops.push(() => browser.close())
  const paints: number[] = []; const ready: number[] = []; const reposReady: number[] = []
  try {
    for (let i = 0; i < 5; i++) {
      const context = await browser.createBrowserContext()
      const page = await context.newPage()
      const t0 = performance.now()
      await page.goto(`${ferry.url}/ui/#/`)
      await page.waitForSelector('[data-figure=hit-1h]')
      ready.push(performance.now() - t0)
      // the paint entry is recorded once the frame is presented, which may come after the figures are in the DOM
      type Perf = { performance: { getEntriesByName: (n: string) => { startTime: number }[] } }
      await page.waitForFunction(() => (globalThis as unknown as Perf).performance.getEntriesByName('first-contentful-paint').length > 0, { timeout: 5000 }).catch(() => {})
      paints.push(await page.evaluate(() => (globalThis as unknown as Perf).performance.getEntriesByName('first-contentful-paint')[0]?.startTime ?? Number.NaN))
      const t1 = performance.now()
      await page.goto(`${ferry.url}/ui/#/repositories`)
      await page.waitForFunction(() => (globalThis as unknown as { document: { querySelectorAll: (s: string) => { length: number } } }).document.querySelectorAll('a[href^="#/repository/"]').length === 50)
      reposReady.push(performance.now() - t1)
      await context.close()
    }
  } finally {
    await browser.close()
    await ferry.stop()
  }
  return { repositories: opts.repositories, overviewPaintMs: median(paints), overviewReadyMs: median(ready), repositoriesReadyMs: median(reposReady), apiRepositoriesMs: median(apiMs) }
}

/** `count` hosted repositories (acme/team-K/app-N, a tag v1 each) written into the embedded state under `data` before ferry starts. */
export async function seedRepositories (data: string, count: number): Promise<void> {
  mkdirSync(data, { recursive: true })
  const state = embeddedState(join(data, 'state'))
  for (let i = 0; i < count; i += 200) {
    await Promise.all(Array.from({ length: Math.min(200, count - i) }, async (_, k) => {
      const repo = `acme/team-${(i + k) % 50}/app-${i + k}`
      const digest = `sha256:${createHash('sha256').update(repo).digest('hex')}`
      await state.links.link(repo, 'manifest', digest)
      await state.tags.put(repo, 'v1', { accept: ['*'], digest, mediaType: OCI_MANIFEST, size: 500, fetchedAt: Date.now() }, true)
    }))
  }
  await state.close()
}
