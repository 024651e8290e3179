// One contract for every BlobSource, each against the real thing behind it:
// memory, a store of this proxy (L1) or of the region (fs), a fill another
// proxy of the region serves (a real ferry with an S3 store and an L1), another
// region (a real ferry, asked peer-only) and the upstream (a real registry).
// A source that holds a blob gives its bytes from any offset; one that does
// not says so (undefined), except the upstream, whose 404 is the answer.
import { randomBytes } from 'node:crypto'
import { existsSync, writeFileSync } from 'node:fs'

import { join } from 'node:path'
import { pino } from 'pino'
import { Redis } from 'ioredis'
import t from 'tap'
import { RegionSecret } from '../../src/blobs/region-secret.ts'
import { startRedis, type RedisServer } from '../helpers/redis.ts'
import type { BlobSource } from '../../src/blobs/source.ts'
import { MemorySource } from '../../src/blobs/sources/memory.ts'
import { PeerRegionSource } from '../../src/blobs/sources/peer-region.ts'
import { RegionPeers } from '../../src/blobs/sources/region-peer.ts'
import { StoreSource } from '../../src/blobs/sources/store.ts'
import { UpstreamSource } from '../../src/blobs/sources/upstream.ts'
import { parseRegion } from '../../src/config/parse.ts'
import { Eviction } from '../../src/eviction/eviction.ts'
import { collect } from '../../src/io/body.ts'
import { Metrics } from '../../src/observe/metrics.ts'
import { OciError } from '../../src/oci/errors.ts'
import { fromOffset } from '../../src/oci/range.ts'
import { parseDigest, type Digest } from '../../src/oci/reference.ts'
import { RegistryError } from '../../src/registry-client/errors.ts'
import { FsBlobStore } from '../../src/store/fs-blob-store.ts'
import { PeerRegions } from '../../src/upstream/peer-regions.ts'
import type { Route } from '../../src/upstream/router.ts'
import { Upstream } from '../../src/upstream/upstream.ts'
import { startFerry, type Ferry } from '../helpers/ferry.ts'
import { blob, pushBlob, type Blob } from '../helpers/images.ts'
import { pullBlob } from '../helpers/pull.ts'
import { startRegistry, type Registry } from '../helpers/registry.ts'
import { startS3Server, type S3Server } from '../helpers/s3-server.ts'
import { eventually, scratchDir } from '../helpers/procs.ts'

const log = pino({ level: 'silent' })
const dir = scratchDir('ferry-sources-')
const REPO = 'sources/blob'
let registry: Registry
let s3: S3Server
let leader: Ferry
let redis: RedisServer
let otherRegion: Ferry
let big: Blob
let small: Blob
let route: Route
const absent = parseDigest(`sha256:${'e'.repeat(64)}`)
const closers: (() => Promise<void> | void)[] = []

t.before(async () => {
  registry = await startRegistry()
  big = blob('application/octet-stream', randomBytes(3 * 1024 * 1024 + 17))
  small = blob('application/octet-stream', randomBytes(1000))
  for (const b of [big, small]) await pushBlob(registry.url, REPO, b)
  const { config } = parseRegion({ upstreams: [{ name: 'up', url: registry.url, default: true }] }, 'test.yaml')
  const upstream = new Upstream(config!.upstreams[0]!, new Metrics({ defaultMetrics: false }))
  closers.push(() => upstream.close())
  route = { upstream, repo: REPO }
  // another proxy of the region: an S3 store and an L1, so it serves what its disk holds to its peers
  s3 = await startS3Server(join(dir, 's3'))
  redis = await startRedis()
  leader = await startFerry({ config: {
    state: { type: 'redis', url: redis.url, keyPrefix: 'ferry:sources:' },
    store: { type: 's3', bucket: s3.bucket, endpoint: s3.endpoint, region: 'us-east-1' },
    l1: { path: join(dir, 'leader-l1'), maxBytes: '1GiB' },
    upstreams: [{ name: 'up', url: registry.url, default: true }],
  } })
  // another region, holding the blob under the name every region knows it by
  otherRegion = await startFerry({ config: { upstreams: [{ name: 'up', url: registry.url, default: true }] } })
  for (const f of [leader, otherRegion]) {
    for (const b of [big, small]) t.equal((await pullBlob(`${f.url}/v2/${REPO}/blobs/${b.digest}`)).digest, b.digest)
  }
  // the leader serves its peers from its L1 once the fill has committed there
  t.ok(await eventually(() => existsSync(join(dir, 'leader-l1', 'sha256', big.digest.slice(7, 9), big.digest.slice(7)))), 'in the leader\'s L1')
})
t.teardown(async () => {
  for (const c of closers) await c()
  await leader?.stop(); await otherRegion?.stop(); await s3?.close(); await redis?.stop(); await registry?.stop()
})

/** A source holding `holds`, and whether it is one of this region's tiers (which serve any range, and sizes alone). */
interface Subject { readonly source: BlobSource, readonly holds: Blob, readonly tier: boolean }

async function storeWith (name: 'l1' | 'store', b: Blob): Promise<StoreSource> {
  const store = new FsBlobStore(join(dir, name))
  const file = join(dir, `${name}-staged`)
  writeFileSync(file, b.bytes)
  await store.commitFile(parseDigest(b.digest), file)
  const index = new Eviction(store, { maxBytes: 1 << 30, lowWatermark: 0.95, snapshotPath: join(dir, `${name}-recency.json`), snapshotEveryMs: 60_000 }, log, new Metrics({ defaultMetrics: false }))
  await index.init()
  closers.push(() => index.close())
  return new StoreSource(name, store, index)
}

const subjects: Record<string, () => Promise<Subject>> = {
  memory: async () => {
    const memory = new MemorySource(1 << 20)
    memory.keep(small.digest, small.bytes)
    return { source: memory, holds: small, tier: true }
  },
  l1: async () => ({ source: await storeWith('l1', big), holds: big, tier: true }),
  store: async () => ({ source: await storeWith('store', big), holds: big, tier: true }),
  'region-peer': async () => {
    // a proxy of the same region: it knows the region's secret from the region's Redis
    const client = new Redis(redis.url, { lazyConnect: true, maxRetriesPerRequest: 1 })
    await client.connect()
    const peers = new RegionPeers(new RegionSecret(client, 'ferry:sources:'))
    closers.push(async () => { await peers.close(); client.disconnect() })
    return { source: peers.at(leader.url), holds: big, tier: false }
  },
  'peer-region': async () => {
    const regions = new PeerRegions([{ name: 'other', url: new URL(otherRegion.url), credentials: undefined, caFile: undefined, insecure: false }], 2000, log)
    closers.push(() => regions.close())
    return { source: new PeerRegionSource(regions, log), holds: big, tier: false }
  },
  upstream: async () => ({ source: new UpstreamSource(), holds: big, tier: false }),
}

async function bytesOf (source: BlobSource, digest: Digest, offset?: number): Promise<{ size: number | undefined, start: number, bytes: Buffer } | undefined> {
  const opened = await source.open({ digest, route, ...(offset !== undefined ? { range: fromOffset(offset) } : {}) })
  if (opened === undefined) return undefined
  return { size: opened.size, start: opened.start, bytes: await collect(opened.body, 64 * 1024 * 1024) }
}

for (const [name, make] of Object.entries(subjects)) {
  t.test(`${name} source`, async t => {
    const { source, holds, tier } = await make()
    const digest = parseDigest(holds.digest)
    t.equal(source.name, name)

    const whole = await bytesOf(source, digest)
    t.ok(whole, 'it has the blob')
    t.equal(whole?.size, holds.bytes.length, 'and says its size')
    t.equal(whole?.start, 0)
    t.ok(whole?.bytes.equals(holds.bytes), 'every byte, the right ones')

    const offset = Math.floor(holds.bytes.length / 3)
    const rest = await bytesOf(source, digest, offset)
    t.ok(rest, 'from an offset too')
    t.ok(rest!.start === offset || rest!.start === 0, 'the body starts at the offset (or the source says it sent all)')
    t.ok(rest?.bytes.equals(holds.bytes.subarray(rest.start)), 'the bytes from where the body starts')
    t.equal(rest?.size, holds.bytes.length)

    if (name === 'upstream') {
      const err = await source.open({ digest: absent, route }).then(() => undefined, (e: unknown) => e)
      t.ok(err instanceof RegistryError && err.code === 'REGISTRY_NOT_FOUND', 'the upstream\'s "no such blob" is the answer: REGISTRY_NOT_FOUND')
    } else {
      t.equal(await source.open({ digest: absent, route }), undefined, 'a blob it does not hold: undefined, so the next source is asked')
    }

    if (tier) {
      const sized = await source.open({ digest, sizeOnly: true })
      t.equal(sized?.size, holds.bytes.length, 'a size alone, for a HEAD')
      t.equal(sized?.body.bytes?.length ?? 0, 0, 'with no bytes')
      const suffix = await source.open({ digest, range: { kind: 'suffix', length: 10 } })
      t.ok((await collect(suffix!.body, 1 << 20)).equals(holds.bytes.subarray(-10)), 'the last bytes (a suffix range)')
      const part = await source.open({ digest, range: { kind: 'from', start: 5, end: 14 } })
      t.equal(part?.start, 5)
      t.equal(part?.length, 10)
      t.ok((await collect(part!.body, 1 << 20)).equals(holds.bytes.subarray(5, 15)), 'a closed range')
      const past = await source.open({ digest, range: fromOffset(holds.bytes.length) }).then(() => undefined, (e: unknown) => e)
      t.equal((past as OciError | undefined)?.code, 'RANGE_INVALID', 'a range past the end is not satisfiable')
    }
  })
}
