// One peer region's delivery loop: read a batch of the region's events,
// deliver those the rules send to this peer (in parallel, but the events of
// one tag in order), move the peer's cursor past the batch. Each event goes
// whole: its blobs, then child manifests, then the manifest, then the tag,
// so a peer never has a tag before its content. Deletes of tags and
// manifests go only where the rule says `deletes: true`.
//
// A peer that is down or failing (network, 5xx, 429) is retried with backoff
// for ever: lag grows, nothing is lost. An event the peer refuses (4xx), or
// whose content this region cannot produce (its edge answers but the store
// stays without it), is tried `attempts` times, then kept in the dead
// letters with the reason and skipped, so lag can reach 0.
import { setTimeout as sleep } from 'node:timers/promises'
import { Transform, type Readable } from 'node:stream'
import { inParallel, Semaphore } from '../common/concurrency.ts'
import type { ReplicationConfig } from '../config/region-config.ts'
import { bodyReadable, collect } from '../io/body.ts'
import { arrived } from '../io/young-garbage.ts'
import { MAX_MANIFEST_BYTES, parseManifest } from '../oci/manifest.ts'
import { ALL_MANIFEST_TYPES } from '../oci/media-types.ts'
import { parseDigest, type Digest } from '../oci/reference.ts'
import type { Logger } from '../observe/logger.ts'
import type { BlobStore } from '../store/blob-store.ts'
import type { RegionEvent, RegionState, StoredEvent } from '../state/region-state.ts'
import type { Edge } from './edge.ts'
import type { ReplicationMetrics } from './metrics.ts'
import { PushError, type PushClient } from './push-client.ts'
import type { Rules } from './rules.ts'
import { boundedCache } from '../common/bounded-cache.ts'

const BATCH = 100
const IDLE_POLL_MS = 250
const MAX_BACKOFF_MS = 30_000
const MANIFEST_LANDS_WITHIN_MS = 5000

/** What every peer's loop shares: the region, the rules, and whether the replicator is stopping. */
/** Tells the webhooks what happened to an event (replicated, or given up on). */
export type Notify = (type: 'replicated' | 'replication.failed', subject: string, data: Record<string, unknown>) => void

export interface ReplicationContext {
  readonly notify?: Notify
  readonly state: RegionState
  readonly store: BlobStore
  readonly config: ReplicationConfig
  readonly rules: Rules
  readonly log: Logger
  readonly metrics: ReplicationMetrics
  readonly edge: Edge
  readonly stopped: () => boolean
  readonly signal: AbortSignal
}

export class PeerLoop {
  private readonly client: PushClient
  private readonly peer: string
  private readonly c: ReplicationContext
  /** Blob uploads in flight to this peer, whatever events they belong to. */
  private readonly transfers: Semaphore
  /** digest -> a repository the peer has it in: the next push of it can be a mount. */
  private readonly seen = boundedCache<string, string>(100_000)

  constructor (c: ReplicationContext, client: PushClient) {
    this.client = client
    this.peer = client.peer.name
    this.c = c
    this.transfers = new Semaphore(this.c.config.concurrency)
  }

  async run (): Promise<void> {
    const log = this.c.log.child({ peer: this.peer })
    let cursor = await this.retryForever(() => this.c.state.events.cursor(this.peer), log)
    while (!this.c.stopped()) {
      let batch: StoredEvent[]
      try {
        batch = await this.c.state.events.read(cursor, BATCH)
      } catch (err) {
        log.warn({ err: (err as Error).message }, 'cannot read the region stream; retrying')
        await this.pause(1000)
        continue
      }
      if (batch.length === 0) { await this.pause(IDLE_POLL_MS); continue }
      // events go in parallel, except those of one tag, which keep their order (a tag that moved twice ends where it was last)
      const chains = new Map<string, Promise<void>>()
      await inParallel(batch, this.c.config.concurrency, async item => {
        const e = item.event
        const key = e.kind === 'tag' || e.kind === 'tag-deleted' ? `tag ${e.name}:${e.tag}` : item.id
        const mine = (chains.get(key) ?? Promise.resolve()).then(() => this.handle(item, log))
        chains.set(key, mine)
        await mine
      })
      // a stop in the middle of a batch leaves the cursor before it: what was delivered goes again (idempotent)
      if (this.c.stopped()) return
      cursor = batch[batch.length - 1]!.id
      await this.retryForever(() => this.c.state.events.setCursor(this.peer, cursor), log)
    }
  }

  private async pause (ms: number): Promise<void> {
    await sleep(ms, undefined, { signal: this.c.signal }).catch(() => {})
  }

  private async retryForever<T> (op: () => Promise<T>, log: Logger): Promise<T> {
    for (let delay = 250; ; delay = Math.min(delay * 2, MAX_BACKOFF_MS)) {
      try { return await op() } catch (err) {
        if (this.c.stopped()) throw err
        log.warn({ err: (err as Error).message }, 'region state unreachable; retrying')
        await this.pause(delay)
      }
    }
  }

  /** Deliver one event, retrying; returns once it is delivered, skipped, or dead-lettered. */
  private async handle (item: StoredEvent, log: Logger): Promise<void> {
    const e = item.event
    if (e.kind === 'blob') return // blobs travel with the manifests that name them
    const tag = e.kind === 'tag' || e.kind === 'tag-deleted' ? e.tag : undefined
    const deletion = e.kind === 'tag-deleted' || e.kind === 'manifest-deleted'
    if (!(deletion ? this.c.rules.deletesFor(e.name, tag) : this.c.rules.peersFor(e.name, tag)).includes(this.peer)) return
    const what = { kind: e.kind, name: e.name, ...('digest' in e ? { digest: e.digest } : {}), ...(tag !== undefined ? { tag } : {}) }
    let refused = 0
    for (let delay = 250; !this.c.stopped(); delay = Math.min(delay * 2, MAX_BACKOFF_MS)) {
      const started = Date.now()
      try {
        await this.deliver(e)
        this.c.metrics.delivered(this.peer, e.kind)
        log.info({ ...what, ms: Date.now() - started }, 'replicated')
        this.c.notify?.('replicated', e.name, { peer: this.peer, ...what })
        return
      } catch (err) {
        const retryable = !(err instanceof PushError) || err.retryable
        if (!retryable && ++refused >= this.c.config.attempts) {
          await this.c.state.events.addDeadLetter(this.peer, { id: item.id, event: e, error: (err as Error).message, at: Date.now() })
          this.c.metrics.deadLettered(this.peer)
          this.c.notify?.('replication.failed', e.name, { peer: this.peer, ...what, error: (err as Error).message })
          log.error({ ...what, err: (err as Error).message }, 'event cannot be delivered; kept in the dead letters')
          return
        }
        this.c.metrics.failed(this.peer)
        log.warn({ ...what, err: (err as Error).message, retryInMs: delay }, 'replication failed; retrying')
        await this.pause(delay)
      }
    }
  }

  async deliver (e: RegionEvent): Promise<void> {
    if (e.kind === 'blob') return
    if (e.kind === 'tag-deleted') { await this.client.deleteManifest(e.name, e.tag); return }
    if (e.kind === 'manifest-deleted') { await this.client.deleteManifest(e.name, e.digest); return }
    await this.pushManifest(e.name, e.digest)
    if (e.kind === 'tag') {
      const { mediaType, body } = await this.localManifest(e.name, e.digest)
      await this.client.putManifest(e.name, e.tag, mediaType, body)
    }
  }

  private async localManifest (name: string, digest: string): Promise<{ mediaType: string, body: Buffer }> {
    const d = parseDigest(digest)
    let mediaType = (await this.c.state.manifests.get(digest))?.mediaType
    let blob = mediaType === undefined ? undefined : await this.c.store.open(d)
    if (mediaType === undefined || blob === undefined) {
      // evicted since: the region's edge brings it back
      await this.c.edge.fetch(name, 'manifests', digest)
      // the edge saves what it fetched just after it answered
      for (let i = 0; i < MANIFEST_LANDS_WITHIN_MS / 100; i++) {
        mediaType = (await this.c.state.manifests.get(digest))?.mediaType
        blob = mediaType === undefined ? undefined : await this.c.store.open(d)
        if (blob !== undefined) break
        await sleep(100)
      }
      // the edge answered, yet the store has nothing: asking again gives the same; the dead letters keep it for --retry-dead
      if (mediaType === undefined || blob === undefined) throw new PushError(`manifest ${digest} is not in this region's store`, false)
    }
    return { mediaType, body: await collect(blob.body(), MAX_MANIFEST_BYTES) }
  }

  /**
   * The manifest and what it needs, children first, unless the peer has it
   * already. An image's blobs all go (the edge fetches any this region does
   * not hold yet: a client is usually pulling them as we speak). An index
   * takes only the child manifests this region holds: a pull-through cache
   * holds the platforms its clients pulled, and a ferry peer accepts such a
   * partial index (it fetches other platforms from the upstream on demand).
   */
  private async pushManifest (name: string, digest: string): Promise<void> {
    if (await this.client.hasManifest(name, digest) !== undefined) return
    const { mediaType, body } = await this.localManifest(name, digest)
    const m = parseManifest(body)
    for (const child of m.manifests) {
      if (!ALL_MANIFEST_TYPES.includes(child.mediaType)) continue
      if (await this.c.state.manifests.get(child.digest) === undefined) continue
      await this.pushManifest(name, child.digest)
    }
    const blobs = [...(m.config !== undefined ? [m.config] : []), ...m.layers]
    await inParallel(blobs, this.c.config.concurrency, b => this.pushBlob(name, b.digest))
    await this.client.putManifest(name, digest, mediaType, body)
  }

  /** One push per digest at a time: events in parallel often share blobs (a tag and its manifest). */
  private readonly pushing = new Map<string, Promise<void>>()

  private async pushBlob (name: string, digest: string): Promise<void> {
    const running = this.pushing.get(digest)
    if (running !== undefined) {
      await running.catch(() => {})
      // the other push went to its own repository; this one may need a mount or an upload of its own
      if (await this.client.hasBlob(name, digest)) return
    }
    const mine = this.transfers.run(() => this.pushBlobNow(name, digest))
    this.pushing.set(digest, mine)
    try {
      await mine
    } finally {
      if (this.pushing.get(digest) === mine) this.pushing.delete(digest)
    }
  }

  private async pushBlobNow (name: string, digest: string): Promise<void> {
    if (await this.client.hasBlob(name, digest)) { this.seen.set(digest, name); return }
    const from = this.seen.get(digest)
    if (from !== undefined && from !== name && await this.client.mount(name, digest, from)) {
      this.seen.set(digest, name)
      return
    }
    const d = parseDigest(digest)
    let size = (await this.c.store.stat(d))?.size
    if (size === undefined) {
      await this.c.edge.fetch(name, 'blobs', digest)
      size = (await this.c.edge.landed(d)).size
    }
    // an upload this replicator started before it stopped (or was killed) goes on from where the peer is
    const markKey = `${this.peer}/uploads/${d.hex}`
    let location: string | undefined
    let offset = 0
    const mark = await this.c.state.events.cursor(markKey)
    if (mark !== '0') {
      const held = await this.client.uploadOffset(mark).catch(() => undefined)
      if (held !== undefined && held <= size) {
        location = mark; offset = held
        this.c.log.info({ peer: this.peer, digest, offset, size }, 'resuming an upload')
      }
    }
    location ??= await this.client.startUpload(name)
    await this.c.state.events.setCursor(markKey, location)
    const read = (start: number, end: number): Readable => readableOf(this.c.store, d, start, end)
    try {
      await this.client.upload(location, digest, size, offset, read, async (loc, at) => {
        this.c.metrics.bytes(this.peer, Math.min(at, size) - offset)
        offset = at
        await this.c.state.events.setCursor(markKey, loc)
      })
    } catch (err) {
      // an upload the peer refuses is not resumed: the next attempt starts afresh
      if (err instanceof PushError && !err.retryable) await this.c.state.events.setCursor(markKey, '0')
      throw err
    }
    await this.c.state.events.setCursor(markKey, '0')
    this.seen.set(digest, name)
  }
}

/** Bytes [start, end] of a stored blob as a stream (opened lazily, read with backpressure). */
function readableOf (store: BlobStore, digest: Digest, start: number, end: number): Readable {
  // the buffers read die as soon as they are sent: counted, so a scavenge frees them (io/young-garbage.ts)
  const out = new Transform({ transform (chunk: Buffer, _enc, done) { arrived(chunk.length); done(null, chunk) } })
  store.open(digest).then(blob => {
    if (blob === undefined) throw new Error(`blob ${digest.value} left the store`)
    bodyReadable(blob.body({ start, end })).on('error', err => out.destroy(err)).pipe(out)
  }).catch((err: unknown) => out.destroy(err as Error))
  return out
}
