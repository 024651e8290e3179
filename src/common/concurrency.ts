// Bounded parallelism: a counting semaphore, and a map over a list with at
// most `limit` items in flight.

export class Semaphore {
  private free: number
  private readonly waiting: (() => void)[] = []
  constructor (n: number) { this.free = n }

  async acquire (): Promise<void> {
    if (this.free > 0) { this.free--; return }
    await new Promise<void>(resolve => this.waiting.push(resolve))
  }

  release (): void {
    const next = this.waiting.shift()
    if (next !== undefined) next(); else this.free++
  }

  /** `work` once a place is free, the place given back however it ends. */
  async run<T> (work: () => Promise<T>): Promise<T> {
    await this.acquire()
    try { return await work() } finally { this.release() }
  }
}

/** `work` on every item, at most `limit` at a time; rejects with the first failure once the running ones end. */
export async function inParallel<T> (items: readonly T[], limit: number, work: (item: T) => Promise<void>): Promise<void> {
  let next = 0
  let failed: unknown
  await Promise.all(Array.from({ length: Math.min(limit, items.length) }, async () => {
    while (next < items.length && failed === undefined) {
      const item = items[next++]!
      try { await work(item) } catch (err) { failed ??= err }
    }
  }))
  if (failed !== undefined) throw failed
}
