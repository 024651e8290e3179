// What the proxies served, per upstream, in five-minute buckets kept for
// seven days, for the console's hit ratio and bytes saved over 1 h, 24 h
// and 7 d. A proxy counts into memory and adds what it counted to the
// region's figures every minute and on close (figure-stores.ts: a file per
// process, or Redis for a region of several proxies). Buckets hold counts,
// not running totals, so a restart adds to them rather than breaking them.
import type { TrafficStore } from './figure-stores.ts'

export const BUCKET_MS = 5 * 60_000
export const KEEP_MS = 7 * 24 * 3600_000

export interface Counts {
  /** Blob requests answered from what the region held. */
  hits: number
  /** Blob requests that had to be fetched (from the upstream or another region). */
  misses: number
  bytesFromCache: number
  /** Bytes sent to clients from fills, and bytes received from the upstream (once per fill, however many waited). */
  bytesFilled: number
  bytesFromUpstream: number
  /** Manifests served. */
  pulls: number
}

export const COUNTS: readonly (keyof Counts)[] = ['hits', 'misses', 'bytesFromCache', 'bytesFilled', 'bytesFromUpstream', 'pulls']

/** One bucket: its start (ms since epoch) and the counts per upstream. */
export interface Bucket { readonly t: number, readonly by: Record<string, Counts> }

export const WINDOWS = { '1h': 3600_000, '24h': 24 * 3600_000, '7d': 7 * 24 * 3600_000 } as const
export type WindowName = keyof typeof WINDOWS

export function zero (): Counts { return { hits: 0, misses: 0, bytesFromCache: 0, bytesFilled: 0, bytesFromUpstream: 0, pulls: 0 } }

export function add (into: Counts, c: Partial<Counts>): void {
  for (const k of COUNTS) into[k] += c[k] ?? 0
}

export class Traffic {
  private readonly store: TrafficStore
  /** Counted since the last flush. */
  private pending = new Map<number, Record<string, Counts>>()
  private timer: NodeJS.Timeout | undefined
  private upstreamBytes: (() => Promise<Record<string, number>>) | undefined
  private seen: Record<string, number> = {}
  private flushing: Promise<void> | undefined

  constructor (store: TrafficStore) { this.store = store }

  /**
   * Adds to the region's figures every minute from now on. `upstreamBytes`:
   * the running totals of bytes received per upstream (a metric), taken as
   * differences each time they are read.
   */
  async start (upstreamBytes: () => Promise<Record<string, number>>): Promise<void> {
    await this.store.open()
    this.upstreamBytes = upstreamBytes
    this.seen = await upstreamBytes().catch(() => ({}))
    this.timer = setInterval(() => { void this.flush().catch(() => {}) }, 60_000)
    this.timer.unref()
  }

  /** Something served for `upstream` (a proxied repository's upstream name, or "hosted"). */
  record (upstream: string, c: Partial<Counts>): void {
    this.count(Math.floor(Date.now() / BUCKET_MS) * BUCKET_MS, upstream, c)
  }

  private count (t: number, upstream: string, c: Partial<Counts>): void {
    let bucket = this.pending.get(t)
    if (bucket === undefined) { bucket = {}; this.pending.set(t, bucket) }
    add(bucket[upstream] ??= zero(), c)
  }

  /** What was counted, into the region's figures (one flush at a time; a failed one is counted again next time). */
  async flush (): Promise<void> {
    while (this.flushing !== undefined) await this.flushing
    this.flushing = (async () => {
      await this.sampleUpstreamBytes()
      const pending = this.pending
      this.pending = new Map()
      try {
        if (pending.size > 0) await this.store.add([...pending].map(([t, by]) => ({ t, by })))
      } catch (err) {
        for (const [t, by] of pending) for (const [u, c] of Object.entries(by)) this.count(t, u, c)
        throw err
      }
    })().finally(() => { this.flushing = undefined })
    await this.flushing
  }

  private async sampleUpstreamBytes (): Promise<void> {
    if (this.upstreamBytes === undefined) return
    const now = await this.upstreamBytes().catch(() => undefined)
    if (now === undefined) return
    for (const [u, n] of Object.entries(now)) {
      const delta = n - (this.seen[u] ?? 0)
      if (delta > 0) this.record(u, { bytesFromUpstream: delta })
    }
    this.seen = now
  }

  async close (): Promise<void> {
    if (this.timer !== undefined) clearInterval(this.timer)
    await this.flush().catch(() => {})
  }

  /**
   * The region's figures (this proxy's as of now), read once: totals per
   * window and upstream, and hits and misses per bucket over the last
   * `seriesSpan` ms for the overview's chart.
   */
  async summary (seriesSpan: number): Promise<{ windows: Record<WindowName, { total: Counts, byUpstream: Record<string, Counts> }>, series: { t: number, hits: number, misses: number, bytesFromCache: number, bytesFromUpstream: number }[] }> {
    await this.flush().catch(() => {})
    const now = Date.now()
    const all = await this.store.since(now - Math.max(KEEP_MS, seriesSpan))
    const windows = {} as Record<WindowName, { total: Counts, byUpstream: Record<string, Counts> }>
    for (const [name, span] of Object.entries(WINDOWS) as [WindowName, number][]) {
      const total = zero()
      const byUpstream: Record<string, Counts> = {}
      for (const b of all) {
        if (b.t + BUCKET_MS <= now - span) continue
        for (const [u, c] of Object.entries(b.by)) { add(total, c); add(byUpstream[u] ??= zero(), c) }
      }
      windows[name] = { total, byUpstream }
    }
    const byT = new Map<number, Counts>()
    for (const b of all) {
      if (b.t + BUCKET_MS <= now - seriesSpan) continue
      const c = byT.get(b.t) ?? zero()
      for (const x of Object.values(b.by)) add(c, x)
      byT.set(b.t, c)
    }
    const series = [...byT].sort((x, y) => x[0] - y[0]).map(([t, c]) => ({ t, hits: c.hits, misses: c.misses, bytesFromCache: c.bytesFromCache, bytesFromUpstream: c.bytesFromUpstream }))
    return { windows, series }
  }
}
