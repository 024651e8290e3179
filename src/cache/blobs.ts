// Blobs: memory, then this proxy's disk (the L1 tier, when the region's store
// is remote), then a fill already running, then the region's store (L2),
// then one new fill for the whole region. Blobs are immutable, so a hit
// never asks the upstream. A fill reads from the region's store (to fill L1),
// from the proxy leading the region's fill (peer.ts), or from the upstream;
// it can switch between them mid-way, resuming at the offset it holds.
import { randomBytes } from 'node:crypto'
import { join } from 'node:path'
import { setTimeout as sleep } from 'node:timers/promises'
import { LRUCache } from 'lru-cache'
import { bodyReadable, bufferBody, collect, onceDone, type Body } from '../io/body.ts'
import { BlobUnknown } from '../oci/errors.ts'
import { parseRange, type ByteRange } from '../oci/range.ts'
import type { Digest } from '../oci/reference.ts'
import type { Logger } from '../observe/logger.ts'
import type { Metrics } from '../observe/metrics.ts'
import type { BlobStore, OpenBlob } from '../store/blob-store.ts'
import type { FsBlobStore } from '../store/fs-blob-store.ts'
import type { CacheIndex } from './cache-index.ts'
import type { FillCoordinator } from './fill-coordinator.ts'
import type { FillLeases, Lease } from './fill-leases.ts'
import { Fill, FillError, type FillSource } from './fill.ts'
import type { PeerClient } from './peer.ts'
import type { PeerRegions } from './peer-regions.ts'
import { canonicalName, type Route } from '../upstream/router.ts'

export interface BlobAnswer {
  /** Total size of the blob, when known. */
  readonly size: number | undefined
  /** Present when a Range was served (206). */
  readonly range: ByteRange | undefined
  /** Bytes in the body. */
  readonly length: number | undefined
  /** Absent for HEAD. */
  readonly body: Body | undefined
  readonly source: 'cache' | 'fill' | 'upstream'
}

export interface FillPolicy {
  readonly resumeAttempts: number
  readonly resumeBackoffMs: number
}

/** This proxy's own disk in front of a remote region store. */
export interface LocalTier {
  readonly store: FsBlobStore
  readonly index: CacheIndex
}

/** How one fill gets its bytes; kept across resumes. */
interface FillSourceState {
  from: 'store' | 'peer' | 'region' | 'upstream' | undefined
  /** The region's lease for this digest, once this proxy leads. */
  lease: Lease | undefined
  /** Some bytes came from the upstream: this proxy puts the blob in the region's store. */
  upstreamUsed: boolean
  /** The store was looked at just before the fill started. */
  storeChecked: boolean
  /** A claim said "stored" and the store did not have it: the next claim leads regardless. */
  storeMissedAfterMark: boolean
  etag: string | undefined
}

export class BlobCache {
  private readonly store: BlobStore
  private readonly staging: string
  private readonly fills = new Map<string, Fill>()
  private readonly index: CacheIndex
  private readonly coordinator: FillCoordinator
  private readonly policy: FillPolicy
  private readonly small: LRUCache<string, Buffer>
  private readonly log: Logger
  private readonly metrics: Metrics
  private readonly l1: LocalTier | undefined
  private readonly leases: FillLeases
  private readonly peers: PeerClient | undefined
  private readonly onCommitted: (digest: string, size: number) => void
  /** How long a follower keeps trying an unreachable leader before the lease expires and it may lead. */
  private readonly takeoverMs: number
  /** Other regions, asked before the upstream. */
  private readonly regions: PeerRegions | undefined

  constructor (opts: {
    store: BlobStore, staging: string, index: CacheIndex, coordinator: FillCoordinator, policy: FillPolicy, smallBlobMemory: number, log: Logger, metrics: Metrics,
    l1?: LocalTier, leases: FillLeases, peers?: PeerClient, onCommitted?: (digest: string, size: number) => void, takeoverMs?: number, regions?: PeerRegions
  }) {
    this.regions = opts.regions
    this.store = opts.store
    this.l1 = opts.l1
    this.leases = opts.leases
    this.peers = opts.peers
    this.onCommitted = opts.onCommitted ?? (() => {})
    this.takeoverMs = opts.takeoverMs ?? 15_000
    this.staging = opts.staging
    this.index = opts.index
    this.coordinator = opts.coordinator
    this.policy = opts.policy
    this.small = new LRUCache({ maxSize: Math.max(SMALL_BLOB_BYTES, opts.smallBlobMemory), sizeCalculation: b => b.length + 100 })
    this.log = opts.log
    this.metrics = opts.metrics
  }

  async head (route: Route, digest: Digest): Promise<BlobAnswer> {
    const small = this.small.get(digest.value)
    const known = small !== undefined
      ? { size: small.length }
      : (this.l1 !== undefined ? await this.l1.store.stat(digest) : undefined) ?? await this.statRegion(digest)
    if (known !== undefined) {
      this.metrics.cache.inc({ kind: 'blob', result: 'hit' })
      this.l1?.index.touch(digest.value)
      this.index.touch(digest.value)
      return { size: known.size, range: undefined, length: known.size, body: undefined, source: 'cache' }
    }
    // A HEAD does not start a fill: clients HEAD many blobs they never GET.
    const res = await route.upstream.request({ method: 'HEAD', repo: route.repo, path: `blobs/${digest.value}`, kind: 'blob' })
    if (res.status !== 200) throw await route.upstream.errorFrom(res, 'blob', digest.value)
    res.body.resume()
    const size = declaredSize(res.headers['content-length'])
    return { size, range: undefined, length: size, body: undefined, source: 'upstream' }
  }

  /**
   * For another region asking peer-to-peer: only what this region holds
   * (memory, L1, the store, a fill already running); never a new fill, so
   * regions asking each other cannot loop or fetch on each other's behalf.
   */
  async cachedOnly (digest: Digest, rangeHeader: string | undefined, head: boolean): Promise<BlobAnswer> {
    const local = await this.fromLocal(digest, head ? undefined : rangeHeader)
    const answer = local ?? (this.l1 !== undefined ? await this.fromStore(this.store, this.index, digest, head ? undefined : rangeHeader) : undefined)
    if (answer !== undefined) {
      if (!head) return answer
      answer.body?.discard()
      return { ...answer, range: undefined, length: answer.size, body: undefined }
    }
    const fill = this.fills.get(digest.value)
    if (fill !== undefined) {
      if (head) {
        await fill.ready
        return { size: fill.size, range: undefined, length: fill.size, body: undefined, source: 'fill' }
      }
      return await this.fromFill(fill, rangeHeader)
    }
    throw new BlobUnknown(digest.value)
  }

  /** The blob is here: in memory, this proxy's L1, or the region's store (a running fill does not count). */
  async has (digest: Digest): Promise<boolean> {
    if (this.small.has(digest.value)) return true
    if (this.l1 !== undefined && await this.l1.store.stat(digest) !== undefined) return true
    return await this.store.stat(digest) !== undefined
  }

  /**
   * A verified local file (a pushed upload) becomes the blob: into L1 and
   * the region's store, or the store alone. The file is consumed. Not
   * recorded in the region stream: what replication brings is not sent on.
   */
  async adopt (digest: Digest, path: string, size: number): Promise<void> {
    await this.commit(digest, path, size, { from: undefined, lease: undefined, upstreamUsed: true, storeChecked: true, storeMissedAfterMark: false, etag: undefined }, false)
  }

  /** The region store's answer, or a running fill's size. */
  private async statRegion (digest: Digest): Promise<{ size: number } | undefined> {
    const fill = this.fills.get(digest.value)
    if (fill?.size !== undefined) return { size: fill.size }
    return await this.store.stat(digest)
  }

  async get (route: Route, digest: Digest, rangeHeader: string | undefined): Promise<BlobAnswer> {
    for (let attempt = 0; ; attempt++) {
      const cached = await this.fromLocal(digest, rangeHeader)
      if (cached !== undefined) {
        this.metrics.cache.inc({ kind: 'blob', result: 'hit' })
        return cached
      }
      let fill = this.fills.get(digest.value)
      if (fill === undefined && this.l1 !== undefined) {
        if (rangeHeader !== undefined) {
          // a range is read from the region's store as it is, not worth filling L1 for
          const ranged = await this.fromStore(this.store, this.index, digest, rangeHeader)
          if (ranged !== undefined) {
            this.metrics.cache.inc({ kind: 'blob', result: 'hit' })
            return ranged
          }
        } else {
          const inRegion = await this.store.stat(digest)
          fill = this.fills.get(digest.value) // started while we looked
          if (fill === undefined && inRegion !== undefined) {
            this.metrics.cache.inc({ kind: 'blob', result: 'hit' })
            fill = this.startFill(route, digest, true)
          }
        }
        fill ??= this.fills.get(digest.value)
      }
      if (fill !== undefined) {
        this.metrics.fillWaiters.inc()
      } else {
        this.metrics.cache.inc({ kind: 'blob', result: 'miss' })
        fill = this.startFill(route, digest, this.l1 !== undefined)
      }
      try {
        return await this.fromFill(fill, rangeHeader)
      } catch (err) {
        // the fill ended elsewhere while we asked to join it: look again
        if (!(err instanceof RetryClaim) || attempt >= 2) throw err
      }
    }
  }

  /**
   * For another proxy of the region: the fill of `digest` in flight here,
   * from `offset`, or the blob from this proxy's disk; undefined if neither.
   */
  async forPeer (digest: Digest, offset: number): Promise<BlobAnswer | undefined> {
    const fill = this.fills.get(digest.value)
    if (fill !== undefined) {
      const ok = await fill.ready.then(() => true, () => false)
      if (ok && fill.state !== 'failed' && fill.open && (fill.size === undefined || offset < fill.size || fill.size === 0)) {
        const end = fill.size !== undefined ? fill.size - 1 : Infinity
        return { size: fill.size, range: { start: offset, end }, length: fill.size !== undefined ? fill.size - offset : undefined, body: fill.reader({ start: offset, end }), source: 'fill' }
      }
    }
    if (this.l1 === undefined) return undefined
    const blob = await this.l1.store.open(digest)
    if (blob === undefined) return undefined
    if (offset >= blob.size && blob.size > 0) { blob.close(); return undefined }
    const range = { start: offset, end: blob.size - 1 }
    return { size: blob.size, range, length: blob.size - offset, body: blob.body(range), source: 'cache' }
  }

  /**
   * Start the one fill of this process for `digest`. `viaStore`: the region
   * store is remote (an L1 fill), so look there first and put the blob there.
   */
  private startFill (route: Route, digest: Digest, viaStore: boolean): Fill {
    const fill = new Fill(digest, join(this.staging, `${digest.hex.slice(0, 16)}-${randomBytes(6).toString('hex')}`), SMALL_BLOB_BYTES)
    this.fills.set(digest.value, fill)
    this.metrics.fillsInFlight.inc()
    fill.ready = (async () => {
      const claim = await this.coordinator.claim(digest.value, fill.tempPath)
      if (claim.role === 'retry') throw new RetryClaim()
      if (claim.role === 'follower') {
        this.metrics.fillWaiters.inc()
        try {
          await fill.follow(claim, listener => this.coordinator.subscribe(digest.value, listener))
        } catch (err) {
          if (fill.lateJoin) throw new RetryClaim()
          throw err
        }
        return
      }
      fill.onChange = update => this.coordinator.progress(digest.value, update)
      await this.lead(route, fill, { from: undefined, lease: undefined, upstreamUsed: false, storeChecked: !viaStore, storeMissedAfterMark: false, etag: undefined })
    })()
    // the map entry lives until the fill has ended: committed (the store has it) or failed (the next request retries)
    void fill.ready.then(() => fill.done, () => undefined).then(() => {
      if (this.fills.get(digest.value) === fill) this.fills.delete(digest.value)
      this.metrics.fillsInFlight.dec()
    })
    return fill
  }

  /** This process fills the blob: from the store, a peer or the upstream; `Fill.run` resumes and verifies. */
  private async lead (route: Route, fill: Fill, st: FillSourceState): Promise<void> {
    const digest = fill.digest
    const started = Date.now()
    const upstream = route.upstream.name
    let first: FillSource
    try {
      first = await this.source(route, digest, 0, st)
    } catch (err) {
      // no fill ran: followers in other workers must not wait for one
      this.coordinator.progress(digest.value, { size: undefined, written: 0, outcome: 'failed' })
      await st.lease?.release()
      throw err
    }
    this.log.info({ digest: digest.value, upstream, size: first.size, from: st.from }, 'blob fill started')
    void fill.run(first, {
      reopen: offset => this.source(route, digest, offset, st),
      attempts: this.policy.resumeAttempts,
      backoffMs: this.policy.resumeBackoffMs,
      commit: path => this.commit(digest, path, fill.written, st),
      onBytes: n => { if (st.from === 'upstream') this.metrics.upstreamBytes.inc({ upstream }, n) },
      onResume: (offset, err) => {
        this.metrics.fillResumes.inc()
        this.log.warn({ digest: digest.value, upstream, from: st.from, offset, err: (err as Error).message }, `${st.from ?? 'upstream'} transfer broke; resuming`)
      },
    }).then(() => {
      if (fill.state === 'verified' && fill.outcome === 'failed') {
        this.log.error({ digest: digest.value, upstream, err: (fill.commitError as Error)?.message }, 'blob verified and served, but the store could not keep it')
      } else if (fill.state === 'failed') {
        const reason = (fill.error as { reason?: string }).reason ?? 'upstream'
        this.metrics.fillFailures.inc({ reason })
        this.log.warn({ digest: digest.value, upstream, from: st.from, reason, err: fill.error?.message, detail: fill.error?.detail }, 'blob fill failed; nothing cached')
      } else {
        // small: the next hit costs no disk read
        if (fill.bytes !== undefined) this.small.set(digest.value, fill.bytes)
        this.log.info({ digest: digest.value, upstream, from: st.from, bytes: fill.written, ms: Date.now() - started }, 'blob cached')
      }
    }).finally(() => st.lease?.release(fill.outcome === 'verified' && st.upstreamUsed))
  }

  /**
   * The bytes of `digest` from `offset`: from the region's store if it has
   * them, else from the proxy leading the region's fill, else (holding the
   * lease) from the upstream.
   */
  private async source (route: Route, digest: Digest, offset: number, st: FillSourceState): Promise<FillSource> {
    const deadline = Date.now() + this.takeoverMs
    for (let round = 0; ; round++) {
      if (!st.storeChecked) {
        const blob = await this.store.open(digest)
        if (blob !== undefined) {
          st.from = 'store'
          this.metrics.fillSources.inc({ source: 'store' })
          return { size: blob.size, body: bodyReadable(offset >= blob.size ? (blob.close(), bufferBody(Buffer.alloc(0))) : blob.body({ start: offset, end: blob.size - 1 })), skip: 0 }
        }
      }
      st.storeChecked = false // from now on every attempt looks: the blob may land any moment
      if (st.lease === undefined) {
        const claim = await this.leases.acquire(digest.value, st.storeMissedAfterMark)
        if (claim.role === 'stored') {
          // the last fill put it in the store: read it there (or, if it is not there after all, lead)
          st.storeMissedAfterMark = true
          continue
        }
        if (claim.role === 'follower' && this.peers !== undefined) {
          let got: FillSource | 'gone' | undefined
          try {
            got = await this.peers.fetch(claim.peer, digest.value, offset)
          } catch (err) {
            if (Date.now() > deadline) throw new FillError('upstream', 'the proxy leading this fill is unreachable', { peer: claim.peer, cause: (err as Error).message })
            this.log.debug({ digest: digest.value, peer: claim.peer, err: (err as Error).message }, 'leading proxy unreachable; waiting for its lease to expire')
          }
          if (got !== undefined && got !== 'gone') {
            st.from = 'peer'
            this.metrics.fillSources.inc({ source: 'peer' })
            return got
          }
          // the leader ended its fill (the store has the blob, or the next claim leads) or is gone
          if (round > 200) throw new FillError('upstream', 'no proxy could lead this fill', { peer: claim.peer })
          await sleep(got === 'gone' ? 50 : 250)
          continue
        }
        if (claim.role === 'leader') st.lease = claim.lease
      }
      if (this.regions !== undefined && st.from !== 'upstream') {
        // another region may hold it: cheaper than the upstream, and there when the upstream is not
        const got = await this.regions.blob(canonicalName(route), digest.value, offset)
        if (got !== undefined) {
          st.from = 'region'
          st.upstreamUsed = true // new to this region: it goes into the store
          this.metrics.fillSources.inc({ source: 'region' })
          this.log.info({ digest: digest.value, peer: got.peer, offset }, 'blob from a peer region')
          return got
        }
      }
      st.from = 'upstream'
      st.upstreamUsed = true
      this.metrics.fillSources.inc({ source: 'upstream' })
      return offset === 0 ? await this.fromUpstream(route, digest, st) : await this.reopen(route, digest, offset, st.etag)
    }
  }

  private async fromUpstream (route: Route, digest: Digest, st: FillSourceState): Promise<FillSource> {
    const res = await route.upstream.request({ method: 'GET', repo: route.repo, path: `blobs/${digest.value}`, kind: 'blob' })
    if (res.status !== 200) throw await route.upstream.errorFrom(res, 'blob', digest.value)
    st.etag = strongEtag(res.headers.etag)
    return { size: declaredSize(res.headers['content-length']), body: res.body, skip: 0 }
  }

  /** A verified staging file: into the region's store, and into L1 when there is one. */
  private async commit (digest: Digest, path: string, size: number, st: FillSourceState, record = true): Promise<void> {
    if (this.l1 === undefined) {
      await this.store.commitFile(digest, path)
      this.index.added(digest.value, size)
      if (record) this.onCommitted(digest.value, size)
      return
    }
    const unpin = this.l1.index.pin(digest.value)
    try {
      await this.l1.store.commitFile(digest, path)
      this.l1.index.added(digest.value, size)
      // a fill fed by the region's store, or by the proxy that leads (and stores), adds nothing to the region
      if (st.upstreamUsed) {
        await this.store.putFile(digest, this.l1.store.path(digest))
        this.index.added(digest.value, size)
        if (record) this.onCommitted(digest.value, size)
      }
    } finally {
      unpin()
    }
  }

  /** Continue a broken transfer from `offset`: Range, guarded by If-Range when the upstream gave a strong ETag. */
  private async reopen (route: Route, digest: Digest, offset: number, etag: string | undefined): Promise<FillSource> {
    const headers: Record<string, string> = { range: `bytes=${offset}-` }
    if (etag !== undefined) headers['if-range'] = etag
    const res = await route.upstream.request({ method: 'GET', repo: route.repo, path: `blobs/${digest.value}`, kind: 'blob', headers })
    if (res.status === 206) {
      const m = /^bytes (\d+)-(\d+)\/(\d+|\*)$/.exec(String(res.headers['content-range'] ?? ''))
      if (m === null || Number(m[1]) !== offset) {
        res.body.destroy()
        throw new FillError('upstream', 'upstream answered a resume with the wrong range', { offset, contentRange: res.headers['content-range'] })
      }
      return { size: m[3] === '*' ? undefined : Number(m[3]), body: res.body, skip: 0 }
    }
    // the whole blob again: same digest, same bytes, so skip what is held
    if (res.status === 200) return { size: declaredSize(res.headers['content-length']), body: res.body, skip: offset }
    throw await route.upstream.errorFrom(res, 'blob', digest.value)
  }

  /** Memory, then this proxy's disk: L1 when the region store is remote, else the store itself. */
  private async fromLocal (digest: Digest, rangeHeader: string | undefined): Promise<BlobAnswer | undefined> {
    const small = this.small.get(digest.value)
    if (small !== undefined) {
      this.index.touch(digest.value)
      this.l1?.index.touch(digest.value)
      return answerFromBuffer(small, parseRange(rangeHeader, small.length))
    }
    if (this.l1 !== undefined) {
      const hit = await this.fromStore(this.l1.store, this.l1.index, digest, rangeHeader)
      // the region's recency follows its proxies' hits
      if (hit !== undefined) this.index.touch(digest.value)
      return hit
    }
    return await this.fromStore(this.store, this.index, digest, rangeHeader)
  }

  private async fromStore (store: BlobStore, index: CacheIndex, digest: Digest, rangeHeader: string | undefined): Promise<BlobAnswer | undefined> {
    const unpin = index.pin(digest.value)
    let blob: OpenBlob | undefined
    try {
      blob = await store.open(digest)
    } catch (err) {
      unpin()
      throw err
    }
    if (blob === undefined) { unpin(); return undefined }
    let range: ByteRange | undefined
    try {
      range = parseRange(rangeHeader, blob.size)
    } catch (err) {
      blob.close(); unpin()
      throw err
    }
    index.touch(digest.value)
    if (blob.size <= SMALL_BLOB_BYTES) {
      // small blobs (configs, small layers) are kept in memory: the next hit costs no disk I/O
      const bytes = await collect(onceDone(blob.body(), unpin), SMALL_BLOB_BYTES)
      this.small.set(digest.value, bytes)
      return answerFromBuffer(bytes, range)
    }
    const length = range === undefined ? blob.size : range.end - range.start + 1
    return { size: blob.size, range, length, body: onceDone(blob.body(range), unpin), source: 'cache' }
  }

  private async fromFill (fill: Fill, rangeHeader: string | undefined): Promise<BlobAnswer> {
    await fill.ready
    if (fill.state === 'verified') {
      // joined just as the fill committed: the store has it now
      const cached = await this.fromLocal(fill.digest, rangeHeader)
      if (cached !== undefined) return cached
      // verified but not yet in the store: its staging file serves; if that is gone too, look again
      if (!fill.open) throw new RetryClaim()
    }
    const range = parseRange(rangeHeader, fill.size)
    const body = fill.reader(range)
    const length = range !== undefined ? range.end - range.start + 1 : fill.size
    return { size: fill.size, range, length, body, source: 'fill' }
  }
}

class RetryClaim extends Error {}

/** Blobs up to this size are also kept in memory once read. */
const SMALL_BLOB_BYTES = 256 * 1024

function answerFromBuffer (bytes: Buffer, range: ByteRange | undefined): BlobAnswer {
  const part = range === undefined ? bytes : bytes.subarray(range.start, range.end + 1)
  return { size: bytes.length, range, length: part.length, body: bufferBody(part), source: 'cache' }
}

function declaredSize (header: string | string[] | undefined): number | undefined {
  const n = Number(header)
  return header !== undefined && Number.isSafeInteger(n) && n >= 0 ? n : undefined
}

function strongEtag (header: string | string[] | undefined): string | undefined {
  const v = Array.isArray(header) ? header[0] : header
  return v !== undefined && !v.startsWith('W/') ? v : undefined
}
