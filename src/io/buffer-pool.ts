// Reusable buffers for the blob hot path. Streaming a blob with a new buffer
// per read makes garbage as fast as clients read (16 clients at disk speed
// is over 1 GB/s), and the process grows by whatever the GC has not yet
// collected. Pooled buffers keep memory at (clients x 2 buffers). A response
// starts with small buffers and takes larger ones as its client shows it
// keeps up (body.ts), so a client that reads slowly (or not at all) pins
// 64 or 256 KiB, not 1 MiB.
export const CHUNK = 1024 * 1024
export const SMALL_CHUNK = 64 * 1024
export const MEDIUM_CHUNK = 256 * 1024

export class BufferPool {
  private readonly free: Buffer[] = []
  private readonly keep: number
  readonly size: number
  constructor (size: number, keep: number) {
    this.size = size
    this.keep = keep
  }

  get (): Buffer {
    return this.free.pop() ?? Buffer.allocUnsafeSlow(this.size)
  }

  put (buf: Buffer): void {
    if (buf.length === this.size && this.free.length < this.keep) this.free.push(buf)
  }
}

export const pool = new BufferPool(CHUNK, 16)
export const mediumPool = new BufferPool(MEDIUM_CHUNK, 32)
export const smallPool = new BufferPool(SMALL_CHUNK, 64)
