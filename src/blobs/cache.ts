// The blob read path: one entry (`serve`) for whoever asks, composing the
// sources in order. A GET that may reach anywhere (a client of a proxied
// repository): memory, then this proxy's disk (L1 when the region's store is
// remote, else the store itself), then a fill already running here, then the
// region's store (into L1, through a fill), then one new fill for the whole
// region (fill-feed.ts picks its source). Blobs are immutable, so a hit never
// asks the upstream. A GET of what is held (another region, a hosted
// repository) gets only what this region holds; another proxy of the region
// gets only a fill running here or this proxy's disk. Single flight,
// verification and commit live here, in lead.ts and in fill.ts, once. Which
// repository may read a digest is the caller's question (content/), except
// that an ask may carry `confirm`: the repository does not hold the digest
// yet, so anything not fetched from its upstream for this ask is confirmed
// with the upstream first.
import { randomBytes } from 'node:crypto'
import { join } from 'node:path'
import type { Body } from '../io/body.ts'
import { BlobUnknown } from '../oci/errors.ts'
import { fromOffset, resolveRange, type ByteRange, type RangeSpec } from '../oci/range.ts'
import type { Digest } from '../oci/reference.ts'
import type { Logger } from '../observe/logger.ts'
import type { Metrics } from '../observe/metrics.ts'
import { canonicalName, type Route } from '../upstream/router.ts'
import { FsBlobStore } from '../store/fs-blob-store.ts'
import type { Committer } from './commit.ts'
import { FillError } from './errors.ts'
import { Fill } from './fill.ts'
import type { FeedSources } from './fill-feed.ts'
import { lead } from './lead.ts'
import type { FillTable } from './fill-table.ts'
import type { OpenedBlob } from './source.ts'
import { SMALL_BLOB_BYTES, type MemorySource } from './sources/memory.ts'
import type { StoreSource } from './sources/store.ts'

/**
 * How far the answer may reach: anywhere (a client of a proxied repository:
 * this region, other regions, the upstream), what the region holds (another
 * region, or a hosted repository: a fill running here included, never a new
 * one, so regions asking each other cannot loop), or this proxy (another
 * proxy of the region: a fill running here, or this proxy's disk).
 */
export type Reach = 'anywhere' | 'held' | 'proxy'

export interface BlobAsk {
  readonly digest: Digest
  readonly range: RangeSpec | undefined
  readonly head: boolean
  readonly reach: Reach
  /** Where a client asked for it; needed to fetch it. */
  readonly route: Route | undefined
  /**
   * The repository does not hold the digest yet: have its upstream confirm it
   * (resolving with the size it gives) before answering from anything but a
   * fetch from that upstream made for this ask.
   */
  readonly confirm?: (() => Promise<number | undefined>) | undefined
}

export interface BlobAnswer {
  /** The whole blob's size, when known. */
  readonly size: number | undefined
  /** Set when a part was served (206). */
  readonly range: ByteRange | undefined
  /** Bytes in the body. */
  readonly length: number | undefined
  /** Absent for HEAD. */
  readonly body: Body | undefined
  readonly source: 'cache' | 'fill' | 'upstream'
  /** A fill's bytes come from outside the region (its upstream, or another region): a miss of the region's cache, not only of this proxy's. */
  readonly fetched?: boolean
}

export interface FillPolicy {
  readonly resumeAttempts: number
  readonly resumeBackoffMs: number
}

export interface BlobCacheOptions {
  readonly memory: MemorySource
  /** This proxy's own disk in front of a remote region store; absent: the store is this proxy's disk. */
  readonly l1: StoreSource | undefined
  /** The region's store. */
  readonly store: StoreSource
  /** Where fills get their bytes beyond this proxy. */
  readonly feed: Omit<FeedSources, 'store'>
  readonly table: FillTable
  readonly committer: Committer
  readonly staging: string
  readonly policy: FillPolicy
  readonly log: Logger
  readonly metrics: Metrics
}

/** A fill of this process, and whether it could be started or joined. */
interface Running {
  readonly fill: Fill
  /** 'again': it ended before it could be joined; look again (the store may have the blob now). */
  readonly started: Promise<'ok' | 'again'>
  /** Its first bytes came from outside the region (the upstream, or another region), for `repo`. */
  readonly fetched: boolean
  /** The repository it was started for, as clients name it. */
  readonly repo: string
}

const JOIN_ATTEMPTS = 3

/** Freed at least when the disk is full: a few more blobs of the kind that just failed fit after it. */
const ROOM_AT_LEAST = 32 * 1024 * 1024

export class BlobCache {
  private readonly o: BlobCacheOptions
  private readonly fills = new Map<string, Running>()
  /** This proxy's own disk: L1, or the store itself. */
  private readonly local: StoreSource

  constructor (opts: BlobCacheOptions) {
    this.o = opts
    this.local = opts.l1 ?? opts.store
  }

  async serve (ask: BlobAsk): Promise<BlobAnswer> {
    if (ask.reach !== 'proxy' && !ask.head && ask.confirm === undefined) {
      // configs and small layers, hit again and again: answered without a turn of the event loop
      const memory = this.fromMemory(ask.digest, ask.range)
      if (memory !== undefined) {
        this.o.metrics.cache.inc({ kind: 'blob', result: 'hit' })
        return this.hit(memory, ask.range)
      }
    }
    if (ask.reach === 'proxy') return await this.forRegionPeer(ask)
    if (ask.head) return await this.head(ask)
    return ask.reach === 'anywhere' ? await this.get(ask) : await this.getHeld(ask)
  }

  /** Bytes a fill of this digest running in this process has received so far; undefined when none runs. */
  filling (digest: string): number | undefined {
    return this.fills.get(digest)?.fill.received
  }

  /** The blob is here: in memory, this proxy's L1, or the region's store (a running fill does not count). */
  async has (digest: Digest): Promise<boolean> {
    if (this.o.memory.has(digest.value)) return true
    if (this.o.l1 !== undefined && await this.o.l1.store.stat(digest) !== undefined) return true
    return await this.o.store.store.stat(digest) !== undefined
  }

  /**
   * A verified local file (a pushed upload) becomes the blob: into L1 and
   * the region's store, or the store alone. The file is consumed. Not
   * recorded in the region stream: what replication brings is not sent on.
   */
  async adopt (digest: Digest, path: string, size: number): Promise<void> {
    await this.o.committer.commit(digest, path, size, { newToRegion: true, record: false })
  }

  /**
   * A write (a fill, a commit, an upload) found this proxy's disk full:
   * counted, and cached blobs evicted from this disk (L1, or the store when
   * the store is this disk) to free twice its size, at least 32 MiB.
   */
  diskFull (write: 'fill' | 'commit' | 'upload', bytes: number): void {
    this.o.metrics.diskFull.inc({ write })
    if (this.o.l1 !== undefined || this.o.store.store instanceof FsBlobStore) this.local.index.makeRoom(Math.max(2 * bytes, ROOM_AT_LEAST))
  }

  /** A tier's answer, for a repository that does not hold the digest yet: only once its upstream says yes. */
  private async confirmed (ask: BlobAsk, opened: OpenedBlob): Promise<void> {
    if (ask.confirm === undefined) return
    try {
      await ask.confirm()
    } catch (err) {
      opened.body.discard()
      throw err
    }
  }

  private hit (opened: OpenedBlob, range: RangeSpec | undefined): BlobAnswer {
    return { size: opened.size, range: partOf(opened, range), length: opened.length, body: opened.body, source: 'cache' }
  }

  private async head (ask: BlobAsk): Promise<BlobAnswer> {
    // not held by this repository: its upstream's HEAD is the answer, whatever the region holds
    const confirmed = ask.confirm !== undefined ? { size: await ask.confirm() } : undefined
    const want = { digest: ask.digest, sizeOnly: true }
    const running = this.fills.get(ask.digest.value)
    const known = await this.o.memory.open(want) ?? await this.local.open(want) ??
      (running?.fill.size !== undefined ? { size: running.fill.size } : undefined) ??
      (this.o.l1 !== undefined ? await this.o.store.open(want) : undefined)
    if (known !== undefined) {
      if (ask.reach === 'anywhere') this.o.metrics.cache.inc({ kind: 'blob', result: 'hit' })
      if (this.o.l1 !== undefined) this.o.store.index.touch(ask.digest.value)
      return { size: known.size, range: undefined, length: known.size, body: undefined, source: 'cache' }
    }
    if (confirmed !== undefined) return { size: confirmed.size, range: undefined, length: confirmed.size, body: undefined, source: 'upstream' }
    if (ask.reach === 'held') {
      // a fill running here whose size is not known yet
      if (running !== undefined && await running.started === 'ok') return { size: running.fill.size, range: undefined, length: running.fill.size, body: undefined, source: 'fill' }
      throw new BlobUnknown(ask.digest.value)
    }
    // A HEAD does not start a fill: clients HEAD many blobs they never GET.
    const answer = await this.o.feed.upstream.open({ ...want, route: ask.route })
    return { size: answer?.size, range: undefined, length: answer?.size, body: undefined, source: 'upstream' }
  }

  /** Memory, then this proxy's disk. */
  private fromMemory (digest: Digest, range: RangeSpec | undefined): OpenedBlob | undefined {
    const memory = this.o.memory.peek({ digest, range })
    if (memory !== undefined) {
      this.o.store.index.touch(digest.value)
      this.o.l1?.index.touch(digest.value)
    }
    return memory
  }

  private async fromLocal (digest: Digest, range: RangeSpec | undefined): Promise<OpenedBlob | undefined> {
    const memory = this.fromMemory(digest, range)
    if (memory !== undefined) return memory
    const hit = await this.local.open({ digest, range })
    // the region's recency follows its proxies' hits
    if (hit !== undefined && this.o.l1 !== undefined) this.o.store.index.touch(digest.value)
    return hit
  }

  /** A client's GET: anything this region has, or one fill for the region. */
  private async get (ask: BlobAsk): Promise<BlobAnswer> {
    const { digest, range } = ask
    for (let attempt = 0; ; attempt++) {
      const cached = await this.fromLocal(digest, range)
      if (cached !== undefined) {
        this.o.metrics.cache.inc({ kind: 'blob', result: 'hit' })
        await this.confirmed(ask, cached)
        return this.hit(cached, range)
      }
      let running = this.fills.get(digest.value)
      if (running === undefined && this.o.l1 !== undefined) {
        if (range !== undefined) {
          // a range is read from the region's store as it is, not worth filling L1 for
          const ranged = await this.o.store.open({ digest, range })
          if (ranged !== undefined) {
            this.o.metrics.cache.inc({ kind: 'blob', result: 'hit' })
            await this.confirmed(ask, ranged)
            return this.hit(ranged, range)
          }
        } else {
          const inRegion = await this.o.store.store.stat(digest)
          running = this.fills.get(digest.value) // started while we looked
          if (running === undefined && inRegion !== undefined) {
            this.o.metrics.cache.inc({ kind: 'blob', result: 'hit' })
            running = this.startFill(ask.route!, digest, true)
          }
        }
        running ??= this.fills.get(digest.value)
      }
      if (running !== undefined) {
        this.o.metrics.fillWaiters.inc()
      } else {
        this.o.metrics.cache.inc({ kind: 'blob', result: 'miss' })
        running = this.startFill(ask.route!, digest, this.o.l1 !== undefined)
      }
      if (ask.confirm !== undefined) {
        // a fill fetched from the upstream for this same repository is the upstream's yes; any other needs one
        const ok = await running.started.then(r => r === 'ok', () => false)
        if (ok && !(running.fetched && running.repo === canonicalName(ask.route!))) await ask.confirm()
      }
      const answer = await this.fromFill(running, range)
      if (answer !== 'again') return answer
      // the fill ended elsewhere while we asked to join it: look again
      if (attempt + 1 >= JOIN_ATTEMPTS) throw new FillError('FILL_SOURCE_FAILED', 'the fill of this blob kept ending before it could be joined')
    }
  }

  /** Another region's GET: what this region holds, a fill running here included; never a new fill. */
  private async getHeld (ask: BlobAsk): Promise<BlobAnswer> {
    const held = await this.fromLocal(ask.digest, ask.range) ?? (this.o.l1 !== undefined ? await this.o.store.open({ digest: ask.digest, range: ask.range }) : undefined)
    if (held !== undefined) return this.hit(held, ask.range)
    const running = this.fills.get(ask.digest.value)
    if (running !== undefined) {
      const answer = await this.fromFill(running, ask.range)
      if (answer !== 'again') return answer
    }
    throw new BlobUnknown(ask.digest.value)
  }

  /** Another proxy of the region: the fill of this digest running here, from an offset, or the blob from this proxy's L1. */
  private async forRegionPeer (ask: BlobAsk): Promise<BlobAnswer> {
    const offset = ask.range?.kind === 'from' ? ask.range.start : 0
    const running = this.fills.get(ask.digest.value)
    if (running !== undefined) {
      const fill = running.fill
      const ok = await running.started.then(r => r === 'ok', () => false)
      if (ok && fill.state !== 'failed' && fill.open && (fill.size === undefined || offset < fill.size || fill.size === 0)) {
        const range = { start: offset, end: fill.size !== undefined ? fill.size - 1 : Infinity }
        return { size: fill.size, range, length: fill.size !== undefined ? fill.size - offset : undefined, body: ask.head ? undefined : fill.reader(range), source: 'fill' }
      }
    }
    if (this.o.l1 === undefined) throw new BlobUnknown(ask.digest.value)
    const info = await this.o.l1.open({ digest: ask.digest, sizeOnly: true })
    if (info === undefined || (offset >= info.size! && info.size! > 0)) throw new BlobUnknown(ask.digest.value)
    const opened = ask.head ? info : await this.o.l1.open({ digest: ask.digest, range: offset > 0 ? fromOffset(offset) : undefined })
    if (opened === undefined) throw new BlobUnknown(ask.digest.value)
    return { size: opened.size, range: { start: offset, end: opened.size! - 1 }, length: opened.size! - offset, body: ask.head ? undefined : opened.body, source: 'cache' }
  }

  private async fromFill (running: Running, range: RangeSpec | undefined): Promise<BlobAnswer | 'again'> {
    if (await running.started === 'again') return 'again'
    const fill = running.fill
    if (fill.state === 'verified') {
      // joined just as the fill committed: the store has it now
      const cached = await this.fromLocal(fill.digest, range)
      if (cached !== undefined) return this.hit(cached, range)
      // verified but not yet in the store: its staging file serves; if that is gone too, look again
      if (!fill.open) return 'again'
    }
    const part = range === undefined ? undefined : resolveRange(range, fill.size)
    const body = fill.reader(part)
    const length = part !== undefined ? part.end - part.start + 1 : fill.size
    return { size: fill.size, range: part, length, body, source: 'fill', fetched: running.fetched }
  }

  /**
   * Start the one fill of this process for `digest`. `viaStore`: the region
   * store is remote (an L1 fill), so look there first and put the blob there.
   */
  private startFill (route: Route, digest: Digest, viaStore: boolean): Running {
    const fill = new Fill(digest, join(this.o.staging, `${digest.hex.slice(0, 16)}-${randomBytes(6).toString('hex')}`), SMALL_BLOB_BYTES)
    const source = { fetched: false }
    const started = (async (): Promise<'ok' | 'again'> => {
      const claim = await this.o.table.claim(digest.value, fill.tempPath)
      if (claim.role === 'retry') return 'again'
      if (claim.role === 'follower') {
        this.o.metrics.fillWaiters.inc()
        try {
          await fill.follow(claim, listener => this.o.table.subscribe(digest.value, listener))
        } catch (err) {
          if (fill.lateJoin) return 'again'
          throw err
        }
        return 'ok'
      }
      fill.onChange = update => this.o.table.progress(digest.value, update)
      const from = await lead({ ...this.o, feed: { ...this.o.feed, store: this.o.l1 !== undefined ? this.o.store : undefined }, diskFull: (write, bytes) => { this.diskFull(write, bytes) } }, route, fill, viaStore)
      source.fetched = from === 'upstream' || from === 'peer-region'
      return 'ok'
    })()
    const running: Running = { fill, started, repo: canonicalName(route), get fetched () { return source.fetched } }
    this.fills.set(digest.value, running)
    this.o.metrics.fillsInFlight.inc()
    // the map entry lives until the fill has ended: committed (the store has it) or failed (the next request retries)
    void started.then(() => fill.done, () => undefined).then(() => {
      if (this.fills.get(digest.value) === running) this.fills.delete(digest.value)
      this.o.metrics.fillsInFlight.dec()
    })
    return running
  }
}

/** The part served, when a part was asked for. */
function partOf (opened: OpenedBlob, range: RangeSpec | undefined): ByteRange | undefined {
  if (range === undefined || opened.length === undefined) return undefined
  return { start: opened.start, end: opened.start + opened.length - 1 }
}
