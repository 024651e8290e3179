// Appends bytes to a file behind the stream that brings them: the caller
// hands chunks over as they arrive and goes on receiving (and hashing) while
// the disk writes what has queued, in one positional writev per round, so
// the slower the disk, the larger the writes and the fewer thread-pool round
// trips (a write per socket chunk cost a round trip per 64 KiB). The caller
// bounds memory by waiting for room.
import type { FileHandle } from 'node:fs/promises'

/** Why the file stopped taking bytes: the error the OS gave, or a short write (a disk filling up). */
export type AppendFailure = { kind: 'error', err: unknown } | { kind: 'short', wrote: number, of: number }

export class FileAppender {
  /** Bytes in the file, from where appending started. */
  written = 0
  failure: AppendFailure | undefined
  private queue: Buffer[] = []
  private queued = 0
  private running: Promise<void> | undefined
  /** Settles after each write round. */
  private round: Promise<void> = Promise.resolve()
  private roundDone: () => void = () => {}
  private readonly fh: FileHandle
  private readonly start: number
  private readonly onRound: (bytes: number) => void

  /** `onRound` hears the bytes each round moved from the queue (written, or dropped on a failure). */
  constructor (fh: FileHandle, start: number, onRound: (bytes: number) => void = () => {}) {
    this.fh = fh
    this.start = start
    this.onRound = onRound
  }

  /** Bytes handed over and not yet in the file. */
  get behind (): number { return this.queued }

  /** Queues `chunks` (`bytes` in all); false when the file has failed (nothing queued). */
  append (chunks: readonly Buffer[], bytes: number): boolean {
    if (this.failure !== undefined) return false
    for (const c of chunks) this.queue.push(c)
    this.queued += bytes
    this.running ??= this.run()
    return true
  }

  /**
   * Queues `chunk`, then waits while more than `maxBehind` is queued (down to
   * half of it): the caller reads its source no faster than the disk takes
   * it. False when the file has failed (nothing queued; see `error`).
   */
  async write (chunk: Buffer, maxBehind: number): Promise<boolean> {
    if (!this.append([chunk], chunk.length)) return false
    if (this.queued > maxBehind) await this.room(maxBehind / 2)
    return true
  }

  /** The failure as an error to throw: what the OS gave, or ENOSPC for a short write (its message starting with the code, as the OS's do); undefined while the file takes the bytes. */
  get error (): Error | undefined {
    const f = this.failure
    if (f === undefined) return undefined
    return f.kind === 'error' ? f.err as Error : Object.assign(new Error(`ENOSPC: a short write (${f.wrote} of ${f.of} bytes): the disk is full`), { code: 'ENOSPC' })
  }

  /** Resolves once at most `bytes` are queued, or the file has failed (see `failure`). */
  async room (bytes: number): Promise<void> {
    while (this.queued > bytes && this.running !== undefined) await this.round
  }

  /** Resolves once everything handed over is in the file, or the file has failed. */
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
          wrote = (await this.fh.writev(batch, this.start + this.written)).bytesWritten
        } catch (err) {
          this.failure = { kind: 'error', err }
          break
        }
        if (wrote !== n) {
          this.failure = { kind: 'short', wrote, of: n }
          break
        }
        this.written += n
        this.queued -= n
        this.onRound(n)
        this.roundDone()
      }
    } finally {
      if (this.failure !== undefined) {
        // nothing more will be written: what is queued is let go
        const dropped = this.queued
        this.queued = 0
        this.queue = []
        this.onRound(dropped)
      }
      this.running = undefined
      this.roundDone()
    }
  }
}
