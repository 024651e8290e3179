// Appends a fill's bytes to its staging file behind the stream that brings
// them: the fill hands chunks over as they arrive and goes on receiving and
// hashing while the disk writes what has queued, in one positional writev
// per round (so the slower the disk, the larger the writes). The fill waits
// only when more than a bound is queued, which keeps memory flat.
import type { FileHandle } from 'node:fs/promises'
import { FillError, stagingError } from './errors.ts'

/** Bytes handed to every staging writer of this process and not yet in their files. */
let unwrittenEverywhere = 0
export function bytesUnwrittenEverywhere (): number { return unwrittenEverywhere }

export class StagingWriter {
  /** Bytes in the file. */
  written = 0
  /** Why the file could not take the bytes; the fill fails with it. */
  failure: FillError | undefined
  private queue: Buffer[] = []
  private queued = 0
  private running: Promise<void> | undefined
  /** Settles after each write round. */
  private round: Promise<void> = Promise.resolve()
  private roundDone: () => void = () => {}
  private readonly fh: FileHandle
  private readonly path: string
  private readonly onWritten: () => void

  constructor (fh: FileHandle, path: string, onWritten: () => void) {
    this.fh = fh
    this.path = path
    this.onWritten = onWritten
  }

  /** Bytes handed over and not yet in the file. */
  get behind (): number { return this.queued }

  append (chunks: readonly Buffer[], bytes: number): void {
    if (this.failure !== undefined) throw this.failure
    for (const c of chunks) this.queue.push(c)
    this.queued += bytes
    unwrittenEverywhere += bytes
    this.running ??= this.run()
  }

  /** Resolves once at most `bytes` are queued; rejects when the file failed. */
  async room (bytes: number): Promise<void> {
    while (this.queued > bytes && this.running !== undefined) await this.round
    if (this.failure !== undefined) throw this.failure
  }

  /** Resolves once everything handed over is in the file. */
  async drained (): Promise<void> { await this.room(0) }

  private async run (): Promise<void> {
    try {
      while (this.queue.length > 0 && this.failure === undefined) {
        this.round = new Promise(resolve => { this.roundDone = resolve })
        const batch = this.queue
        this.queue = []
        let n = 0
        for (const c of batch) n += c.length
        let wrote: number
        try {
          wrote = (await this.fh.writev(batch, this.written)).bytesWritten
        } catch (err) {
          this.failure = stagingError(err, this.path)
          break
        }
        // a short write to a file is the disk filling up
        if (wrote !== n) {
          this.failure = new FillError('FILL_NO_SPACE', 'no space left on this proxy\'s disk', { path: this.path, wrote, of: n })
          break
        }
        this.written += n
        this.queued -= n
        unwrittenEverywhere -= n
        this.onWritten()
        this.roundDone()
      }
    } finally {
      if (this.failure !== undefined) {
        // nothing more will be written: what is queued is let go
        unwrittenEverywhere -= this.queued
        this.queued = 0
        this.queue = []
      }
      this.running = undefined
      this.roundDone()
    }
  }
}
