// Reusable buffers for the blob hot path. Streaming a blob with a new buffer
// per read makes garbage as fast as clients read (16 clients at disk speed
// is over 1 GB/s), and the process grows by whatever the GC has not yet
// collected. Pooled buffers keep memory at (clients x 2 buffers). A response
// starts with small buffers and takes large ones once its client has shown
// it keeps up, so a client that reads slowly (or not at all) pins 128 KiB,
// not 2 MiB.
export const CHUNK = 1024 * 1024
export const SMALL_CHUNK = 64 * 1024

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
export const smallPool = new BufferPool(SMALL_CHUNK, 64)
