// One fill: a single upstream GET of a blob, streamed into a staging file
// while it is hashed. Any number of readers tail the growing file, each at
// its own pace, from any offset. The last byte is held back until the digest
// verifies, so a client can get a truncated transfer but never a complete
// wrong blob; only a verified file is committed to the store.
import { createHash, type Hash } from 'node:crypto'
import type { FileHandle } from 'node:fs/promises'
import { open, unlink } from 'node:fs/promises'
import { Readable, Writable, pipeline } from 'node:stream'
import { OciError, UpstreamUnavailable } from '../oci/errors.ts'
import type { Digest } from '../oci/reference.ts'
import type { ByteRange } from '../oci/range.ts'
import { READ_CHUNK } from '../store/fs-blob-store.ts'

export type FillFailure = 'digest_mismatch' | 'size_mismatch' | 'upstream' | 'store'

export class FillError extends UpstreamUnavailable {
  readonly reason: FillFailure
  constructor (reason: FillFailure, message: string, detail?: unknown) {
    super(502, message, detail)
    this.reason = reason
  }
}

export interface FillSource {
  /** Declared length, when the upstream sent Content-Length. */
  readonly size: number | undefined
  readonly body: Readable
}

type State = 'running' | 'verified' | 'failed'

export class Fill {
  readonly digest: Digest
  readonly tempPath: string
  size: number | undefined
  /** Bytes written to the staging file so far. */
  written = 0
  state: State = 'running'
  error: OciError | undefined
  /** Resolves when the upstream answered 200 (size known); rejects with the client-facing error otherwise. */
  ready: Promise<void> = Promise.resolve()
  private fh: FileHandle | undefined
  private users = 1 // the fill itself
  private tick!: Promise<void>
  private wake!: () => void
  /** Settles when the fill has ended, verified and committed or failed. */
  readonly done: Promise<void>
  private settle!: () => void

  constructor (digest: Digest, tempPath: string) {
    this.digest = digest
    this.tempPath = tempPath
    this.newTick()
    this.done = new Promise(resolve => { this.settle = resolve })
  }

  private newTick (): void {
    this.tick = new Promise(resolve => { this.wake = resolve })
  }

  private notify (): void {
    const wake = this.wake
    this.newTick()
    wake()
  }

  /**
   * Stream `source` into the staging file, verify, then `commit` the file.
   * Never rejects: the outcome is in `state` and `error`.
   */
  async run (source: FillSource, commit: (path: string) => Promise<void>, onBytes: (n: number) => void): Promise<void> {
    this.size = source.size
    try {
      this.fh = await open(this.tempPath, 'w+')
      const hash = createHash(this.digest.algorithm)
      await new Promise<void>((resolve, reject) => {
        pipeline(source.body, this.sink(hash, onBytes), err => err ? reject(err) : resolve())
      })
      if (this.size !== undefined && this.written !== this.size) {
        throw new FillError('size_mismatch', 'upstream sent fewer bytes than it declared', { declared: this.size, received: this.written })
      }
      const actual = hash.digest('hex')
      if (actual !== this.digest.hex) {
        throw new FillError('digest_mismatch', 'upstream sent a blob whose digest does not match', { expected: this.digest.value, actual: `${this.digest.algorithm}:${actual}` })
      }
      this.size = this.written
      await this.fh.datasync()
      await commit(this.tempPath)
      this.state = 'verified'
    } catch (err) {
      this.state = 'failed'
      this.error = err instanceof OciError ? err : new FillError('upstream', 'upstream transfer failed', { cause: (err as Error).message })
      await unlink(this.tempPath).catch(() => {})
    } finally {
      this.notify()
      this.release()
      this.settle()
    }
  }

  private sink (hash: Hash, onBytes: (n: number) => void): Writable {
    const write = async (chunks: Buffer[]): Promise<void> => {
      let n = 0
      for (const c of chunks) { hash.update(c); n += c.length }
      if (this.size !== undefined && this.written + n > this.size) {
        throw new FillError('size_mismatch', 'upstream sent more bytes than it declared', { declared: this.size })
      }
      // positional writes: readers share this handle and read at their own offsets
      await this.fh!.writev(chunks, this.written)
      this.written += n
      onBytes(n)
      this.notify()
    }
    return new Writable({
      highWaterMark: 4 * READ_CHUNK,
      write: (chunk: Buffer, _enc, cb) => { write([chunk]).then(() => cb(), cb) },
      writev: (items, cb) => { write(items.map(i => i.chunk as Buffer)).then(() => cb(), cb) },
    })
  }

  /** How far readers may read: everything once verified, all but the last byte before. */
  private readable (): number {
    if (this.state === 'verified') return this.written
    return Math.max(0, this.written - 1)
  }

  /**
   * A stream of bytes [range.start, range.end] (inclusive), or of the whole
   * blob, served from the staging file as it grows. It errors, and so aborts
   * its client, if the fill fails.
   */
  reader (range?: ByteRange): Readable {
    if (this.state === 'failed') throw this.error!
    this.users++
    const fill = this
    async function * chunks (): AsyncGenerator<Buffer> {
      try {
        let pos = range?.start ?? 0
        for (;;) {
          const end = range !== undefined ? range.end + 1 : (fill.size ?? Infinity)
          if (pos >= end) return
          if (fill.state === 'failed') throw fill.error
          const limit = Math.min(fill.readable(), end)
          if (pos < limit) {
            const buf = Buffer.allocUnsafe(Math.min(READ_CHUNK, limit - pos))
            const { bytesRead } = await fill.fh!.read(buf, 0, buf.length, pos)
            if (bytesRead === 0) throw new FillError('store', 'staging file shorter than written')
            pos += bytesRead
            yield bytesRead === buf.length ? buf : buf.subarray(0, bytesRead)
          } else if (fill.state === 'verified') {
            return
          } else {
            await fill.tick
          }
        }
      } finally {
        fill.release()
      }
    }
    return Readable.from(chunks(), { objectMode: false, highWaterMark: READ_CHUNK })
  }

  private release (): void {
    if (--this.users === 0 && this.fh !== undefined) {
      const fh = this.fh
      this.fh = undefined
      fh.close().catch(() => {})
    }
  }
}
