// The region's shared state against a real redis-server: fill leases (who
// leads, expiry of a dead holder, the "stored" mark), region state with its
// fallback to the proxy's memory while Redis is down, and eviction of the
// region store by whichever proxy holds the evictor lease.
import { createHash, randomBytes } from 'node:crypto'
import { writeFileSync } from 'node:fs'
import { rm } from 'node:fs/promises'

import { join } from 'node:path'
import { Redis } from 'ioredis'
import { pino } from 'pino'
import t from 'tap'
import { RedisLeases } from '../../src/blobs/region-lease.ts'
import { RegionIndex } from '../../src/eviction/region-index.ts'
import { Metrics } from '../../src/observe/metrics.ts'
import { parseDigest } from '../../src/oci/reference.ts'
import { FsBlobStore } from '../../src/store/fs-blob-store.ts'
import { connectRedis } from '../../src/state/redis/connect.ts'
import { redisState } from '../../src/state/redis/index.ts'
import { startRedis, type RedisServer } from '../helpers/redis.ts'
import { scratchDir } from '../helpers/procs.ts'

const log = pino({ level: 'silent' })
let server: RedisServer
const clients: Redis[] = []
const dir = scratchDir('ferry-region-state-')

t.before(async () => { server = await startRedis() })
t.teardown(async () => {
  for (const c of clients) c.disconnect()
  await server?.stop()
  await rm(dir, { recursive: true, force: true })
})

function client (): Redis {
  const c = connectRedis({ url: server.url, passwordEnv: undefined }, log)
  clients.push(c)
  return c
}
async function ready (c: Redis): Promise<void> {
  if (c.status !== 'ready') await new Promise(resolve => c.once('ready', resolve))
}

t.test('fill leases: one leader, followers told where it is, a dead holder expires, a finished fill says "stored"', async t => {
  const r1 = client(); const r2 = client()
  await ready(r1); await ready(r2)
  const a = new RedisLeases({ redis: r1, prefix: 'lt:', leaseMs: 1000, peer: () => 'http://10.0.0.1:5000', log, onFallback: () => {} })
  const b = new RedisLeases({ redis: r2, prefix: 'lt:', leaseMs: 1000, peer: () => 'http://10.0.0.2:5000', log, onFallback: () => {} })
  const digest = `sha256:${'a'.repeat(64)}`

  const first = await a.acquire(digest)
  t.equal(first.role, 'leader')
  t.same(await b.acquire(digest), { role: 'follower', peer: 'http://10.0.0.1:5000' })
  await new Promise(resolve => setTimeout(resolve, 1500))
  t.same(await b.acquire(digest), { role: 'follower', peer: 'http://10.0.0.1:5000' }, 'renewed past its lease period while held')

  await a.close() // a proxy that dies stops renewing
  await new Promise(resolve => setTimeout(resolve, 1300))
  const taken = await b.acquire(digest)
  t.equal(taken.role, 'leader', 'a dead holder\'s lease expires and another proxy leads')

  if (taken.role === 'leader') await taken.lease.release(true)
  t.same(await a.acquire(digest), { role: 'stored' }, 'after a stored fill, claims are sent to the store')
  const forced = await a.acquire(digest, true)
  t.equal(forced.role, 'leader', 'a claimant that did not find it in the store leads anyway')
  if (forced.role === 'leader') await forced.lease.release(false)
  const again = await b.acquire(digest)
  t.equal(again.role, 'leader', 'a failed fill leaves no mark')
  if (again.role === 'leader') await again.lease.release()
  await b.close()
})

t.test('fill leases with Redis down: every claim leads, counted as a fallback', async t => {
  const down = connectRedis({ url: 'redis://127.0.0.1:1', passwordEnv: undefined }, log)
  clients.push(down)
  let fallbacks = 0
  const l = new RedisLeases({ redis: down, prefix: 'lt:', leaseMs: 1000, peer: () => 'http://x:1', log, onFallback: () => { fallbacks++ } })
  const started = Date.now()
  const c = await l.acquire(`sha256:${'b'.repeat(64)}`)
  t.equal(c.role, 'leader')
  t.equal(fallbacks, 1)
  t.ok(Date.now() - started < 1000, 'at once, no waiting on Redis')
  await l.close()
})

t.test('region state: shared between proxies; while Redis is down, answered from memory', async t => {
  const r1 = client(); const r2 = client()
  await ready(r1); await ready(r2)
  const s1 = redisState(r1, 'st:', log)
  const s2 = redisState(r2, 'st:', log)
  const key = { repo: 'docker.io/library/nginx', tag: 'latest' }
  const entry = { accept: ['application/vnd.oci.image.manifest.v1+json'], digest: `sha256:${'c'.repeat(64)}`, mediaType: 'application/vnd.oci.image.manifest.v1+json', size: 500, fetchedAt: 1000 }
  await s1.tags.put(key.repo, key.tag, entry)
  t.same(await s2.tags.get(key.repo, key.tag), [entry], 'another proxy sees the tag')
  await s1.manifests.put(entry.digest, { mediaType: entry.mediaType, size: 500 })
  t.equal((await s2.manifests.get(entry.digest))?.mediaType, entry.mediaType)
  await s1.events.append({ kind: 'blob', digest: entry.digest, size: 500, at: 1 })
  await s1.events.append({ kind: 'tag', name: 'library/nginx', tag: 'latest', digest: entry.digest, mediaType: entry.mediaType, at: 2 })
  const stream = await s2.events.read('0', 10)
  t.same(stream.map(e => e.event.kind), ['blob', 'tag'], 'another proxy reads the region\'s events in order')
  t.same((await s2.events.read(stream[0]!.id, 10)).map(e => e.event.at), [2], 'from an id on')
  t.equal(await s2.events.countAfter('0'), 2)
  await s1.events.setCursor('us-east', stream[0]!.id)
  t.equal(await s2.events.cursor('us-east'), stream[0]!.id)

  await server.kill()
  t.same(await s2.tags.get(key.repo, key.tag), [entry], 'the tag this proxy last read')
  t.same(await s1.tags.get(key.repo, 'other'), [], 'an unknown tag is a miss, not an error')
  await s2.tags.put(key.repo, 'new', entry)
  t.same(await s2.tags.get(key.repo, 'new'), [entry], 'a write while down is kept in memory')
  await server.restart()
  await ready(r1)
  t.same(await s1.tags.get(key.repo, key.tag), [], 'Redis restarted empty (no persistence in this test): a miss, refetched upstream')
})

t.test('region index: the evictor deletes least recently used blobs past the limit, sparing recent ones', async t => {
  const r = client()
  await ready(r)
  const store = new FsBlobStore(join(dir, 'store'))
  const blobs = []
  for (let i = 0; i < 6; i++) {
    const bytes = randomBytes(1000)
    const digest = parseDigest(`sha256:${createHash('sha256').update(bytes).digest('hex')}`)
    const path = join(dir, `b${i}`)
    writeFileSync(path, bytes)
    await store.commitFile(digest, path)
    blobs.push(digest)
  }
  const metrics = new Metrics({ defaultMetrics: false })
  const index = new RegionIndex({ redis: r, prefix: 'ix:', store, maxBytes: 4500, owner: 'test', log, metrics, graceMs: 0, checkEveryMs: 60_000 })
  // mark reconciled: this test adds every blob itself
  await r.set('ix:blobs:reconciled', '1')
  for (const d of blobs.slice(0, 4)) { index.added(d.value, 1000); await new Promise(resolve => setTimeout(resolve, 5)) }
  await new Promise(resolve => setTimeout(resolve, 100))
  index.touch(blobs[0]!.value) // the oldest becomes the newest
  index.start()
  await new Promise(resolve => setTimeout(resolve, 1200)) // the touch is flushed
  index.added(blobs[4]!.value, 1000)
  index.added(blobs[5]!.value, 1000)
  let gone: string[] = []
  for (let i = 0; i < 50; i++) {
    gone = []
    for (const d of blobs) if (await store.stat(d) === undefined) gone.push(d.value)
    if (gone.length >= 2) break
    await new Promise(resolve => setTimeout(resolve, 50))
  }
  t.same(gone.sort(), [blobs[1]!.value, blobs[2]!.value].sort(), 'the two least recently used went, not the touched one')
  t.equal(Number(await r.get('ix:blobs:bytes')), 4000, 'the region total follows')
  t.equal(await r.zscore('ix:blobs:recency', blobs[1]!.value), null)
  await index.close()
})
