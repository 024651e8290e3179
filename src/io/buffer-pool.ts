// Reusable 1 MiB buffers for the blob hot path. Streaming a blob with a new
// buffer per read makes garbage as fast as clients read (16 clients at disk
// speed is over 1 GB/s), and the process grows by whatever the GC has not
// yet collected. Pooled buffers keep memory at (clients x 2 buffers).
export const CHUNK = 1024 * 1024

export class BufferPool {
  private readonly free: Buffer[] = []
  private readonly keep: number
  constructor (keep: number) { this.keep = keep }

  get (): Buffer {
    return this.free.pop() ?? Buffer.allocUnsafeSlow(CHUNK)
  }

  put (buf: Buffer): void {
    if (this.free.length < this.keep) this.free.push(buf)
  }
}

export const pool = new BufferPool(16)
