// Keeps the blob store under its byte limit by evicting the least recently
// used blobs while ferry serves. Recency lives in memory (a Map in LRU order:
// a hit is a delete and a set, no disk write) and is saved as a snapshot now
// and then and at shutdown, so a restart keeps roughly the same order. At
// start the snapshot is loaded at once and reconciled with the store in the
// background, so start-up does not wait for a scan.
import { mkdir, open, readFile, rename } from 'node:fs/promises'
import { dirname } from 'node:path'
import type { Digest } from '../oci/reference.ts'
import { parseDigest } from '../oci/reference.ts'
import type { Holdings } from '../content/hosted-holdings.ts'
import type { Logger } from '../observe/logger.ts'
import type { Metrics } from '../observe/metrics.ts'

/** The figures an Eviction keeps: the region store's, or the L1 tier's. */
export type EvictionMetrics = Pick<Metrics, 'cacheBytes' | 'cacheBlobs' | 'evictions' | 'evictedBytes'>
import type { BlobStore } from '../store/blob-store.ts'

export interface EvictionOptions {
  readonly maxBytes: number
  /** Evict down to this fraction of maxBytes, so eviction runs in batches, not per blob. */
  readonly lowWatermark: number
  readonly snapshotPath: string
  readonly snapshotEveryMs: number
  /** Digests that must stay whatever the size (pushed content); absent: everything may go. */
  readonly keep?: Holdings | undefined
  /** Read the snapshot, never write it (a command's edge beside a proxy that owns it). */
  readonly snapshotReadOnly?: boolean
}

export class Eviction {
  private readonly store: BlobStore
  private readonly opts: EvictionOptions
  private readonly log: Logger
  private readonly metrics: EvictionMetrics
  /** digest -> size, oldest first. */
  private lru = new Map<string, number>()
  private readonly pins = new Map<string, number>()
  private bytes = 0
  private evicting: Promise<void> | undefined
  private dirty = false
  private timer: NodeJS.Timeout | undefined

  constructor (store: BlobStore, opts: EvictionOptions, log: Logger, metrics: EvictionMetrics) {
    this.store = store
    this.opts = opts
    this.log = log
    this.metrics = metrics
  }

  async init (): Promise<void> {
    const started = Date.now()
    try {
      const snapshot = JSON.parse(await readFile(this.opts.snapshotPath, 'utf8')) as [string, number][]
      for (const [digest, size] of snapshot) this.set(digest, size)
    } catch { /* no snapshot yet, or a torn one: the reconcile finds everything */ }
    this.log.info({ blobs: this.lru.size, bytes: this.bytes, ms: Date.now() - started }, 'cache index loaded')
    void this.reconcile().catch(err => { this.log.error({ err }, 'cache reconcile failed') })
    this.timer = setInterval(() => { void this.persist() }, this.opts.snapshotEveryMs)
    this.timer.unref()
  }

  /**
   * A hit: the blob becomes the most recently used. In a large cache, once a
   * second per blob is enough for eviction's order: a delete and a set cost
   * 2.4 µs in a Map of 100,000 blobs against 0.14 µs in one of 100 (the
   * table is rebuilt as deleted entries pile up), on every hit.
   */
  touch (digest: string): void {
    const second = Math.floor(performance.now() / 1000)
    if (second !== this.recentSecond) { this.recent.clear(); this.recentSecond = second }
    const movedAt = this.recent.get(digest)
    // still in the newer half of a large order: its place is good enough, since one eviction takes the oldest
    // 5%. A small order is kept exact: there the move is cheap, and a few blobs added within the second would
    // otherwise push a blob used a moment ago into the few that go next.
    if (movedAt !== undefined && this.lru.size >= APPROXIMATE_FROM && this.moves - movedAt < this.lru.size / 2) return
    const size = this.lru.get(digest)
    if (size === undefined) return
    this.lru.delete(digest)
    this.lru.set(digest, size)
    this.recent.set(digest, ++this.moves)
    this.dirty = true
  }

  /** Blobs moved to the newest end this second, and when (in moves). */
  private readonly recent = new Map<string, number>()
  private recentSecond = 0
  /** Counts every blob put at the newest end: by a hit or by a commit. */
  private moves = 0

  /** A blob was committed to the store. */
  added (digest: string, size: number): void {
    this.set(digest, size)
    this.dirty = true
    this.maybeEvict()
  }

  /** Keep `digest` from eviction until the returned function is called. */
  pin (digest: string): () => void {
    this.pins.set(digest, (this.pins.get(digest) ?? 0) + 1)
    let released = false
    return () => {
      if (released) return
      released = true
      const n = (this.pins.get(digest) ?? 1) - 1
      if (n <= 0) this.pins.delete(digest); else this.pins.set(digest, n)
    }
  }

  private set (digest: string, size: number): void {
    const old = this.lru.get(digest)
    if (old !== undefined) { this.bytes -= old; this.lru.delete(digest) }
    this.lru.set(digest, size)
    this.moves++
    this.bytes += size
    this.gauges()
  }

  private gauges (): void {
    this.metrics.cacheBytes.set(this.bytes)
    this.metrics.cacheBlobs.set(this.lru.size)
  }

  private forget (digest: string): void {
    const size = this.lru.get(digest)
    if (size === undefined) return
    this.lru.delete(digest)
    this.bytes -= size
    this.gauges()
  }

  maybeEvict (): void {
    if (this.bytes <= this.opts.maxBytes || this.evicting !== undefined) return
    this.evict(this.opts.maxBytes * this.opts.lowWatermark)
  }

  /**
   * The disk is full though the cache is under its limit (the limit is more
   * than the disk holds, or something else fills it): free `bytes` now.
   */
  makeRoom (bytes: number): void {
    if (this.evicting !== undefined) return
    this.evict(Math.min(this.bytes - bytes, this.opts.maxBytes * this.opts.lowWatermark))
  }

  private evict (target: number): void {
    this.evicting = this.evictTo(target).catch(err => {
      this.log.error({ err: (err as Error).message }, 'eviction failed')
      return 0
    }).then(count => {
      this.evicting = undefined
      // blobs added while evicting; a round that could free nothing waits for the next commit
      if (count > 0) this.maybeEvict()
    })
  }

  private async evictTo (target: number): Promise<number> {
    // pushed content is read once per round, before anything goes; if it cannot be read, nothing goes
    const keep = this.opts.keep !== undefined && this.bytes > target ? await this.opts.keep() : undefined
    let count = 0
    let freed = 0
    const kept: string[] = []
    for (const [digest, size] of this.lru) {
      if (this.bytes <= target) break
      if (this.pins.has(digest)) continue
      if (keep?.has(digest) === true) { kept.push(digest); continue }
      this.forget(digest)
      let d: Digest
      try { d = parseDigest(digest) } catch { continue }
      await this.store.delete(d)
      count++
      freed += size
    }
    if (count > 0) {
      this.dirty = true
      this.metrics.evictions.inc(count)
      this.metrics.evictedBytes.inc(freed)
      this.log.info({ blobs: count, bytes: freed, cacheBytes: this.bytes, maxBytes: this.opts.maxBytes }, 'evicted least recently used blobs')
    }
    // out of the way of the next rounds
    for (const digest of kept) {
      const size = this.lru.get(digest)
      if (size !== undefined) { this.lru.delete(digest); this.lru.set(digest, size) }
    }
    return count
  }

  /** Learn blobs the snapshot missed (committed after it was saved) and drop ones no longer stored. */
  private async reconcile (): Promise<void> {
    const started = Date.now()
    const known = new Set(this.lru.keys())
    const unknown: [string, number][] = []
    const seen = new Set<string>()
    for await (const digest of this.store.list()) {
      seen.add(digest.value)
      if (known.has(digest.value)) continue
      const info = await this.store.stat(digest)
      if (info !== undefined) unknown.push([digest.value, info.size])
    }
    for (const digest of known) if (!seen.has(digest)) this.forget(digest)
    if (unknown.length > 0) {
      // blobs of unknown recency count as the oldest
      const rest = this.lru
      this.lru = new Map()
      this.bytes = 0
      for (const [d, size] of unknown) if (!rest.has(d)) this.set(d, size)
      for (const [d, size] of rest) this.set(d, size)
      this.dirty = true
    }
    this.log.info({ blobs: this.lru.size, bytes: this.bytes, learned: unknown.length, ms: Date.now() - started }, 'cache index reconciled with the store')
    this.maybeEvict()
  }

  async persist (): Promise<void> {
    if (this.opts.snapshotReadOnly === true) return
    this.persisting ??= this.writeSnapshot().finally(() => { this.persisting = undefined })
    await this.persisting
  }

  private persisting: Promise<void> | undefined

  /**
   * The order, oldest first, as JSON written in slices with the event loop
   * free between them: one JSON.stringify of 100,000 entries held every
   * request for 70-110 ms, every 30 s. A blob moved by a hit during the
   * walk is written again further on; loading keeps its last place.
   */
  private async writeSnapshot (): Promise<void> {
    if (!this.dirty) return
    this.dirty = false
    const tmp = `${this.opts.snapshotPath}.${process.pid}.tmp`
    await mkdir(dirname(this.opts.snapshotPath), { recursive: true })
    const fh = await open(tmp, 'w')
    try {
      let slice: [string, number][] = []
      let written = 0
      const flush = async (): Promise<void> => {
        const json = JSON.stringify(slice)
        await fh.write((written === 0 ? '[' : ',') + json.slice(1, -1))
        written += slice.length
        slice = []
      }
      for (const entry of this.lru) {
        slice.push(entry)
        if (slice.length === SNAPSHOT_SLICE) await flush()
      }
      if (slice.length > 0) await flush()
      await fh.write(written === 0 ? '[]' : ']')
    } finally {
      await fh.close()
    }
    await rename(tmp, this.opts.snapshotPath)
  }

  async close (): Promise<void> {
    if (this.timer !== undefined) clearInterval(this.timer)
    await this.evicting
    await this.persist()
    await this.persist() // the one running when close came may have missed the last changes
  }
}

/** From this many blobs, a repeated hit within a second may leave a blob where it is (see touch). */
const APPROXIMATE_FROM = 10_000

/** Entries per write of the recency snapshot. */
const SNAPSHOT_SLICE = 5_000
