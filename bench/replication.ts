// Scenario 9: replication load. Region A (a ferry in front of the upstream)
// has cached many small images and one big blob; `ferry replicate` pushes it
// all to region B (a ferry that accepts the replication secret). Measured:
// time until B has caught up (lag 0), throughput, the largest lag seen, and
// the replicator's peak RSS (memory must not grow with the blob size).
import { execFile } from 'node:child_process'
import { rmSync } from 'node:fs'
import { join } from 'node:path'
import { promisify } from 'node:util'
import { setTimeout as sleep } from 'node:timers/promises'
import { CLI, NODE_FLAGS } from '../test/helpers/ferry.ts'
import { blob, pushManifest, OCI_CONFIG, OCI_LAYER, OCI_MANIFEST, pushBlob } from '../test/helpers/images.ts'
import { startProc } from '../test/helpers/procs.ts'
import type { Registry } from '../test/helpers/registry.ts'
import { pullBlobConcurrently, pullImages, verifyBlob, type SmallImage } from './load.ts'
import { pushFile, randomFile, seedSmallImages } from './seed.ts'
import { childPids, peakRss, resetPeak, startFerryTarget } from './targets.ts'

const run = promisify(execFile)

export interface ReplicationRun {
  readonly images: number
  readonly bigBytes: number
  readonly seconds: number
  readonly imagesPerSecond: number
  readonly megabytesPerSecond: number
  readonly maxLagEvents: number
  readonly replicatorPeakRss: number
  readonly peerPeakRss: number
  readonly bigVerified: boolean
  readonly imagesVerified: number
  readonly deadLetters: number
}

export async function replicationScenario (opts: {
  dir: string
  upstream: Registry
  count: number
  bigSize: number
  stops: (() => Promise<void>)[]
  log: (msg: string) => void
}): Promise<ReplicationRun> {
  const { dir, upstream } = opts
  opts.log(`9. replication: seeding ${opts.count} images and a ${Math.round(opts.bigSize / 1024 / 1024)} MiB blob`)
  const images = await seedSmallImages(upstream.url, opts.count, 'repl')
  const file = join(dir, 'repl-big.bin')
  const bigDigest = await randomFile(file, opts.bigSize)
  await pushFile(upstream.url, 'repl/big', file, bigDigest)
  rmSync(file)
  const config = blob(OCI_CONFIG, Buffer.from(JSON.stringify({ architecture: 'amd64', os: 'linux', rootfs: { type: 'layers', diff_ids: [bigDigest] } })))
  await pushBlob(upstream.url, 'repl/big', config)
  const manifest = blob(OCI_MANIFEST, Buffer.from(JSON.stringify({
    schemaVersion: 2, mediaType: OCI_MANIFEST,
    config: { mediaType: OCI_CONFIG, digest: config.digest, size: config.bytes.length },
    layers: [{ mediaType: OCI_LAYER, digest: bigDigest, size: opts.bigSize }],
  })))
  await pushManifest(upstream.url, 'repl/big', 'v1', manifest)
  const big: SmallImage = { repo: 'repl/big', tag: 'v1', manifestDigest: manifest.digest, mediaType: OCI_MANIFEST, blobs: [{ digest: config.digest, size: config.bytes.length }] }

  process.env.BENCH_REPLICATION_SECRET = 'bench-replication-secret'
  const b = await startFerryTarget(join(dir, 'region-b'), 'http://127.0.0.1:1', '1h', { replication: { secretEnv: 'BENCH_REPLICATION_SECRET' } })
  opts.stops.push(() => b.stop())
  const a = await startFerryTarget(join(dir, 'region-a'), upstream.url, '1h', {
    replication: { peers: [{ name: 'b', url: b.url, credentials: { username: 'replicator', passwordEnv: 'BENCH_REPLICATION_SECRET' } }], fallback: false, concurrency: 8 },
  })
  opts.stops.push(() => a.stop())

  opts.log('9. replication: pulling everything through region A')
  await pullImages(a.url, [...images, big], 32, 1)
  await pullBlobConcurrently(`${a.url}/v2/repl/big/blobs/${bigDigest}`, 1, opts.bigSize)
  // the store has the blobs once their fills commit
  await sleep(2000)

  const configPath = join(dir, 'region-a', 'ferry.yaml')
  const status = async (): Promise<{ eventsBehind: number, deadLetters: number }> => {
    const { stdout } = await run(process.execPath, [CLI, 'replicate', '--config', configPath, '--status'])
    return JSON.parse(stdout.trim().split('\n')[0]!) as { eventsBehind: number, deadLetters: number }
  }
  // region A records what it served just after answering: start once its stream has stopped growing
  let startLag = (await status()).eventsBehind
  for (let i = 0; i < 60; i++) {
    await sleep(1000)
    const now = (await status()).eventsBehind
    if (now === startLag) break
    startLag = now
  }
  opts.log(`9. replication: replicating (${startLag} events behind)`)
  resetPeak(childPids(b.proc.child.pid!))
  const started = performance.now()
  const replicator = startProc(process.execPath, [...NODE_FLAGS, ...(process.env.FERRY_REPLICATOR_FLAGS?.split(' ').filter(Boolean) ?? []), CLI, 'replicate', '--config', configPath])
  opts.stops.push(() => replicator.stop())
  let maxLag = startLag
  let peak = 0
  let last = { eventsBehind: startLag, deadLetters: 0 }
  const deadline = Date.now() + 20 * 60_000
  while (Date.now() < deadline) {
    await sleep(500)
    peak = Math.max(peak, peakRss([replicator.child.pid!]))
    last = await status()
    maxLag = Math.max(maxLag, last.eventsBehind)
    if (last.eventsBehind === 0) break
  }
  const seconds = (performance.now() - started) / 1000
  peak = Math.max(peak, peakRss([replicator.child.pid!]))
  const peerPeak = peakRss(childPids(b.proc.child.pid!))
  await replicator.stop()

  const bigVerified = await verifyBlob(`${b.url}/v2/repl/big/blobs/${bigDigest}`, 1, bigDigest) === 1
  const check = await pullImages(b.url, images, 16, 1)
  const smallBytes = images.reduce((n, i) => n + i.blobs.reduce((m, x) => m + x.size, 0), 0)
  await a.stop()
  await b.stop()
  return {
    images: images.length + 1,
    bigBytes: opts.bigSize,
    seconds,
    imagesPerSecond: (images.length + 1) / seconds,
    megabytesPerSecond: (opts.bigSize + smallBytes) / 1e6 / seconds,
    maxLagEvents: maxLag,
    replicatorPeakRss: peak,
    peerPeakRss: peerPeak,
    bigVerified,
    imagesVerified: check.pulls - check.failed,
    deadLetters: last.deadLetters,
  }
}
