// npm run bench [-- --quick] [-- --out DIR] · npm run bench -- --faults [--quick] · npm run bench -- --cold ... · npm run bench -- --region-herd · npm run bench -- --push-big · npm run bench -- --airgap [--quick] · npm run bench -- --mirror [--against OTHER/dist/cli.js] · npm run bench -- --wan [--targets a,b] [--runs N] · npm run bench -- --ctr [--runs N] [--floor] [--strace | --perf] · npm run bench -- --fuzz · npm run bench -- --console [--quick] · npm run bench -- --catalog-flood [--repositories N] [--size MiB] [--runs N]
// ferry side by side with the proxies users would pick instead, in one run
// on this machine: the upstream itself (direct), ferry, the CNCF
// distribution registry in proxy mode, and nginx proxy_cache with
// proxy_cache_lock. Prints a table of figures and ratios against targets;
// writes RESULTS.md and results.json (to bench/ for a full run).
import { spawnSync } from 'node:child_process'
import { randomBytes, createHash } from 'node:crypto'
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs'
import { cpus, tmpdir, totalmem } from 'node:os'
import { dirname, join } from 'node:path'
import { fileURLToPath } from 'node:url'
import { setTimeout as sleep } from 'node:timers/promises'
import { startRegistry } from '../test/helpers/registry.ts'
import { pullBlobConcurrently, pullImages, verifyBlob, type SmallImage } from './load.ts'
import { pullImagesWrk, type WrkRun } from './wrk.ts'
import { pushFile, randomFile, seedSmallImages } from './seed.ts'
import { cpuSeconds, cpuSecondsSettled, peakRss, resetPeak, settleDisk, startDistributionProxy, startFerryTarget, startNginx, startNodeLimit, upstreamBlobPath, upstreamTarget, warmFile, type Target } from './targets.ts'
import { regionScenario, type RegionRun } from './region.ts'
import { airgapScenario, mirrorRuns, type AirgapRun } from './airgap.ts'
import { pushBigRuns, pushScenario, type PushRun } from './push.ts'
import { replicationScenario, type ReplicationRun } from './replication.ts'
import { writeReport, type Check, type Results } from './report.ts'
import { ctrScenario, wanScenario, type CtrRun, type WanRun } from './wan.ts'
import { consoleScenario, type ConsoleRun } from './console.ts'
import { traceMode } from './trace.ts'

const MiB = 1024 * 1024
const args = process.argv.slice(2)
const quick = args.includes('--quick')
const here = dirname(fileURLToPath(import.meta.url))
/** Where the report goes: --out, else bench/ for a full run, else a new folder (a quick run's figures are not the record); made only by a run that reports. */
const reportDir = (): string => argValue('--out') ?? (quick ? mkdtempSync(join(tmpdir(), 'ferry-bench-out-')) : here)

const SIZES = quick
  ? { big: 32 * MiB, small: 40, warmSeconds: 1, tagTTLSeconds: 4, scaleBlobs: 2_000, scaleImages: 20, replImages: 20, replBig: 32 * MiB }
  : { big: 512 * MiB, small: 200, warmSeconds: 5, tagTTLSeconds: 15, scaleBlobs: 100_000, scaleImages: 50, replImages: 1000, replBig: 1024 * MiB }

const stops: (() => Promise<void>)[] = []
async function stopAll (): Promise<void> {
  for (const stop of stops.splice(0).reverse()) await stop().catch(() => {})
}
for (const sig of ['SIGINT', 'SIGTERM'] as const) {
  process.once(sig, () => { void stopAll().finally(() => process.exit(130)) })
}

function log (msg: string): void { process.stderr.write(`[bench] ${msg}\n`) }

/** The value given after `name` on the command line. */
function argValue (name: string): string | undefined {
  const i = args.indexOf(name)
  return i >= 0 ? args[i + 1] : undefined
}

/** One scenario on its own, in a folder of its own that goes, with every process it started, when it ends. */
async function alone (name: string, work: (dir: string) => Promise<void>): Promise<void> {
  const dir = mkdtempSync(join(tmpdir(), `ferry-bench-${name}-`))
  try {
    await work(dir)
  } finally {
    await stopAll()
    rmSync(dir, { recursive: true, force: true })
  }
}

async function measure<T> (targets: readonly Target[], name: string, run: (t: Target) => Promise<T>, peaks: Results['peakRss']): Promise<Record<string, T>> {
  const out: Record<string, T> = {}
  for (const t of targets) {
    resetPeak(t.pids())
    out[t.name] = await run(t)
    ;(peaks[name] ??= {})[t.name] = peakRss(t.pids())
  }
  return out
}

async function main (): Promise<void> {
  const dir = mkdtempSync(join(tmpdir(), 'ferry-bench-'))
  stops.push(async () => { rmSync(dir, { recursive: true, force: true }) })
  const started = Date.now()

  log(`seeding the upstream (${quick ? 'quick' : 'full'} run)`)
  const upstreamReg = await startRegistry({ dir: join(dir, 'upstream') })
  stops.push(() => upstreamReg.stop())
  const bigDigests: string[] = []
  for (const name of ['a', 'b', 'c', 'd']) {
    const file = join(dir, `big-${name}.bin`)
    const digest = await randomFile(file, SIZES.big)
    await pushFile(upstreamReg.url, 'bench/big', file, digest)
    rmSync(file)
    bigDigests.push(digest)
  }
  const [digestA, digestB, digestC, digestD] = bigDigests as [string, string, string, string]
  const images = await seedSmallImages(upstreamReg.url, SIZES.small)
  const regionImages = [await seedSmallImages(upstreamReg.url, SIZES.small, 'region1'), await seedSmallImages(upstreamReg.url, SIZES.small, 'region2')] as const

  const ferry = await startFerryTarget(join(dir, 'ferry'), upstreamReg.url, `${SIZES.tagTTLSeconds}s`)
  stops.push(() => ferry.stop())
  const distribution = await startDistributionProxy(join(dir, 'distribution'), upstreamReg.url)
  stops.push(() => distribution.stop())
  const nginx = await startNginx(join(dir, 'nginx'), upstreamReg.host, SIZES.tagTTLSeconds)
  stops.push(() => nginx.stop())
  const direct = upstreamTarget(upstreamReg)
  const proxies = [ferry, distribution, nginx]
  const all = [direct, ...proxies]

  const results: Results = {
    date: new Date().toISOString(), quick,
    machine: { cores: cpus().length, memoryGiB: Math.round(totalmem() / 1024 ** 3) },
    versions: versions(),
    sizes: SIZES,
    scenarios: {}, peakRss: {}, checks: [],
  }
  const blobUrl = (t: Target, d: string): string => `${t.url}/v2/bench/big/blobs/${d}`
  // whole-blob fetches (200); a fill that resumes after a break asks for the rest with a Range (206), not the blob again
  // counted once the upstream's access log has caught up: the previous target's last pull can still be on its way through the pipe
  const upstreamGets = async (d: string): Promise<number> => { await upstreamReg.caughtUp(); return upstreamReg.count('GET', `/blobs/${d}`, 200) }
  const upstreamResumes = async (d: string): Promise<number> => { await upstreamReg.caughtUp(); return upstreamReg.count('GET', `/blobs/${d}`, 206) }

  log('1. one client, cold then warm')
  const one: Record<string, { coldMBps: number, warmMBps: number, ok: boolean, coldCpuPerGiB: number, warmCpuPerGiB: number, upstreamFetches: number }> = {}
  for (const t of all) {
    // each cold pull starts alike: nothing dirty to write back, the page cache given back, the upstream's file read once
    settleDisk()
    warmFile(upstreamBlobPath(upstreamReg.dir, digestA))
    resetPeak(t.pids())
    const fetchesBefore = await upstreamGets(digestA)
    const resumesBefore = await upstreamResumes(digestA)
    const cpuBefore = cpuSeconds(t.pids())
    const cold = await pullBlobConcurrently(blobUrl(t, digestA), 1, SIZES.big)
    // the target's own CPU for the cold pull (for ferry: receive, hash, write, send, commit), per GiB, counted until it goes quiet
    const coldCpuPerGiB = (await cpuSecondsSettled(t.pids) - cpuBefore) / (SIZES.big / 1024 ** 3)
    await sleep(500) // a store that lands after the client is done (distribution fetches the blob again for it)
    const upstreamFetches = await upstreamGets(digestA) - fetchesBefore
    const resumed = await upstreamResumes(digestA) - resumesBefore
    if (resumed > 0) log(`    ${t.name}: the cold pull's transfer from the upstream was resumed ${resumed} time(s)`)
    const warmBefore = cpuSeconds(t.pids())
    const warm = await pullBlobConcurrently(blobUrl(t, digestA), 1, SIZES.big)
    const warmCpuPerGiB = (cpuSeconds(t.pids()) - warmBefore) / (SIZES.big / 1024 ** 3)
    one[t.name] = { coldMBps: SIZES.big / 1e6 / (cold.wallMs / 1000), warmMBps: SIZES.big / 1e6 / (warm.wallMs / 1000), ok: cold.ok === 1 && warm.ok === 1, coldCpuPerGiB, warmCpuPerGiB, upstreamFetches }
    ;(results.peakRss['1 one client'] ??= {})[t.name] = peakRss(t.pids())
  }
  results.scenarios['1 one client'] = one

  log('2. 16 clients, cold')
  const herdCold = await measure(all, '2 16 clients cold', async t => {
    settleDisk()
    warmFile(upstreamBlobPath(upstreamReg.dir, digestB))
    const before = await upstreamGets(digestB)
    const run = await pullBlobConcurrently(blobUrl(t, digestB), 16, SIZES.big)
    return { ...run, upstreamFetches: await upstreamGets(digestB) - before }
  }, results.peakRss)
  for (const t of all) (herdCold[t.name] as Record<string, unknown>).verified = await verifyBlob(blobUrl(t, digestB), 16, digestB)
  results.scenarios['2 16 clients cold'] = herdCold

  log('3. 16 clients, warm')
  results.scenarios['3 16 clients warm'] = await measure(all, '3 16 clients warm', t => pullBlobConcurrently(blobUrl(t, digestB), 16, SIZES.big), results.peakRss)

  log('4. small images, 32 clients, cold then warm')
  // each target's warm passes follow its own cold pass at once, well inside the tag TTL
  const coldAt: Record<string, number> = {}
  const smallCold: Record<string, unknown> = {}
  const smallWarm: Record<string, unknown> = {}
  for (const t of all) {
    resetPeak(t.pids())
    smallCold[t.name] = await pullImages(t.url, images, 32, 1)
    coldAt[t.name] = Date.now()
    ;(results.peakRss['4 small images cold'] ??= {})[t.name] = peakRss(t.pids())
    resetPeak(t.pids())
    await upstreamReg.caughtUp()
    const before = upstreamReg.requests().length
    const warm = await pullImagesWrk(t.url, images, 32, SIZES.warmSeconds)
    // untimed: one more pass by a client that checks every digest and size
    const checked = await pullImages(t.url, images, 32, 1)
    await upstreamReg.caughtUp()
    smallWarm[t.name] = {
      ...warm, failed: warm.failed + checked.failed, checkedPulls: checked.pulls,
      upstreamRequests: upstreamReg.requests().length - before,
      withinTTL: Date.now() - coldAt[t.name]! < SIZES.tagTTLSeconds * 1000,
    }
    ;(results.peakRss['4 small images warm'] ??= {})[t.name] = peakRss(t.pids())
  }
  // the Node.js limit: a bare node:http server with the same answers from memory, in one process as ferry
  const nodeLimit = await startNodeLimit(join(dir, 'node-limit'), upstreamReg.url, images.flatMap(img => [
    [`/v2/${img.repo}/manifests/${img.tag}`, img.mediaType] as [string, string | null],
    ...img.blobs.map(b => [`/v2/${img.repo}/blobs/${b.digest}`, null] as [string, string | null]),
  ]))
  smallWarm['node limit'] = await pullImagesWrk(nodeLimit.url, images, 32, SIZES.warmSeconds)
  await nodeLimit.stop()
  results.scenarios['4 small images cold'] = smallCold
  results.scenarios['4 small images warm'] = smallWarm

  log('5. small images by tag after the TTL')
  const revalidated = await measure(all, '5 tag revalidation', async t => {
    const wait = (coldAt[t.name] ?? 0) + (SIZES.tagTTLSeconds + 1) * 1000 - Date.now()
    if (wait > 0) await sleep(wait)
    await upstreamReg.caughtUp()
    const before = upstreamReg.requests().length
    const r = await pullImages(t.url, images, 32, 1)
    await upstreamReg.caughtUp()
    return { ...r, upstreamRequestsPerPull: (upstreamReg.requests().length - before) / r.pulls }
  }, results.peakRss)
  results.scenarios['5 tag revalidation'] = revalidated

  for (const t of [distribution, nginx]) await t.stop()
  await ferry.stop()
  // each scenario's data goes when it is done: a full run writes tens of GiB
  const done = (...names: string[]): void => { for (const n of names) rmSync(join(dir, n), { recursive: true, force: true }) }
  done('ferry', 'distribution', 'nginx', 'node-limit')
  log('6. a region: one proxy, then two, with Redis, an S3 store and L1 disks')
  results.scenarios['6 region'] = await regionScenario({ dir: join(dir, 'region'), upstream: upstreamReg, bigDigests: [digestC, digestD], bigSize: SIZES.big, images: regionImages, stops, log })
  done('region')
  log('7. scale: warm small-image rate with few and with many cached blobs (ferry)')
  results.scenarios['7 scale'] = await scale(dir, upstreamReg.url, images.slice(0, SIZES.scaleImages), results)
  done('scale')
  results.scenarios['9 replication'] = await replicationScenario({ dir, upstream: upstreamReg, count: SIZES.replImages, bigSize: SIZES.replBig, stops, log })
  done('region-a', 'region-b')
  const pushes = await pushScenario({ dir, count: SIZES.small, bigSize: SIZES.big, stops, log })
  results.scenarios['10 push'] = pushes
  for (const [name, run] of Object.entries(pushes)) (results.peakRss['10 push'] ??= {})[name] = run.peakRss
  done('push-ferry', 'push-distribution')
  results.scenarios['11 air-gap'] = await airgapScenario({ dir: join(dir, 'airgap'), count: quick ? 4 : 8, layerSize: quick ? 8 * MiB : 128 * MiB, stops, log })
  await upstreamReg.stop()
  done('upstream', 'airgap')
  const wan = await wanScenario({ dir: join(dir, 'wan'), quick, stops, log })
  results.scenarios['12 WAN'] = wan
  for (const [name, row] of Object.entries(wan.targets)) if (name !== 'upstream') (results.peakRss['12 WAN'] ??= {})[name] = row.peakRss
  log('13. a real client: ctr images pull, cold then warm')
  results.scenarios['13 ctr'] = await ctrScenario({ dir: join(dir, 'ctr'), quick, runs: quick ? 1 : 3, stops, log })
  results.scenarios['14 console'] = await consoleScenario({ dir: join(dir, 'console'), repositories: quick ? 1000 : 10_000, stops, log })

  results.checks = checks(results)
  results.seconds = Math.round((Date.now() - started) / 1000)
  const outDir = reportDir()
  const text = writeReport(results, outDir)
  process.stdout.write(text + '\n')
  log(`wrote ${join(outDir, 'RESULTS.md')} and results.json`)
}

async function scale (dir: string, upstream: string, images: readonly SmallImage[], results: Results): Promise<Record<string, unknown>> {
  const base = join(dir, 'scale')
  const first = await startFerryTarget(base, upstream, '1h')
  await pullImages(first.url, images, 32, 1)
  await pullImages(first.url, images, 32, 1)
  const few = await medianRun(first.url, images)
  const fewBlobs = await cacheBlobs(first)
  await first.stop()
  // fill the store with many more blobs, as a long-running cache would have
  const root = join(first.data, 'blobs', 'sha256')
  for (let i = 0; i < SIZES.scaleBlobs; i++) {
    const bytes = randomBytes(64)
    const hex = createHash('sha256').update(bytes).digest('hex')
    mkdirSync(join(root, hex.slice(0, 2)), { recursive: true })
    writeFileSync(join(root, hex.slice(0, 2), hex), bytes)
  }
  const t0 = performance.now()
  const second = await startFerryTarget(base, upstream, '1h')
  const listeningMs = performance.now() - t0
  while (await cacheBlobs(second) < fewBlobs + SIZES.scaleBlobs) await sleep(100)
  const indexedMs = performance.now() - t0
  resetPeak(second.pids())
  // as before the first measurement: one untimed pass, so both measure warm hits, not the first reads after a restart
  await pullImages(second.url, images, 32, 1)
  const many = await medianRun(second.url, images)
  ;(results.peakRss['7 scale'] ??= {}).ferry = peakRss(second.pids())
  const manyBlobs = await cacheBlobs(second)
  await second.stop()
  return { few: { ...few, cachedBlobs: fewBlobs }, many: { ...many, cachedBlobs: manyBlobs }, startup: { listeningMs, indexedMs } }
}

/** The median of three wrk runs: single runs of the same warm load vary by 20 % on this VM, more than the 10 % the scale check allows. */
async function medianRun (url: string, images: readonly SmallImage[]): Promise<WrkRun> {
  const runs: WrkRun[] = []
  for (let i = 0; i < 3; i++) runs.push(await pullImagesWrk(url, images, 32, SIZES.warmSeconds))
  return runs.sort((a, b) => a.rate - b.rate)[1]!
}

/** ferry's count of cached blobs; polled while it starts, so a failed request is tried again (then fails with ferry's last log lines). */
async function cacheBlobs (target: { url: string, proc: { lines: string[] } }): Promise<number> {
  for (let attempt = 1; ; attempt++) {
    try {
      const text = await (await fetch(`${target.url}/metrics`)).text()
      return Number(/^ferry_cache_blobs (\d+)/m.exec(text)?.[1] ?? 0)
    } catch (err) {
      if (attempt === 5) throw new Error(`ferry's /metrics did not answer (${String((err as Error).cause ?? err)}); its last lines:\n${target.proc.lines.slice(-20).join('\n')}`)
      log(`    ferry's /metrics failed (${String((err as Error).cause ?? err)}); asking again`)
      await sleep(200 * attempt)
    }
  }
}

function versions (): Results['versions'] {
  const v = (cmd: string, a: string[]): string => {
    // nginx -v prints to stderr: take whichever stream has the text
    const r = spawnSync(cmd, a, { encoding: 'utf8' })
    return `${r.stdout ?? ''}${r.stderr ?? ''}`.trim()
  }
  return {
    node: process.version,
    dockerRegistry: v('docker-registry', ['--version']).split(' ').slice(-1)[0] ?? '?',
    nginx: v('nginx', ['-v']).replace(/^nginx version: /, ''),
  }
}

type Row = Record<string, number>  // booleans count as 0/1 in checks
function checks (r: Results): Check[] {
  const s = r.scenarios as Record<string, Record<string, Row>>
  const one = s['1 one client']!; const cold = s['2 16 clients cold']!; const warm = s['3 16 clients warm']!
  const smallCold = s['4 small images cold']!; const smallWarm = s['4 small images warm']!
  const sc = s['7 scale'] as unknown as { few: Row, many: Row }
  const region = r.scenarios['6 region'] as { one: RegionRun, two: RegionRun }
  const repl = r.scenarios['9 replication'] as ReplicationRun
  const push = r.scenarios['10 push'] as Record<'ferry' | 'distribution', PushRun>
  const ag = r.scenarios['11 air-gap'] as AirgapRun
  const wan = r.scenarios['12 WAN'] as WanRun
  const ctr = r.scenarios['13 ctr'] as CtrRun
  const ui = r.scenarios['14 console'] as ConsoleRun
  const bestWarmWall = Math.min(warm.upstream!.wallMs!, warm.distribution!.wallMs!, warm.nginx!.wallMs!)
  const ferryPeaks = Object.values(r.peakRss).map(p => p.ferry ?? 0)
  const nodeLimit = smallWarm['node limit']!
  const wanBest = Math.min(...['upstream', 'distribution', 'nginx'].map(t => wan.targets[t]!.coldWallS))
  const ctrBest = Math.min(...['distribution', 'nginx'].map(t => ctr.targets[t]!.coldS))
  const c = (name: string, value: number, target: string, pass: boolean): Check => ({ name, value: Math.round(value * 1000) / 1000, target, pass })
  return [
    c('cold, one client: ferry / distribution throughput', one.ferry!.coldMBps! / one.distribution!.coldMBps!, '>= 1', one.ferry!.coldMBps! >= one.distribution!.coldMBps!),
    c('cold, one client: ferry / direct throughput', one.ferry!.coldMBps! / one.upstream!.coldMBps!, '>= 0.5', one.ferry!.coldMBps! >= 0.5 * one.upstream!.coldMBps!),
    c('cold, one client: CPU s per GiB (ferry\'s processes)', one.ferry!.coldCpuPerGiB!, '<= 2', one.ferry!.coldCpuPerGiB! <= 2),
    c('warm, one client: ferry / direct throughput', one.ferry!.warmMBps! / one.upstream!.warmMBps!, '>= 0.9', one.ferry!.warmMBps! >= 0.9 * one.upstream!.warmMBps!),
    c('warm, one client: ferry / nginx throughput', one.ferry!.warmMBps! / one.nginx!.warmMBps!, '>= 1', one.ferry!.warmMBps! >= one.nginx!.warmMBps!),
    c('16 cold: upstream fetches (ferry)', cold.ferry!.upstreamFetches!, '= 1', cold.ferry!.upstreamFetches === 1),
    c('16 cold: slowest first byte, s (ferry)', cold.ferry!.ttfbMaxMs! / 1000, '< 0.1', cold.ferry!.ttfbMaxMs! < 100),
    c('16 cold: wall, ferry / direct', cold.ferry!.wallMs! / cold.upstream!.wallMs!, '<= 1.15', cold.ferry!.wallMs! <= 1.15 * cold.upstream!.wallMs!),
    c('16 cold: digests verified (ferry)', cold.ferry!.verified!, '= 16', cold.ferry!.verified === 16),
    c('16 warm: wall, ferry / best of direct, distribution, nginx', warm.ferry!.wallMs! / bestWarmWall, '< 1', warm.ferry!.wallMs! < bestWarmWall),
    c('small cold: rate, ferry / direct', smallCold.ferry!.rate! / smallCold.upstream!.rate!, '>= 0.8', smallCold.ferry!.rate! >= 0.8 * smallCold.upstream!.rate!),
    c('small warm: rate, ferry / Node limit (bare node:http)', smallWarm.ferry!.rate! / nodeLimit.rate!, '>= 0.9', smallWarm.ferry!.rate! >= 0.9 * nodeLimit.rate!),
    c('small warm: rate, ferry / nginx', smallWarm.ferry!.rate! / smallWarm.nginx!.rate!, '>= 0.6', smallWarm.ferry!.rate! >= 0.6 * smallWarm.nginx!.rate!),
    c('small warm: p99, ferry / nginx', smallWarm.ferry!.p99Ms! / smallWarm.nginx!.p99Ms!, '<= 2', smallWarm.ferry!.p99Ms! <= 2 * smallWarm.nginx!.p99Ms!),
    c('warm pulls by tag within TTL: upstream requests (ferry)', smallWarm.ferry!.upstreamRequests!, '= 0', smallWarm.ferry!.upstreamRequests === 0 && Boolean(smallWarm.ferry!.withinTTL)),
    c('peak RSS, MiB (ferry, worst scenario)', Math.max(...ferryPeaks) / MiB, '< 150', Math.max(...ferryPeaks) < 150 * MiB),
    c('region of 2, 16 cold: upstream fetches', region.two.herdCold.upstreamFetches, '= 1', region.two.herdCold.upstreamFetches === 1),
    c('region of 2, 16 cold: digests verified', region.two.herdCold.verified, '= 16', region.two.herdCold.verified === 16),
    c('region: 16 cold wall, two proxies / one', region.two.herdCold.wallMs / region.one.herdCold.wallMs, '<= 1.15', region.two.herdCold.wallMs <= 1.15 * region.one.herdCold.wallMs),
    c('region: 16 warm wall, two proxies / one', region.two.herdWarm.wallMs / region.one.herdWarm.wallMs, '<= 1.15', region.two.herdWarm.wallMs <= 1.15 * region.one.herdWarm.wallMs),
    c('replication: every image and the big blob at the peer, verified', Number(repl.bigVerified) + repl.imagesVerified, `= ${repl.images}`, repl.bigVerified && repl.imagesVerified === repl.images - 1 && repl.deadLetters === 0),
    c('replication: replicator peak RSS, MiB', repl.replicatorPeakRss / MiB, '< 150', repl.replicatorPeakRss < 150 * MiB),
    c('push, small images: rate, ferry / distribution', push.ferry.imagesPerSecond / push.distribution.imagesPerSecond, '>= 1', push.ferry.imagesPerSecond >= push.distribution.imagesPerSecond),
    c('push, big image: throughput, ferry / distribution', push.ferry.bigMBps / push.distribution.bigMBps, '>= 1', push.ferry.bigMBps >= push.distribution.bigMBps),
    c('push: every pushed image pulls back, verified (ferry)', push.ferry.imagesVerified + Number(push.ferry.bigVerified), `= ${push.ferry.images + 1}`, push.ferry.imagesVerified === push.ferry.images && push.ferry.bigVerified),
    c('scale: warm rate with many blobs / with few', sc.many.rate! / sc.few.rate!, '>= 0.9', sc.many.rate! >= 0.9 * sc.few.rate!),
    c('air-gap: export throughput, ferry / skopeo copy to oci:', ag.ferryExportMBps / ag.skopeoExportMBps, '>= 1', ag.ferryExportMBps >= ag.skopeoExportMBps),
    c('air-gap: import throughput, ferry / skopeo copy from oci:', ag.ferryImportMBps / ag.skopeoImportMBps, '>= 1', ag.ferryImportMBps >= ag.skopeoImportMBps),
    c('air-gap: imported images read back by tag', ag.verified, `= ${ag.images}`, ag.verified === ag.images),
    c('WAN, 8 nodes cold: wall, ferry / best of direct, distribution, nginx', wan.targets.ferry!.coldWallS / wanBest, '<= 1', wan.targets.ferry!.coldWallS <= wanBest),
    c('WAN: bytes over the link, ferry / the images\' unique bytes', wan.targets.ferry!.upstreamBytes / wan.uniqueBytes, '<= 1.01', wan.targets.ferry!.upstreamBytes <= 1.01 * wan.uniqueBytes),
    c('WAN: pulls failed (ferry) + largest layers not verified', wan.targets.ferry!.failed + (wan.images - wan.targets.ferry!.verified), '= 0', wan.targets.ferry!.failed === 0 && wan.targets.ferry!.verified === wan.images),
    c('ctr images pull, cold: ferry / best of distribution, nginx', ctr.targets.ferry!.coldS / ctrBest, '<= 1', ctr.targets.ferry!.coldS <= ctrBest),
    c('ctr images pull, warm: ferry / direct', ctr.targets.ferry!.warmS / ctr.targets.upstream!.warmS, '<= 1.05', ctr.targets.ferry!.warmS <= 1.05 * ctr.targets.upstream!.warmS),
    c(`console: overview first paint with ${ui.repositories} repositories, ms`, ui.overviewPaintMs, '< 1000', ui.overviewPaintMs < 1000),
    c(`console: overview figures on the page with ${ui.repositories} repositories, ms`, ui.overviewReadyMs, '< 1000', ui.overviewReadyMs < 1000),
  ]
}

if (args.includes('--faults')) {
  // the fault run is its own program (faults.ts), as is the long fuzz run
  await import('./faults.ts')
} else if (args.includes('--cold')) {
  await import('./cold.ts')
} else if (args.includes('--region-herd')) {
  await import('./region-herd.ts')
} else if (args.includes('--catalog-flood')) {
  await import('./catalog-flood.ts')
} else if (args.includes('--airgap')) {
  // scenario 11 alone
  await alone('airgap', async dir => { process.stdout.write(JSON.stringify(await airgapScenario({ dir, count: quick ? 4 : 8, layerSize: quick ? 8 * MiB : 128 * MiB, stops, log }), null, 2) + '\n') })
} else if (args.includes('--mirror')) {
  await alone('mirror', async dir => { await mirrorRuns({ dir, count: 8, layerSize: quick ? 8 * MiB : 128 * MiB, runs: Number(argValue('--runs') ?? 4), against: argValue('--against'), stops }) })
} else if (args.includes('--wan')) {
  // scenario 12 alone; --targets ferry,nginx picks which, --runs N repeats them in turns (each run's line is logged)
  await alone('wan', async dir => { await wanScenario({ dir, quick, targets: argValue('--targets')?.split(','), runs: Number(argValue('--runs') ?? 1), stops, log }) })
} else if (args.includes('--ctr')) {
  // scenario 13 alone, --runs rounds of every target in turn
  await alone('ctr', async dir => { process.stdout.write(JSON.stringify(await ctrScenario({ dir, quick, runs: Number(argValue('--runs') ?? 3), trace: traceMode(args), floor: args.includes('--floor'), stops, log }), null, 2) + '\n') })
} else if (args.includes('--push-big')) {
  await alone('push', async dir => { await pushBigRuns({ dir, size: Number(argValue('--size') ?? 512) * MiB, runs: Number(argValue('--runs') ?? 4), stops }) })
} else if (args.includes('--console')) {
  // scenario 14 alone
  await alone('console', async dir => { process.stdout.write(JSON.stringify(await consoleScenario({ dir, repositories: quick ? 1000 : 10_000, stops, log }), null, 2) + '\n') })
} else if (args.includes('--fuzz')) {
  const fuzz = spawnSync(process.execPath, [join(here, '..', 'test', 'run.ts'), join(here, '..', 'test', 'integration', 'fuzz.test.ts')], {
    stdio: 'inherit', env: { ...process.env, FERRY_FUZZ_RUNS: process.env.FERRY_FUZZ_RUNS ?? '5000', FERRY_FUZZ_SEED: process.env.FERRY_FUZZ_SEED ?? String(Date.now() % 1_000_000) },
  })
  process.exitCode = fuzz.status ?? 1
} else {
  main().then(stopAll, async err => {
    const cause = (err as Error).cause as Error | undefined
    process.stderr.write(`[bench] failed: ${(err as Error).stack ?? String(err)}\n${cause !== undefined ? `cause: ${cause.stack ?? String(cause)}\n` : ''}`)
    await stopAll()
    process.exitCode = 1
  })
}
