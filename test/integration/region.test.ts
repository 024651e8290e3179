// A region: three ferry proxies sharing a real redis-server and a real S3
// server (s3rver), each with its own L1 disk, in front of a real registry
// behind a fault proxy that counts (and can slow) what the upstream is asked.
// Coalescing across proxies, the tiers, and what an outage of Redis, of the
// store, or of a proxy (kill -9 mid-fill) does to clients and the cache.
import { randomBytes } from 'node:crypto'
import { existsSync } from 'node:fs'
import { rm } from 'node:fs/promises'

import { join } from 'node:path'
import { Redis } from 'ioredis'
import t, { type Test } from 'tap'
import { parseDigest } from '../../src/oci/reference.ts'
import { S3BlobStore } from '../../src/store/s3-blob-store.ts'
import { startFerry, type Ferry } from '../helpers/ferry.ts'
import { startFaulty, type Faulty } from '../helpers/faulty.ts'
import { get, ociError } from '../helpers/http.ts'
import { blob, image, pushBlob, pushImage, OCI_MANIFEST, type Blob } from '../helpers/images.ts'
import { pullBlob, type Pulled } from '../helpers/pull.ts'
import { eventually, freePort, scratchDir } from '../helpers/procs.ts'
import { startRedis, type RedisServer } from '../helpers/redis.ts'
import { startRegistry, type Registry } from '../helpers/registry.ts'
import { startS3Server, type S3Server } from '../helpers/s3-server.ts'

const MiB = 1024 * 1024
const PREFIX = 'ferry:test:'
const REPO = 'region/app'
let upstream: Registry
let faulty: Faulty
let redis: RedisServer
let s3: S3Server
let redisClient: Redis
let s3Store: S3BlobStore
const s3Dir = scratchDir('ferry-s3-')
const proxies: Ferry[] = []

function regionConfig (data: string, port: number): Record<string, unknown> {
  return {
    region: 'test',
    listen: `127.0.0.1:${port}`,
    data,
    state: { type: 'redis', url: redis.url, keyPrefix: PREFIX, lease: '2s' },
    store: { type: 's3', bucket: s3.bucket, endpoint: s3.endpoint, region: 'us-east-1', prefix: 'region/' },
    l1: { path: join(data, 'l1'), maxBytes: '1GiB' },
    upstreams: [{ name: 'up', url: faulty.url, default: true, timeouts: { bodyIdle: '2s' } }],
    cache: { resumeAttempts: 5, resumeBackoff: '100ms' },
  }
}

async function startProxy (name: string, port?: number): Promise<Ferry> {
  const data = scratchDir(`ferry-${name}-`)
  return await startFerry({ data, config: regionConfig(data, port ?? await freePort()), env: { AWS_ACCESS_KEY_ID: 'S3RVER', AWS_SECRET_ACCESS_KEY: 'S3RVER' } })
}

t.before(async () => {
  upstream = await startRegistry()
  faulty = await startFaulty(upstream.url)
  redis = await startRedis()
  s3 = await startS3Server(s3Dir)
  redisClient = new Redis(redis.url, { maxRetriesPerRequest: 1, lazyConnect: true })
  redisClient.on('error', () => {})
  await redisClient.connect()
  s3Store = new S3BlobStore({ bucket: s3.bucket, region: 'us-east-1', endpoint: s3.endpoint, prefix: 'region/', forcePathStyle: true })
  for (const name of ['a', 'b', 'c']) proxies.push(await startProxy(name))
})
t.teardown(async () => {
  for (const p of proxies) await p.stop()
  redisClient?.disconnect()
  s3Store?.close()
  await s3?.close()
  await redis?.stop()
  await faulty?.close()
  await upstream?.stop()
  await rm(s3Dir, { recursive: true, force: true })
})

async function newBlob (size: number): Promise<Blob> {
  const b = blob('application/octet-stream', randomBytes(size))
  await pushBlob(upstream.url, REPO, b)
  return b
}
const blobPath = (b: Blob): string => `/v2/${REPO}/blobs/${b.digest}`
const l1Has = (p: Ferry, b: Blob): boolean => existsSync(join(p.data, 'l1', 'sha256', b.digest.slice(7, 9), b.digest.slice(7)))

async function metric (p: Ferry, name: string, label = ''): Promise<number> {
  const text = (await get(`${p.url}/metrics`)).body.toString()
  let sum = 0
  for (const line of text.split('\n')) {
    if ((line.startsWith(name + ' ') || line.startsWith(name + '{')) && line.includes(label)) sum += Number(line.split(' ').pop())
  }
  return sum
}

/** Poll an async check until it holds (the region store is written after clients have their bytes). */
async function until (check: () => Promise<boolean>, timeoutMs = 10_000): Promise<boolean> {
  const deadline = Date.now() + timeoutMs
  while (!await check()) {
    if (Date.now() > deadline) return false
    await new Promise(resolve => setTimeout(resolve, 50))
  }
  return true
}
const inStore = async (b: Blob): Promise<boolean> => (await s3Store.stat(parseDigest(b.digest)))?.size === b.bytes.length

function expectWhole (t: Test, pulls: Pulled[], b: Blob): void {
  for (const p of pulls) {
    t.equal(p.status, 200)
    t.ok(p.complete, 'transfer complete')
    t.equal(p.digest, b.digest, 'the right bytes')
  }
}

t.test('one cold blob, 16 clients over three proxies: one upstream GET for the region', async t => {
  const b = await newBlob(24 * MiB)
  // slow enough that every client arrives while the fill runs
  faulty.fault = req => req.url === blobPath(b) ? { bytesPerSecond: 12 * MiB } : undefined
  const pulls = await Promise.all(Array.from({ length: 16 }, (_, i) => pullBlob(`${proxies[i % 3]!.url}${blobPath(b)}`)))
  faulty.fault = undefined
  expectWhole(t, pulls, b)
  t.equal(faulty.count('GET', blobPath(b)), 1, 'the upstream was asked once')
  let peerFed = 0
  for (const p of proxies) peerFed += await metric(p, 'ferry_fill_sources_total', 'source="peer"')
  t.equal(peerFed, 2, 'the two proxies that did not lead streamed from the leader')
  t.ok(await eventually(() => proxies.every(p => l1Has(p, b)), 5000), 'every proxy keeps it in its L1')
  t.ok(await until(() => inStore(b)), 'the region store has it')
  const stream = await redisClient.xrange(`${PREFIX}events`, '-', '+')
  t.equal(stream.filter(([, f]) => f.some(v => v.includes(`"kind":"blob","digest":"${b.digest}"`))).length, 1, 'committed once to the region stream')
})

t.test('a corrupting upstream, 16 clients over three proxies: none receives the whole length of the wrong blob, nothing is kept', async t => {
  const b = await newBlob(12 * MiB)
  const size = b.bytes.length
  faulty.fault = req => req.url === blobPath(b) ? { bytesPerSecond: 12 * MiB, corruptAt: size - 10 } : undefined
  const pulls = await Promise.all(Array.from({ length: 16 }, (_, i) => pullBlob(`${proxies[i % 3]!.url}${blobPath(b)}`)))
  faulty.fault = undefined
  // a proxy cut by the leader before the bad byte resumes from the upstream by Range, which this fault leaves intact
  const whole = pulls.filter(p => p.bytes === size)
  t.same(whole.filter(p => p.digest !== b.digest).map(p => p.digest), [], `no client received the whole length of wrong bytes (${whole.length} got the right blob after a resume, ${pulls.length - whole.length} were cut)`)
  t.ok(pulls.some(p => !p.complete && p.bytes < size), 'the leader\'s own clients were cut')
  const gets = faulty.seen.filter(r => r.method === 'GET' && r.path === blobPath(b))
  t.equal(gets.filter(r => r.range === undefined).length, 1, 'one whole upstream GET for the region')
  // whatever a proxy kept, it verified: the next pulls from every proxy get the right bytes
  expectWhole(t, await Promise.all(proxies.map(p => pullBlob(`${p.url}${blobPath(b)}`))), b)
})

t.test('the tiers: an L1 miss that the region store has is streamed from it, then hits L1', async t => {
  const b = await newBlob(6 * MiB)
  const first = await pullBlob(`${proxies[0]!.url}${blobPath(b)}`)
  expectWhole(t, [first], b)
  t.ok(await eventually(() => l1Has(proxies[0]!, b), 5000))
  t.ok(await until(() => inStore(b)), 'in the region store')
  const d = proxies[1]!
  t.notOk(l1Has(d, b), 'not in the other proxy\'s L1 yet')
  const before = await metric(d, 'ferry_fill_sources_total', 'source="store"')
  const fromStore = await pullBlob(`${d.url}${blobPath(b)}`)
  expectWhole(t, [fromStore], b)
  const storeReads = await metric(d, 'ferry_fill_sources_total', 'source="store"')
  // once seen under a loaded full run: two store reads for one fill (a resumed read?); kept visible until understood
  if (storeReads !== before + 1) t.comment(d.logs().filter(l => Number(l.level) >= 40 || String(l.msg).includes('fill')).slice(-10).map(l => JSON.stringify(l)).join('\n'))
  t.ok(storeReads > before, 'read from the region store')
  t.ok(await eventually(() => l1Has(d, b), 5000), 'and kept in L1')
  const again = await pullBlob(`${d.url}${blobPath(b)}`)
  expectWhole(t, [again], b)
  t.equal(await metric(d, 'ferry_fill_sources_total', 'source="store"'), storeReads, 'the next pull is an L1 hit')
  t.equal(faulty.count('GET', blobPath(b)), 1, 'the upstream was asked once in all')

  // a range is read from the region store as it is
  const r = await get(`${proxies[2]!.url}${blobPath(b)}`, { range: 'bytes=100-199' })
  t.equal(r.status, 206)
  t.ok(r.body.equals(b.bytes.subarray(100, 200)))
})

t.test('Redis down: cached blobs and tags still served, fills per proxy; coalescing returns with Redis', async t => {
  const img = await image({ layerCount: 1 })
  await pushImage(upstream.url, REPO, 'v1', img)
  const warm = await newBlob(3 * MiB)
  const accept = { accept: OCI_MANIFEST }
  t.equal((await get(`${proxies[0]!.url}/v2/${REPO}/manifests/v1`, accept)).status, 200)
  expectWhole(t, [await pullBlob(`${proxies[0]!.url}${blobPath(warm)}`)], warm)

  // killed under load: a herd on a cold blob is streaming through the leader when Redis dies
  const inFlight = await newBlob(16 * MiB)
  faulty.fault = req => req.url === blobPath(inFlight) ? { bytesPerSecond: 8 * MiB } : undefined
  const herd = Promise.all(Array.from({ length: 6 }, (_, i) => pullBlob(`${proxies[i % 3]!.url}${blobPath(inFlight)}`)))
  await new Promise(resolve => setTimeout(resolve, 700))
  await redis.kill()
  expectWhole(t, await herd, inFlight)
  faulty.fault = undefined
  t.equal(faulty.count('GET', blobPath(inFlight)), 1, 'the fill under way when Redis died finished once for the region')

  const hit = await pullBlob(`${proxies[0]!.url}${blobPath(warm)}`)
  expectWhole(t, [hit], warm)
  const tag = await get(`${proxies[0]!.url}/v2/${REPO}/manifests/v1`, accept)
  t.equal(tag.status, 200, 'a cached tag is served')
  t.equal(tag.headers['docker-content-digest'], img.manifest.digest)

  const cold = await newBlob(8 * MiB)
  faulty.fault = req => req.url === blobPath(cold) ? { bytesPerSecond: 8 * MiB } : undefined
  const started = Date.now()
  const pulls = await Promise.all([0, 1, 0, 1].map(i => pullBlob(`${proxies[i]!.url}${blobPath(cold)}`)))
  faulty.fault = undefined
  expectWhole(t, pulls, cold)
  t.ok(Date.now() - started < 15_000, 'no long wait on Redis')
  const gets = faulty.count('GET', blobPath(cold))
  t.ok(gets >= 1 && gets <= 2, `at most one upstream GET per proxy (${gets})`)
  t.ok(await metric(proxies[0]!, 'ferry_fill_lease_fallbacks_total') >= 1, 'counted as a fill without a lease')

  await redis.restart()
  const again = await newBlob(8 * MiB)
  faulty.fault = req => req.url === blobPath(again) ? { bytesPerSecond: 8 * MiB } : undefined
  // the proxies reconnect by themselves (their retry backs off to 1 s)
  await new Promise(resolve => setTimeout(resolve, 2500))
  const after = await Promise.all(Array.from({ length: 6 }, (_, i) => pullBlob(`${proxies[i % 3]!.url}${blobPath(again)}`)))
  faulty.fault = undefined
  expectWhole(t, after, again)
  t.equal(faulty.count('GET', blobPath(again)), 1, 'one upstream GET for the region again')
})

t.test('object store down: L1 hits served, misses get a prompt 503, nothing half-written', async t => {
  const warm = await newBlob(2 * MiB)
  expectWhole(t, [await pullBlob(`${proxies[1]!.url}${blobPath(warm)}`)], warm)
  t.ok(await eventually(() => l1Has(proxies[1]!, warm), 5000))
  const cold = await newBlob(2 * MiB)

  await s3.close()
  const hit = await pullBlob(`${proxies[1]!.url}${blobPath(warm)}`)
  expectWhole(t, [hit], warm)
  const started = Date.now()
  const miss = await get(`${proxies[1]!.url}${blobPath(cold)}`)
  t.ok(Date.now() - started < 10_000, `prompt (${Date.now() - started} ms)`)
  t.equal(miss.status, 503)
  t.equal(ociError(miss)?.code, 'UNAVAILABLE')

  s3 = await startS3Server(s3Dir, s3.port)
  t.equal(await s3Store.stat(parseDigest(cold.digest)), undefined, 'no object for the failed miss')
  const later = await pullBlob(`${proxies[1]!.url}${blobPath(cold)}`)
  expectWhole(t, [later], cold)
  t.ok(await until(() => inStore(cold)), 'stored once the store is back')
})

t.test('kill -9 of the leading proxy mid-fill: the other proxies\' clients get correct bytes, one new fill at most', async t => {
  const b = await newBlob(32 * MiB)
  faulty.fault = req => req.url?.startsWith(blobPath(b)) === true ? { bytesPerSecond: 8 * MiB } : undefined
  const [leader, b1, c1] = proxies as [Ferry, Ferry, Ferry]
  const leaderPull = pullBlob(`${leader.url}${blobPath(b)}`)
  t.ok(await eventually(() => faulty.count('GET', blobPath(b)) === 1, 5000), 'the leader asked the upstream')
  const lease = await redisClient.get(`${PREFIX}fill:${b.digest}`)
  t.match(lease, `"peer":"http://127.0.0.1:${leader.port}"`, 'the lease names the leader')
  const followers = [b1, c1, b1, c1].map(p => pullBlob(`${p.url}${blobPath(b)}`))
  await new Promise(resolve => setTimeout(resolve, 1000))
  await leader.kill()
  const got = await Promise.all(followers)
  faulty.fault = undefined
  expectWhole(t, got, b)
  const leaderGot = await leaderPull
  t.notOk(leaderGot.complete && leaderGot.digest === b.digest, 'the killed proxy\'s own client was cut')
  const gets = faulty.seen.filter(r => r.method === 'GET' && r.path.startsWith(blobPath(b)))
  t.ok(gets.length <= 2, `one new fill at most (${gets.length} upstream GETs)`)
  if (gets.length === 2) t.match(gets[1]!.range, /^bytes=\d+-$/, 'the new fill resumed where the followers were')
  t.ok(await until(() => inStore(b)), 'the region store has the blob')

  // the region keeps serving with the proxy replaced
  proxies[0] = await startProxy('a2')
  expectWhole(t, [await pullBlob(`${proxies[0].url}${blobPath(b)}`)], b)
  t.equal(faulty.seen.filter(r => r.method === 'GET' && r.path.startsWith(blobPath(b))).length, gets.length, 'served from the region store')
})
