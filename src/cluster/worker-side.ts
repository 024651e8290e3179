// A worker's view of the primary: fill claims and progress, batched cache
// index updates, and the cluster's metrics.
import type { CacheIndex } from '../eviction/cache-index.ts'
import type { Claim, FillTable, FillUpdate } from '../blobs/fill-table.ts'
import { isFerryMessage, type ToPrimary, type ToWorker } from './messages.ts'

const PROGRESS_BYTES = 1024 * 1024
const PROGRESS_DELAY_MS = 5
const TOUCH_BATCH_MS = 1000

export class PrimaryLink implements FillTable, CacheIndex {
  private nextId = 1
  private readonly pending = new Map<number, (m: ToWorker) => void>()
  private readonly listeners = new Map<string, Set<(u: FillUpdate) => void>>()
  private readonly lastSent = new Map<string, number>()
  private readonly trailing = new Map<string, { update: FillUpdate, timer: NodeJS.Timeout }>()
  private touched = new Set<string>()
  private readonly touchTimer: NodeJS.Timeout

  constructor () {
    process.on('message', (m: unknown) => {
      if (!isFerryMessage<ToWorker>(m)) return
      if (m.ferry === 'update') {
        for (const l of [...(this.listeners.get(m.digest) ?? [])]) l(m.update)
        return
      }
      const reply = this.pending.get(m.id)
      if (reply !== undefined) { this.pending.delete(m.id); reply(m) }
    })
    // recency is batched: a hit costs no message, a second later one message carries them all
    this.touchTimer = setInterval(() => this.flushTouches(), TOUCH_BATCH_MS)
    this.touchTimer.unref()
  }

  private send (m: ToPrimary): void { process.send?.(m) }

  private ask (make: (id: number) => ToPrimary): Promise<ToWorker> {
    const id = this.nextId++
    return new Promise(resolve => {
      this.pending.set(id, resolve)
      this.send(make(id))
    })
  }

  async claim (digest: string, path: string): Promise<Claim> {
    const m = await this.ask(id => ({ ferry: 'claim', id, digest, path }))
    return m.ferry === 'claimed' ? m.claim : { role: 'leader' }
  }

  progress (digest: string, update: FillUpdate): void {
    const last = this.lastSent.get(digest)
    // the first report (file open), the last, and one per MiB go at once; the rest trail by a few ms
    if (last === undefined || update.outcome !== undefined || update.written - last >= PROGRESS_BYTES) {
      const t = this.trailing.get(digest)
      if (t !== undefined) { clearTimeout(t.timer); this.trailing.delete(digest) }
      if (update.outcome !== undefined) this.lastSent.delete(digest); else this.lastSent.set(digest, update.written)
      this.send({ ferry: 'progress', digest, update })
      return
    }
    const t = this.trailing.get(digest)
    if (t !== undefined) { t.update = update; return }
    const entry = {
      update,
      timer: setTimeout(() => {
        this.trailing.delete(digest)
        if (!this.lastSent.has(digest)) return // ended meanwhile
        this.lastSent.set(digest, entry.update.written)
        this.send({ ferry: 'progress', digest, update: entry.update })
      }, PROGRESS_DELAY_MS),
    }
    this.trailing.set(digest, entry)
  }

  subscribe (digest: string, listener: (u: FillUpdate) => void): () => void {
    let set = this.listeners.get(digest)
    if (set === undefined) { set = new Set(); this.listeners.set(digest, set) }
    set.add(listener)
    return () => {
      set.delete(listener)
      if (set.size === 0 && this.listeners.get(digest) === set) this.listeners.delete(digest)
    }
  }

  touch (digest: string): void { this.touched.add(digest) }

  added (digest: string, size: number): void { this.send({ ferry: 'added', digest, size }) }

  makeRoom (bytes: number): void { this.send({ ferry: 'make-room', bytes }) }

  /** Pins are not needed across processes for the filesystem store: an open file outlives its unlink. */
  pin (): () => void { return () => {} }

  private flushTouches (): void {
    if (this.touched.size === 0) return
    const digests = [...this.touched]
    this.touched = new Set()
    this.send({ ferry: 'touch', digests })
  }

  async metrics (): Promise<{ text: string, contentType: string }> {
    const m = await this.ask(id => ({ ferry: 'metrics', id }))
    return m.ferry === 'metrics' ? { text: m.text, contentType: m.contentType } : { text: '', contentType: 'text/plain' }
  }

  close (): void {
    this.flushTouches()
    clearInterval(this.touchTimer)
  }
}
