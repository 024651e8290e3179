// How often each tag (and manifest digest) of a repository was pulled and
// when last, for the console's tag lists. A proxy counts into memory and
// adds what it counted to the region's figures every minute and on close
// (figure-stores.ts).
import type { UsageStore } from './figure-stores.ts'

export interface Pulls { count: number, last: number }

export class Usage {
  private readonly store: UsageStore
  /** Counted since the last flush, by `repo\nreference`. */
  private pending = new Map<string, Pulls>()
  private timer: NodeJS.Timeout | undefined
  private flushing: Promise<void> | undefined

  constructor (store: UsageStore) { this.store = store }

  async start (): Promise<void> {
    await this.store.open()
    this.timer = setInterval(() => { void this.flush().catch(() => {}) }, 60_000)
    this.timer.unref()
  }

  /** A manifest of `repo` served, asked for by `reference` (a tag or a digest). */
  pulled (repo: string, reference: string): void {
    const key = `${repo}\n${reference}`
    const p = this.pending.get(key)
    if (p === undefined) this.pending.set(key, { count: 1, last: Date.now() })
    else { p.count++; p.last = Date.now() }
  }

  async flush (): Promise<void> {
    while (this.flushing !== undefined) await this.flushing
    if (this.pending.size === 0) return
    const pending = this.pending
    this.pending = new Map()
    this.flushing = this.store.add(pending).catch((err: unknown) => {
      // counted again at the next flush
      for (const [k, v] of pending) {
        const p = this.pending.get(k)
        this.pending.set(k, p === undefined ? v : { count: p.count + v.count, last: Math.max(p.last, v.last) })
      }
      throw err
    }).finally(() => { this.flushing = undefined })
    await this.flushing
  }

  async close (): Promise<void> {
    if (this.timer !== undefined) clearInterval(this.timer)
    await this.flush().catch(() => {})
  }

  /** Pulls of each of `references` of `repo`, over the region (this proxy's as of now). */
  async of (repo: string, references: readonly string[]): Promise<Map<string, Pulls>> {
    await this.flush().catch(() => {})
    return await this.store.read(repo, references)
  }
}
