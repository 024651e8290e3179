// Blobs: store first, then a fill already running, then one new fill from the
// upstream. Blobs are immutable, so a hit never asks the upstream.
import { randomBytes } from 'node:crypto'
import { join } from 'node:path'
import { LRUCache } from 'lru-cache'
import { bufferBody, collect, onceDone, type Body } from '../io/body.ts'
import { parseRange, type ByteRange } from '../oci/range.ts'
import type { Digest } from '../oci/reference.ts'
import type { Logger } from '../observe/logger.ts'
import type { Metrics } from '../observe/metrics.ts'
import type { BlobStore, OpenBlob } from '../store/blob-store.ts'
import type { Route } from '../upstream/router.ts'
import type { CacheIndex } from './cache-index.ts'
import type { FillCoordinator } from './fill-coordinator.ts'
import { Fill, FillError, type FillSource } from './fill.ts'

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

  constructor (opts: { store: BlobStore, staging: string, index: CacheIndex, coordinator: FillCoordinator, policy: FillPolicy, smallBlobMemory: number, log: Logger, metrics: Metrics }) {
    this.store = opts.store
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
    if (small !== undefined) {
      this.metrics.cache.inc({ kind: 'blob', result: 'hit' })
      this.index.touch(digest.value)
      return { size: small.length, range: undefined, length: small.length, body: undefined, source: 'cache' }
    }
    const info = await this.store.stat(digest)
    if (info !== undefined) {
      this.metrics.cache.inc({ kind: 'blob', result: 'hit' })
      this.index.touch(digest.value)
      return { size: info.size, range: undefined, length: info.size, body: undefined, source: 'cache' }
    }
    const fill = this.fills.get(digest.value)
    if (fill?.size !== undefined) return { size: fill.size, range: undefined, length: fill.size, body: undefined, source: 'fill' }
    // A HEAD does not start a fill: clients HEAD many blobs they never GET.
    const res = await route.upstream.request({ method: 'HEAD', repo: route.repo, path: `blobs/${digest.value}`, kind: 'blob' })
    if (res.status !== 200) throw await route.upstream.errorFrom(res, 'blob', digest.value)
    res.body.resume()
    const size = declaredSize(res.headers['content-length'])
    return { size, range: undefined, length: size, body: undefined, source: 'upstream' }
  }

  async get (route: Route, digest: Digest, rangeHeader: string | undefined): Promise<BlobAnswer> {
    for (let attempt = 0; ; attempt++) {
      const cached = await this.fromStore(digest, rangeHeader)
      if (cached !== undefined) {
        this.metrics.cache.inc({ kind: 'blob', result: 'hit' })
        return cached
      }
      let fill = this.fills.get(digest.value)
      if (fill !== undefined) {
        this.metrics.fillWaiters.inc()
      } else {
        this.metrics.cache.inc({ kind: 'blob', result: 'miss' })
        fill = this.startFill(route, digest)
      }
      try {
        return await this.fromFill(fill, rangeHeader)
      } catch (err) {
        // the fill ended elsewhere while we asked to join it: look again
        if (!(err instanceof RetryClaim) || attempt >= 2) throw err
      }
    }
  }

  private startFill (route: Route, digest: Digest): Fill {
    const fill = new Fill(digest, join(this.staging, `${digest.hex.slice(0, 16)}-${randomBytes(6).toString('hex')}`))
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
      await this.lead(route, fill)
    })()
    // the map entry lives until the fill has ended: committed (the store has it) or failed (the next request retries)
    void fill.ready.then(() => fill.done, () => undefined).then(() => {
      if (this.fills.get(digest.value) === fill) this.fills.delete(digest.value)
      this.metrics.fillsInFlight.dec()
    })
    return fill
  }

  /** This process fills the blob: one upstream GET, then `Fill.run` resumes and verifies. */
  private async lead (route: Route, fill: Fill): Promise<void> {
    const digest = fill.digest
    const started = Date.now()
    const upstream = route.upstream.name
    let etag: string | undefined
    try {
      const res = await route.upstream.request({ method: 'GET', repo: route.repo, path: `blobs/${digest.value}`, kind: 'blob' })
      if (res.status !== 200) throw await route.upstream.errorFrom(res, 'blob', digest.value)
      etag = strongEtag(res.headers.etag)
      const size = declaredSize(res.headers['content-length'])
      this.log.info({ digest: digest.value, upstream, size }, 'blob fill started')
      void fill.run({ size, body: res.body, skip: 0 }, {
        reopen: offset => this.reopen(route, digest, offset, etag),
        attempts: this.policy.resumeAttempts,
        backoffMs: this.policy.resumeBackoffMs,
        commit: async path => {
          await this.store.commitFile(digest, path)
          this.index.added(digest.value, fill.written)
        },
        onBytes: n => this.metrics.upstreamBytes.inc({ upstream }, n),
        onResume: (offset, err) => {
          this.metrics.fillResumes.inc()
          this.log.warn({ digest: digest.value, upstream, offset, err: (err as Error).message }, 'upstream transfer broke; resuming')
        },
      }).then(() => {
        if (fill.state === 'verified' && fill.outcome === 'failed') {
          this.log.error({ digest: digest.value, upstream, err: (fill.commitError as Error)?.message }, 'blob verified and served, but the store could not keep it')
        } else if (fill.state === 'failed') {
          const reason = (fill.error as { reason?: string }).reason ?? 'upstream'
          this.metrics.fillFailures.inc({ reason })
          this.log.warn({ digest: digest.value, upstream, reason, err: fill.error?.message, detail: fill.error?.detail }, 'blob fill failed; nothing cached')
        } else {
          this.log.info({ digest: digest.value, upstream, bytes: fill.written, ms: Date.now() - started }, 'blob cached')
        }
      })
    } catch (err) {
      // no fill ran: followers in other workers must not wait for one
      this.coordinator.progress(digest.value, { size: undefined, written: 0, outcome: 'failed' })
      throw err
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

  private async fromStore (digest: Digest, rangeHeader: string | undefined): Promise<BlobAnswer | undefined> {
    const small = this.small.get(digest.value)
    if (small !== undefined) {
      this.index.touch(digest.value)
      return answerFromBuffer(small, parseRange(rangeHeader, small.length))
    }
    const unpin = this.index.pin(digest.value)
    let blob: OpenBlob | undefined
    try {
      blob = await this.store.open(digest)
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
    this.index.touch(digest.value)
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
      const cached = await this.fromStore(fill.digest, rangeHeader)
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
