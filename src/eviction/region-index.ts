// The region store's bookkeeping in Redis, shared by every proxy: a sorted
// set of digests by last use, their sizes, and the total. Hits are batched
// (one pipeline a second per proxy). Eviction runs on one proxy at a time,
// the one holding the evictor lease; a blob used within the grace period is
// never evicted, which stands in for the pins of a single process (a proxy
// reading a blob has just touched it).
import type { Redis } from 'ioredis'
import type { Holdings } from '../content/hosted-holdings.ts'
import type { Logger } from '../observe/logger.ts'
import type { Metrics } from '../observe/metrics.ts'
import { parseDigest } from '../oci/reference.ts'
import type { BlobStore } from '../store/blob-store.ts'
import type { CacheIndex } from './cache-index.ts'

const ADD = `if redis.call('hsetnx', KEYS[2], ARGV[1], ARGV[2]) == 1 then redis.call('incrby', KEYS[3], ARGV[2]) end
redis.call('zadd', KEYS[1], ARGV[3], ARGV[1])
return 1`
const REMOVE = `local s = redis.call('hget', KEYS[2], ARGV[1])
if s then redis.call('hdel', KEYS[2], ARGV[1]); redis.call('decrby', KEYS[3], s) end
redis.call('zrem', KEYS[1], ARGV[1])
return s`
const RELEASE = `if redis.call('get', KEYS[1]) == ARGV[1] then return redis.call('del', KEYS[1]) else return 0 end`

export interface RegionIndexOptions {
  readonly redis: Redis
  readonly prefix: string
  readonly store: BlobStore
  readonly maxBytes: number
  readonly owner: string
  readonly log: Logger
  readonly metrics: Metrics
  readonly graceMs?: number
  readonly checkEveryMs?: number
  /** Digests that must stay whatever the size (pushed content). */
  readonly keep?: Holdings | undefined
}

export class RegionIndex implements CacheIndex {
  private readonly o: RegionIndexOptions
  private readonly keys: { recency: string, sizes: string, total: string, evictor: string, reconciled: string }
  private touched = new Set<string>()
  private readonly timers: NodeJS.Timeout[] = []
  private running: Promise<void> | undefined

  constructor (opts: RegionIndexOptions) {
    this.o = opts
    const p = opts.prefix
    this.keys = { recency: `${p}blobs:recency`, sizes: `${p}blobs:size`, total: `${p}blobs:bytes`, evictor: `${p}evictor`, reconciled: `${p}blobs:reconciled` }
  }

  start (): void {
    this.timers.push(setInterval(() => { void this.flush() }, 1000))
    this.timers.push(setInterval(() => { this.check() }, this.o.checkEveryMs ?? 30_000))
    for (const t of this.timers) t.unref()
    this.check()
  }

  touch (digest: string): void { this.touched.add(digest) }

  added (digest: string, size: number): void {
    this.o.redis.eval(ADD, 3, this.keys.recency, this.keys.sizes, this.keys.total, digest, String(size), String(Date.now()))
      .then(() => this.check(), err => { this.o.log.debug({ err: (err as Error).message, digest }, 'region index: add not recorded (redis down)') })
  }

  pin (): () => void { return () => {} }

  private async flush (): Promise<void> {
    if (this.touched.size === 0) return
    const batch = this.touched
    this.touched = new Set()
    const now = String(Date.now())
    const p = this.o.redis.pipeline()
    for (const d of batch) p.zadd(this.keys.recency, 'XX', now, d)
    await p.exec().catch(() => {})
  }

  /** Evict if over the limit, on whichever proxy wins the evictor lease. */
  check (): void {
    if (this.running !== undefined) return
    this.running = this.evictIfOver().catch(err => {
      this.o.log.debug({ err: (err as Error).message }, 'region eviction skipped')
    }).finally(() => { this.running = undefined })
  }

  /** The disk is full: free about `bytes` now, whatever the limit says. */
  makeRoom (bytes: number): void {
    if (this.running !== undefined) return
    this.running = this.evictIfOver(bytes).catch(err => {
      this.o.log.debug({ err: (err as Error).message }, 'region eviction skipped')
    }).finally(() => { this.running = undefined })
  }

  private async evictIfOver (room = 0): Promise<void> {
    const r = this.o.redis
    const total = Number(await r.get(this.keys.total) ?? 0)
    this.o.metrics.cacheBytes.set(total)
    this.o.metrics.cacheBlobs.set(await r.zcard(this.keys.recency))
    const mustReconcile = await r.exists(this.keys.reconciled) === 0
    if (total <= this.o.maxBytes && !mustReconcile && room === 0) return
    if (await r.set(this.keys.evictor, this.o.owner, 'PX', 120_000, 'NX') !== 'OK') return
    try {
      if (mustReconcile) await this.reconcile()
      await this.evict(Math.min(this.o.maxBytes * 0.95, total - room))
    } finally {
      await r.eval(RELEASE, 1, this.keys.evictor, this.o.owner).catch(() => {})
    }
  }

  /** Learn blobs the store has and the index does not (a new or flushed Redis); they count as the oldest. */
  private async reconcile (): Promise<void> {
    const r = this.o.redis
    let learned = 0
    for await (const digest of this.o.store.list()) {
      if (await r.hexists(this.keys.sizes, digest.value) === 1) continue
      const info = await this.o.store.stat(digest)
      if (info === undefined) continue
      await r.eval(ADD, 3, this.keys.recency, this.keys.sizes, this.keys.total, digest.value, String(info.size), '0')
      learned++
    }
    await r.set(this.keys.reconciled, String(Date.now()), 'EX', 24 * 3600)
    this.o.log.info({ learned }, 'region index reconciled with the store')
  }

  private async evict (target: number): Promise<void> {
    const r = this.o.redis
    const newest = Date.now() - (this.o.graceMs ?? 10 * 60_000)
    let total = Number(await r.get(this.keys.total) ?? 0)
    if (total <= target) return
    // pushed content is read once per round, before anything goes; if it cannot be read, nothing goes
    const keep = await this.o.keep?.()
    let count = 0
    let freed = 0
    while (total > target) {
      const oldest = await r.zrangebyscore(this.keys.recency, '-inf', String(newest), 'LIMIT', 0, 100)
      if (oldest.length === 0) break
      for (const digest of oldest) {
        if (total <= target) break
        if (keep?.has(digest) === true) {
          // out of the way of the next rounds
          await r.zadd(this.keys.recency, 'XX', String(Date.now()), digest)
          continue
        }
        await this.o.store.delete(parseDigest(digest))
        const size = Number(await r.eval(REMOVE, 3, this.keys.recency, this.keys.sizes, this.keys.total, digest) ?? 0)
        total -= size
        freed += size
        count++
      }
    }
    if (count > 0) {
      this.o.metrics.evictions.inc(count)
      this.o.metrics.evictedBytes.inc(freed)
      this.o.metrics.cacheBytes.set(total)
      this.o.log.info({ blobs: count, bytes: freed, cacheBytes: total, maxBytes: this.o.maxBytes }, 'evicted least recently used blobs from the region store')
    }
  }

  async close (): Promise<void> {
    for (const t of this.timers) clearInterval(t)
    await this.running
    await this.flush()
  }
}
