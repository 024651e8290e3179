// Scenario 10: pushes. The same client pushes into ferry (a hosted
// namespace, a user with the writer role, Basic auth as CI sends it) and
// into Debian's docker-registry (distribution, plain), one after the other:
// many small images (16 at a time), then one big image whose layer streams
// from disk as docker and skopeo send it (POST, one PATCH with the whole
// body, PUT ?digest=). Then every pushed digest is pulled back and checked.
import { createReadStream, rmSync, statSync } from 'node:fs'
import { join } from 'node:path'
import bcrypt from 'bcryptjs'
import { request } from 'undici'
import { blob, OCI_CONFIG, OCI_LAYER, OCI_MANIFEST, pushBlob, pushManifest } from '../test/helpers/images.ts'
import { startRegistry } from '../test/helpers/registry.ts'
import { pullImages, verifyBlob } from './load.ts'
import { randomFile, seedSmallImages } from './seed.ts'
import { cpuSeconds, peakRss, resetPeak, settleDisk, startFerryTarget, type Target } from './targets.ts'

export interface PushRun {
  readonly images: number
  readonly imagesPerSecond: number
  readonly bigBytes: number
  readonly bigMBps: number
  readonly imagesVerified: number
  readonly bigVerified: boolean
  readonly peakRss: number
}

const USER = 'bench'
const PASSWORD = 'bench-push-password'

/** A layer streamed from `path` the way docker and skopeo push one. */
async function pushLayer (registry: string, repo: string, path: string, digest: string, auth: Record<string, string>): Promise<void> {
  const start = await request(`${registry}/v2/${repo}/blobs/uploads/`, { method: 'POST', headers: auth })
  await start.body.dump()
  if (start.statusCode !== 202) throw new Error(`push ${repo}: start ${start.statusCode}`)
  const patch = await request(new URL(start.headers.location as string, registry), {
    method: 'PATCH', body: createReadStream(path, { highWaterMark: 1024 * 1024 }),
    headers: { ...auth, 'content-type': 'application/octet-stream', 'content-length': String(statSync(path).size) },
  })
  await patch.body.dump()
  if (patch.statusCode !== 202) throw new Error(`push ${repo}: PATCH ${patch.statusCode}`)
  const done = new URL(patch.headers.location as string, registry)
  done.searchParams.set('digest', digest)
  const put = await request(done, { method: 'PUT', headers: auth })
  const text = await put.body.text()
  if (put.statusCode !== 201) throw new Error(`push ${repo}: PUT ${put.statusCode} ${text}`)
}

/** ferry with a hosted namespace `bench/` that the bench's user may push to (FERRY_NODE_FLAGS added to its Node flags). */
async function startPushTarget (dir: string): Promise<Target> {
  return await startFerryTarget(join(dir, 'push-ferry'), 'http://127.0.0.1:1', '1h', {
    hosted: [{ prefix: 'bench/' }],
    auth: { users: { [USER]: bcrypt.hashSync(PASSWORD, 10) }, access: [{ repositories: ['bench/**'], allow: { [`user:${USER}`]: 'writer', anonymous: 'reader' } }] },
  }, process.env.FERRY_NODE_FLAGS?.split(' ').filter(Boolean) ?? [])
}

async function pushTo (target: Target, count: number, bigFile: string, bigDigest: string, bigSize: number, auth: string | undefined): Promise<PushRun> {
  const headers: Record<string, string> = auth === undefined ? {} : { authorization: auth }
  resetPeak(target.pids())
  const t0 = performance.now()
  const images = await seedSmallImages(target.url, count, 'bench/push', auth)
  const smallSeconds = (performance.now() - t0) / 1000
  const t1 = performance.now()
  await pushLayer(target.url, 'bench/big', bigFile, bigDigest, headers)
  const bigSeconds = (performance.now() - t1) / 1000
  const peak = peakRss(target.pids())
  const config = blob(OCI_CONFIG, Buffer.from(JSON.stringify({ architecture: 'amd64', os: 'linux', rootfs: { type: 'layers', diff_ids: [bigDigest] } })))
  await pushBlob(target.url, 'bench/big', config, auth)
  await pushManifest(target.url, 'bench/big', 'v1', blob(OCI_MANIFEST, Buffer.from(JSON.stringify({
    schemaVersion: 2, mediaType: OCI_MANIFEST,
    config: { mediaType: OCI_CONFIG, digest: config.digest, size: config.bytes.length },
    layers: [{ mediaType: OCI_LAYER, digest: bigDigest, size: bigSize }],
  }))), auth)
  const check = await pullImages(target.url, images, 16, 1)
  return {
    images: count,
    imagesPerSecond: count / smallSeconds,
    bigBytes: bigSize,
    bigMBps: bigSize / 1e6 / bigSeconds,
    imagesVerified: check.pulls - check.failed,
    bigVerified: await verifyBlob(`${target.url}/v2/bench/big/blobs/${bigDigest}`, 1, bigDigest) === 1,
    peakRss: peak,
  }
}

export async function pushScenario (opts: { dir: string, count: number, bigSize: number, stops: (() => Promise<void>)[], log: (msg: string) => void }): Promise<Record<'ferry' | 'distribution', PushRun>> {
  const bigFile = join(opts.dir, 'push-big.bin')
  const bigDigest = await randomFile(bigFile, opts.bigSize)
  const ferry = await startPushTarget(opts.dir)
  opts.stops.push(() => ferry.stop())
  const registry = await startRegistry({ dir: join(opts.dir, 'push-distribution') })
  opts.stops.push(() => registry.stop())
  const distribution: Target = { name: 'distribution', url: registry.url, pids: () => [registry.proc.child.pid!], stop: () => registry.stop() }
  opts.log(`10. pushes: ${opts.count} small images and one ${Math.round(opts.bigSize / 1024 / 1024)} MiB image, into ferry`)
  const f = await pushTo(ferry, opts.count, bigFile, bigDigest, opts.bigSize, `Basic ${Buffer.from(`${USER}:${PASSWORD}`).toString('base64')}`)
  opts.log('10. pushes: the same into distribution')
  const d = await pushTo(distribution, opts.count, bigFile, bigDigest, opts.bigSize, undefined)
  rmSync(bigFile)
  await ferry.stop()
  await registry.stop()
  return { ferry: f, distribution: d }
}

/**
 * `npm run bench -- --push-big [--size MiB] [--runs N]`: the big layer push
 * alone, into ferry and into distribution in turns, each on a settled disk
 * (the file just written is flushed first, not during a push): MB/s and CPU
 * seconds per GiB of the registry's processes and of the client.
 */
export async function pushBigRuns (opts: { dir: string, size: number, runs: number, stops: (() => Promise<void>)[] }): Promise<void> {
  const bigFile = join(opts.dir, 'push-big.bin')
  const bigDigest = await randomFile(bigFile, opts.size)
  const ferry = await startPushTarget(opts.dir)
  opts.stops.push(() => ferry.stop())
  const registry = await startRegistry({ dir: join(opts.dir, 'push-distribution') })
  opts.stops.push(() => registry.stop())
  const targets: [Target, Record<string, string>][] = [
    [ferry, { authorization: `Basic ${Buffer.from(`${USER}:${PASSWORD}`).toString('base64')}` }],
    [{ name: 'distribution', url: registry.url, pids: () => [registry.proc.child.pid!], stop: () => registry.stop() }, {}],
  ]
  for (let r = 0; r < opts.runs; r++) {
    for (const [t, headers] of r % 2 === 0 ? targets : [...targets].reverse()) {
      settleDisk()
      const cpu = cpuSeconds(t.pids())
      const client = process.cpuUsage()
      const t0 = performance.now()
      await pushLayer(t.url, `bench/big${r}`, bigFile, bigDigest, headers)
      const seconds = (performance.now() - t0) / 1000
      const used = process.cpuUsage(client)
      const gib = opts.size / 1024 ** 3
      process.stdout.write(`${t.name.padEnd(12)} run ${r}: ${(opts.size / 1e6 / seconds).toFixed(0)} MB/s; CPU s per GiB: registry ${((cpuSeconds(t.pids()) - cpu) / gib).toFixed(2)}, client ${((used.user + used.system) / 1e6 / gib).toFixed(2)}\n`)
    }
  }
  rmSync(bigFile)
}
