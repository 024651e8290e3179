// What this proxy served, per upstream, in five-minute buckets kept for
// seven days, for the console's hit ratio and bytes saved over 1 h, 24 h
// and 7 d. Buckets hold counts, not running totals, so a restart (counters
// from zero) adds to them rather than breaking them; they are written to
// the data folder every minute and on close, one file per process (worker
// processes each keep their own, and a reader sums them).
import { KeptFiles } from './kept-files.ts'

const BUCKET_MS = 5 * 60_000
const KEEP_MS = 7 * 24 * 3600_000

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

interface Bucket { readonly t: number, readonly by: Record<string, Counts> }

export const WINDOWS = { '1h': 3600_000, '24h': 24 * 3600_000, '7d': 7 * 24 * 3600_000 } as const
export type WindowName = keyof typeof WINDOWS

function zero (): Counts { return { hits: 0, misses: 0, bytesFromCache: 0, bytesFilled: 0, bytesFromUpstream: 0, pulls: 0 } }

function add (into: Counts, c: Partial<Counts>): void {
  for (const k of Object.keys(c) as (keyof Counts)[]) into[k] += c[k] ?? 0
}

export class Traffic {
  private readonly files: KeptFiles
  private buckets: Bucket[] = []
  private timer: NodeJS.Timeout | undefined

  constructor (dir: string, processId: string) {
    this.files = new KeptFiles(dir, 'console-traffic', processId)
  }

  /**
   * Reads what this process kept before a restart, and writes every minute
   * from now on. `upstreamBytes`: the running totals of bytes received per
   * upstream (a metric), taken as differences each time they are read.
   */
  async start (upstreamBytes: () => Promise<Record<string, number>>): Promise<void> {
    this.buckets = buckets(await this.files.readOwn())
    this.upstreamBytes = upstreamBytes
    this.seen = await upstreamBytes().catch(() => ({}))
    this.timer = setInterval(() => { void this.sample().then(() => this.flush()).catch(() => {}) }, 60_000)
    this.timer.unref()
  }

  private upstreamBytes: (() => Promise<Record<string, number>>) | undefined
  private seen: Record<string, number> = {}

  private async sample (): Promise<void> {
    if (this.upstreamBytes === undefined) return
    const now = await this.upstreamBytes()
    for (const [u, n] of Object.entries(now)) {
      const delta = n - (this.seen[u] ?? 0)
      if (delta > 0) this.record(u, { bytesFromUpstream: delta })
    }
    this.seen = now
  }

  /** Something served for `upstream` (a proxied repository's upstream name, or "hosted"). */
  record (upstream: string, c: Partial<Counts>): void {
    const t = Math.floor(Date.now() / BUCKET_MS) * BUCKET_MS
    let last = this.buckets[this.buckets.length - 1]
    if (last === undefined || last.t !== t) {
      last = { t, by: {} }
      this.buckets.push(last)
      const oldest = t - KEEP_MS
      while (this.buckets.length > 0 && this.buckets[0]!.t < oldest) this.buckets.shift()
    }
    add(last.by[upstream] ??= zero(), c)
  }

  async flush (): Promise<void> {
    await this.files.write(this.buckets)
  }

  async close (): Promise<void> {
    if (this.timer !== undefined) clearInterval(this.timer)
    await this.flush().catch(() => {})
  }

  /** Totals per window and upstream, over every process's file in the folder (this one's as of now). */
  async windows (): Promise<Record<WindowName, { total: Counts, byUpstream: Record<string, Counts> }>> {
    await this.sample().then(() => this.flush()).catch(() => {})
    const all = (await this.files.readAll()).flatMap(buckets)
    const now = Date.now()
    const out = {} as Record<WindowName, { total: Counts, byUpstream: Record<string, Counts> }>
    for (const [name, span] of Object.entries(WINDOWS) as [WindowName, number][]) {
      const total = zero()
      const byUpstream: Record<string, Counts> = {}
      for (const b of all) {
        if (b.t + BUCKET_MS <= now - span) continue
        for (const [u, c] of Object.entries(b.by)) { add(total, c); add(byUpstream[u] ??= zero(), c) }
      }
      out[name] = { total, byUpstream }
    }
    return out
  }

  /** Hits and misses per bucket over the last `span` ms, for the overview's chart. */
  async series (span: number): Promise<{ t: number, hits: number, misses: number, bytesFromCache: number, bytesFromUpstream: number }[]> {
    const all = (await this.files.readAll()).flatMap(buckets)
    const byT = new Map<number, Counts>()
    const from = Date.now() - span
    for (const b of all) {
      if (b.t < from) continue
      const c = byT.get(b.t) ?? zero()
      for (const x of Object.values(b.by)) add(c, x)
      byT.set(b.t, c)
    }
    return [...byT].sort((a, b) => a[0] - b[0]).map(([t, c]) => ({ t, hits: c.hits, misses: c.misses, bytesFromCache: c.bytesFromCache, bytesFromUpstream: c.bytesFromUpstream }))
  }
}

/** A process's buckets; a missing or torn file is none (it is rewritten whole within a minute). */
function buckets (parsed: unknown): Bucket[] {
  if (!Array.isArray(parsed)) return []
  return parsed.filter((b): b is Bucket => typeof b === 'object' && b !== null && typeof (b as Bucket).t === 'number' && typeof (b as Bucket).by === 'object')
}
