// Blobs: store first, then a fill already running, then one new fill from the
// upstream. Blobs are immutable, so a hit never asks the upstream.
import { randomBytes } from 'node:crypto'
import { mkdir, readdir, rm } from 'node:fs/promises'
import { join } from 'node:path'
import type { Readable } from 'node:stream'
import { parseRange, type ByteRange } from '../oci/range.ts'
import type { Digest } from '../oci/reference.ts'
import type { Logger } from '../observe/logger.ts'
import type { Metrics } from '../observe/metrics.ts'
import type { BlobStore } from '../store/blob-store.ts'
import type { Route } from '../upstream/router.ts'
import { Fill } from './fill.ts'

export interface BlobAnswer {
  /** Total size of the blob, when known. */
  readonly size: number | undefined
  /** Present when a Range was served (206). */
  readonly range: ByteRange | undefined
  /** Bytes in the body. */
  readonly length: number | undefined
  /** Absent for HEAD. */
  readonly stream: Readable | undefined
  readonly source: 'cache' | 'fill' | 'upstream'
}

export class BlobCache {
  private readonly store: BlobStore
  private readonly staging: string
  private readonly fills = new Map<string, Fill>()
  private readonly log: Logger
  private readonly metrics: Metrics

  constructor (store: BlobStore, staging: string, log: Logger, metrics: Metrics) {
    this.store = store
    this.staging = staging
    this.log = log
    this.metrics = metrics
  }

  /** Remove staging files a killed process left behind; none of them was ever committed. */
  async init (): Promise<void> {
    await mkdir(this.staging, { recursive: true })
    const stray = await readdir(this.staging)
    await Promise.all(stray.map(f => rm(join(this.staging, f), { force: true })))
    if (stray.length > 0) this.log.info({ removed: stray.length }, 'removed stray staging files')
  }

  async head (route: Route, digest: Digest): Promise<BlobAnswer> {
    const info = await this.store.stat(digest)
    if (info !== undefined) {
      this.metrics.cache.inc({ kind: 'blob', result: 'hit' })
      return { size: info.size, range: undefined, length: info.size, stream: undefined, source: 'cache' }
    }
    const fill = this.fills.get(digest.value)
    if (fill?.size !== undefined) return { size: fill.size, range: undefined, length: fill.size, stream: undefined, source: 'fill' }
    // A HEAD does not start a fill: clients HEAD many blobs they never GET.
    const res = await route.upstream.request({ method: 'HEAD', repo: route.repo, path: `blobs/${digest.value}`, kind: 'blob' })
    if (res.status !== 200) throw await route.upstream.errorFrom(res, 'blob', digest.value)
    res.body.resume()
    const size = Number(res.headers['content-length'])
    return { size: Number.isSafeInteger(size) ? size : undefined, range: undefined, length: Number.isSafeInteger(size) ? size : undefined, stream: undefined, source: 'upstream' }
  }

  async get (route: Route, digest: Digest, rangeHeader: string | undefined): Promise<BlobAnswer> {
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
    return await this.fromFill(fill, rangeHeader)
  }

  private startFill (route: Route, digest: Digest): Fill {
    const fill = new Fill(digest, join(this.staging, `${digest.hex.slice(0, 16)}-${randomBytes(6).toString('hex')}`))
    this.fills.set(digest.value, fill)
    this.metrics.fillsInFlight.inc()
    const started = Date.now()
    fill.ready = (async () => {
      const res = await route.upstream.request({ method: 'GET', repo: route.repo, path: `blobs/${digest.value}`, kind: 'blob' })
      if (res.status !== 200) throw await route.upstream.errorFrom(res, 'blob', digest.value)
      const declared = Number(res.headers['content-length'])
      const upstream = route.upstream.name
      void fill.run(
        { size: Number.isSafeInteger(declared) && declared >= 0 ? declared : undefined, body: res.body },
        path => this.store.commitFile(digest, path),
        n => this.metrics.upstreamBytes.inc({ upstream }, n),
      ).then(() => {
        if (fill.state === 'failed') {
          const reason = (fill.error as { reason?: string }).reason ?? 'upstream'
          this.metrics.fillFailures.inc({ reason })
          this.log.warn({ digest: digest.value, upstream, reason, err: fill.error?.message, detail: fill.error?.detail }, 'blob fill failed; nothing cached')
        } else {
          this.log.info({ digest: digest.value, upstream, bytes: fill.written, ms: Date.now() - started }, 'blob cached')
        }
      })
    })()
    // the map entry lives until the fill has ended: committed (the store has it) or failed (the next request retries)
    void fill.ready.then(() => fill.done, () => undefined).then(() => {
      if (this.fills.get(digest.value) === fill) this.fills.delete(digest.value)
      this.metrics.fillsInFlight.dec()
    })
    return fill
  }

  private async fromStore (digest: Digest, rangeHeader: string | undefined): Promise<BlobAnswer | undefined> {
    const info = await this.store.stat(digest)
    if (info === undefined) return undefined
    const range = parseRange(rangeHeader, info.size)
    const read = await this.store.read(digest, range)
    if (read === undefined) return undefined
    return { size: info.size, range, length: read.size, stream: read.stream, source: 'cache' }
  }

  private async fromFill (fill: Fill, rangeHeader: string | undefined): Promise<BlobAnswer> {
    await fill.ready
    if (fill.state === 'verified') {
      // joined just as the fill committed: the store has it now
      const cached = await this.fromStore(fill.digest, rangeHeader)
      if (cached !== undefined) return cached
    }
    const range = parseRange(rangeHeader, fill.size)
    const stream = fill.reader(range)
    const length = range !== undefined ? range.end - range.start + 1 : fill.size
    return { size: fill.size, range, length, stream, source: 'fill' }
  }

  /** For shutdown: wait for running fills so no staging file is left half-written without need. */
  async drain (): Promise<void> {
    await Promise.allSettled([...this.fills.values()].map(f => f.done))
  }
}

