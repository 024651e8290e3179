// Scenario 6: a region. One ferry proxy against two, both set up as a
// region runs in production (Redis for state and fill leases, an S3 store,
// an L1 disk per proxy), on the herd (16 clients, one cold big blob, then
// warm) and the small-image pulls. The two-proxy region's clients are split
// evenly over its proxies, as a load balancer would.
import { execFileSync } from 'node:child_process'
import { mkdirSync, writeFileSync } from 'node:fs'
import { join } from 'node:path'
import { stringify } from 'yaml'
import { CLI, NODE_FLAGS } from '../test/helpers/ferry.ts'
import { freePort, startProc } from '../test/helpers/procs.ts'
import { startRedis } from '../test/helpers/redis.ts'
import type { Registry } from '../test/helpers/registry.ts'
import { startS3Server, type S3Server } from '../test/helpers/s3-server.ts'
import { pullBlobConcurrently, pullImages, verifyBlob, type BlobRun, type PullRun, type SmallImage } from './load.ts'
import { childPids, cpuSecondsSettled, peakRss, resetPeak, waitForPort } from './targets.ts'

export interface RegionRun {
  readonly proxies: number
  readonly herdCold: BlobRun & { upstreamFetches: number, verified: number }
  readonly herdWarm: BlobRun
  readonly smallCold: PullRun
  readonly smallWarm: PullRun
  /** Peak RSS of all the region's ferry processes together, bytes. */
  readonly peakRss: number
}

export interface Proxy { url: string, pids: () => number[], stop: () => Promise<void> }

/** A proxy of a region as production runs one: Redis state, the S3 store under `prefix`, its own L1 disk. */
export async function startRegionProxy (o: { dir: string, region: string, redisUrl: string, s3: S3Server, prefix: string, upstreamUrl: string }): Promise<Proxy> {
  mkdirSync(o.dir, { recursive: true })
  const port = await freePort()
  const config = join(o.dir, 'ferry.yaml')
  writeFileSync(config, stringify({
    region: o.region, listen: `127.0.0.1:${port}`, data: join(o.dir, 'data'), log: { level: 'warn' },
    state: { type: 'redis', url: o.redisUrl },
    store: { type: 's3', bucket: o.s3.bucket, endpoint: o.s3.endpoint, region: 'us-east-1', prefix: o.prefix },
    l1: { path: join(o.dir, 'l1'), maxBytes: '50GiB' },
    cache: { maxBytes: '50GiB' },
    upstreams: [{ name: 'up', url: o.upstreamUrl, default: true, tagTTL: '10m' }],
  }))
  const proc = startProc(process.execPath, [...NODE_FLAGS, CLI, 'serve', '--config', config], { env: { ...process.env, AWS_ACCESS_KEY_ID: 'S3RVER', AWS_SECRET_ACCESS_KEY: 'S3RVER' } })
  await waitForPort(port)
  return { url: `http://127.0.0.1:${port}`, pids: () => childPids(proc.child.pid!), stop: () => proc.stop() }
}

export async function regionScenario (opts: {
  dir: string
  upstream: Registry
  /** A cold big blob for each region size (1 and 2 proxies). */
  bigDigests: readonly [string, string]
  bigSize: number
  /** A fresh set of small images for each region size. */
  images: readonly [readonly SmallImage[], readonly SmallImage[]]
  stops: (() => Promise<void>)[]
  log: (msg: string) => void
}): Promise<{ one: RegionRun, two: RegionRun }> {
  const redis = await startRedis()
  opts.stops.push(() => redis.stop())
  const s3 = await startS3Server(join(opts.dir, 's3'))
  opts.stops.push(() => s3.close())

  const run = async (size: 1 | 2): Promise<RegionRun> => {
    const proxies: Proxy[] = []
    for (let i = 0; i < size; i++) {
      const p = await startRegionProxy({ dir: join(opts.dir, `region${size}-${i}`), region: `bench${size}`, redisUrl: redis.url, s3, prefix: `region${size}/`, upstreamUrl: opts.upstream.url })
      proxies.push(p)
      opts.stops.push(p.stop)
    }
    const pids = (): number[] => proxies.flatMap(p => p.pids())
    resetPeak(pids())
    const digest = opts.bigDigests[size - 1]!
    const blobUrls = proxies.map(p => `${p.url}/v2/bench/big/blobs/${digest}`)
    const fetches = async (): Promise<number> => { await opts.upstream.caughtUp(); return opts.upstream.count('GET', `/blobs/${digest}`) }

    opts.log(`6. region of ${size}: 16 clients, cold`)
    const before = await fetches()
    const cold = await spread(blobUrls, 16, (url, n) => pullBlobConcurrently(url, n, opts.bigSize))
    const upstreamFetches = await fetches() - before
    let verified = 0
    for (const url of blobUrls) verified += await verifyBlob(url, 16 / size, digest)
    // the cold fill's upload to the store may still be running (s3rver is this process): warm starts once the
    // proxies are quiet and what they wrote is on disk, so it measures serving from L1, not the cold pull's tail
    await cpuSecondsSettled(pids)
    execFileSync('sync')
    opts.log(`6. region of ${size}: 16 clients, warm`)
    const warm = await spread(blobUrls, 16, (url, n) => pullBlobConcurrently(url, n, opts.bigSize))

    opts.log(`6. region of ${size}: small images, cold then warm`)
    const images = opts.images[size - 1]!
    const smallCold = await spreadImages(proxies.map(p => p.url), images, 32, 1)
    const smallWarm = await spreadImages(proxies.map(p => p.url), images, 32, 3)
    const peak = peakRss(pids())
    for (const p of proxies) await p.stop()
    return { proxies: size, herdCold: { ...cold, upstreamFetches, verified }, herdWarm: warm, smallCold, smallWarm, peakRss: peak }
  }

  const one = await run(1)
  const two = await run(2)
  return { one, two }
}

/** `clients` split evenly over `urls`, all at once; one BlobRun for the lot. */
async function spread (urls: readonly string[], clients: number, pull: (url: string, n: number) => Promise<BlobRun>): Promise<BlobRun> {
  const started = performance.now()
  const runs = await Promise.all(urls.map(u => pull(u, clients / urls.length)))
  return {
    wallMs: performance.now() - started,
    ttfbMaxMs: Math.max(...runs.map(r => r.ttfbMaxMs)),
    ok: runs.reduce((n, r) => n + r.ok, 0),
    clients,
  }
}

/** The images pulled through every proxy at once, each proxy's share of the concurrency taking its share of the images. */
async function spreadImages (urls: readonly string[], images: readonly SmallImage[], concurrency: number, passes: number): Promise<PullRun> {
  const shares = urls.map((_, i) => images.filter((__, k) => k % urls.length === i))
  const started = performance.now()
  const runs = await Promise.all(urls.map((u, i) => pullImages(u, shares[i]!, concurrency / urls.length, passes)))
  const seconds = (performance.now() - started) / 1000
  const pulls = runs.reduce((n, r) => n + r.pulls, 0)
  return {
    pulls,
    failed: runs.reduce((n, r) => n + r.failed, 0),
    seconds,
    rate: pulls / seconds,
    // percentiles of the parts: the worse of them stands for the whole
    p50Ms: Math.max(...runs.map(r => r.p50Ms)),
    p99Ms: Math.max(...runs.map(r => r.p99Ms)),
  }
}
