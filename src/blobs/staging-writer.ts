// Appends a fill's bytes to its staging file behind the stream that brings
// them (io/file-appender.ts), counting what every fill of the process has
// handed over and not yet written, which fills wait on to keep memory flat.
import type { FileHandle } from 'node:fs/promises'
import { FileAppender } from '../io/file-appender.ts'
import { FillError, stagingError } from './errors.ts'

/** Bytes handed to every staging writer of this process and not yet in their files. */
let unwrittenEverywhere = 0
export function bytesUnwrittenEverywhere (): number { return unwrittenEverywhere }

export class StagingWriter {
  private readonly appender: FileAppender
  private readonly path: string
  private failed: FillError | undefined

  constructor (fh: FileHandle, path: string, onWritten: () => void) {
    this.path = path
    this.appender = new FileAppender(fh, 0, bytes => {
      unwrittenEverywhere -= bytes
      if (this.appender.failure === undefined) onWritten()
    })
  }

  /** Bytes in the file. */
  get written (): number { return this.appender.written }

  /** Bytes handed over and not yet in the file. */
  get behind (): number { return this.appender.behind }

  /** Why the file could not take the bytes; the fill fails with it. */
  get failure (): FillError | undefined {
    const f = this.appender.failure
    if (f === undefined) return undefined
    // a short write to a file is the disk filling up
    this.failed ??= f.kind === 'short'
      ? new FillError('FILL_NO_SPACE', 'no space left on this proxy\'s disk', { path: this.path, wrote: f.wrote, of: f.of })
      : stagingError(f.err, this.path)
    return this.failed
  }

  append (chunks: readonly Buffer[], bytes: number): void {
    if (!this.appender.append(chunks, bytes)) throw this.failure!
    unwrittenEverywhere += bytes
  }

  /** Resolves once at most `bytes` are queued; rejects when the file failed. */
  async room (bytes: number): Promise<void> {
    await this.appender.room(bytes)
    const failure = this.failure
    if (failure !== undefined) throw failure
  }

  /** Resolves once everything handed over is in the file. */
  async drained (): Promise<void> { await this.room(0) }
}
