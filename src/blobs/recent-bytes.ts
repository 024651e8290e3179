// The last bytes a fill received, kept in memory as they arrived, so its
// readers that keep up are served the chunks in hand instead of reading them
// back from the staging file: no read, no copy, and no wait for the disk.
// The chunks are the source's own (never reused by it), shared by every
// reader; a reader that falls behind what is kept reads the file.

/** Bytes kept by every fill of this process: past a budget, fills keep only what is not yet written. */
let keptEverywhere = 0
export function bytesKeptEverywhere (): number { return keptEverywhere }

export class RecentBytes {
  private readonly chunks: Buffer[] = []
  /** Offset in the blob of each kept chunk's first byte. */
  private readonly offsets: number[] = []
  private head = 0
  /** Offset just past the last byte kept. */
  end = 0

  /** Offset of the first byte kept (= end when nothing is). */
  get start (): number { return this.head < this.chunks.length ? this.offsets[this.head]! : this.end }

  add (chunk: Buffer): void {
    this.chunks.push(chunk)
    this.offsets.push(this.end)
    this.end += chunk.length
    keptEverywhere += chunk.length
  }

  /**
   * The kept bytes from `pos`, at most `max` of them and none at or past
   * `limit`, as slices of the chunks; undefined when `pos` is before what is
   * kept (or nothing there may be read yet).
   */
  slices (pos: number, limit: number, max: number): Buffer[] | undefined {
    if (pos < this.start || pos >= Math.min(limit, this.end)) return undefined
    let i = this.find(pos)
    const out: Buffer[] = []
    const stop = Math.min(limit, this.end, pos + max)
    while (pos < stop) {
      const chunk = this.chunks[i]!
      const from = pos - this.offsets[i]!
      const take = Math.min(chunk.length - from, stop - pos)
      out.push(from === 0 && take === chunk.length ? chunk : chunk.subarray(from, from + take))
      pos += take
      i++
    }
    return out
  }

  /** Let go of every chunk that ends at or before `offset`. */
  dropBefore (offset: number): void {
    while (this.head < this.chunks.length && this.offsets[this.head]! + this.chunks[this.head]!.length <= offset) {
      keptEverywhere -= this.chunks[this.head]!.length
      this.chunks[this.head] = EMPTY
      this.head++
    }
    if (this.head > 64 && this.head * 2 > this.chunks.length) {
      this.chunks.splice(0, this.head)
      this.offsets.splice(0, this.head)
      this.head = 0
    }
  }

  clear (): void { this.dropBefore(this.end) }

  /** Index of the kept chunk holding `pos` (start <= pos < end). */
  private find (pos: number): number {
    let lo = this.head
    let hi = this.chunks.length - 1
    while (lo < hi) {
      const mid = (lo + hi + 1) >> 1
      if (this.offsets[mid]! <= pos) lo = mid; else hi = mid - 1
    }
    return lo
  }
}

const EMPTY = Buffer.alloc(0)
