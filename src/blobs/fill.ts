// One fill: a verified copy of a blob being made on this proxy's disk,
// streamed from a source into a staging file while it is hashed. Any number
// of readers follow it, each at its own pace, from any offset: from the
// chunks in hand while they keep up (recent-bytes.ts), from the staging file
// when they fall behind; the file is written behind the stream
// (staging-writer.ts), so neither the disk nor a reader slows the source.
// The last byte is held back until the digest verifies, so a client can get
// a truncated transfer but never a complete wrong blob; only a verified file
// is committed. A source that breaks off or stalls is opened again from the
// offset held.
import { createHash, type Hash } from 'node:crypto'
import type { FileHandle } from 'node:fs/promises'
import { open, unlink } from 'node:fs/promises'
import { Writable } from 'node:stream'
import { setTimeout as sleep } from 'node:timers/promises'
import type { Digest } from '../oci/reference.ts'
import type { ByteRange } from '../oci/range.ts'
import { bufferBody, copyRange, type Body, type Growth } from '../io/body.ts'
import { CHUNK } from '../io/buffer-pool.ts'
import { arrived } from '../io/young-garbage.ts'
import { RegistryError } from '../registry-client/errors.ts'
import { StoreError } from '../store/errors.ts'
import { FillError, stagingError } from './errors.ts'
import type { FillUpdate } from './fill-table.ts'
import { bytesKeptEverywhere, RecentBytes } from './recent-bytes.ts'
import type { OpenedBlob } from './source.ts'
import { bytesUnwrittenEverywhere, StagingWriter } from './staging-writer.ts'

/** Bytes received and not yet in the staging file before the source is made to wait for the disk. */
const MAX_UNWRITTEN = 4 * CHUNK
/** Bytes kept in memory behind the newest for readers a little behind (besides those not yet written). */
const KEEP_RECENT = 2 * CHUNK
/**
 * Budgets over every fill of the process, so memory stays flat however many
 * fill at once: past them a fill keeps only what is not yet written, and
 * waits for its disk once 256 KiB of its own is unwritten.
 */
const KEPT_BUDGET = 16 * CHUNK
const UNWRITTEN_BUDGET = 16 * CHUNK
const MIN_UNWRITTEN = CHUNK / 4

export interface FillOptions {
  /** Opens the source again from `offset`, after a break or a stall. */
  readonly reopen: (offset: number) => Promise<OpenedBlob>
  /** How many times a broken transfer is resumed before the fill fails. */
  readonly attempts: number
  readonly backoffMs: number
  /** Moves the verified staging file into the store. */
  readonly commit: (path: string) => Promise<void>
  readonly onBytes: (n: number) => void
  readonly onResume: (offset: number, err: unknown) => void
}

/**
 * Not worth another attempt: the bytes are wrong, or the source answered
 * that the blob is not there or not ours to have, or this proxy's disk
 * failed (full: asking the source again would only fail again, at the
 * upstream's cost). Anything else (a break, a stall, a 5xx, a 429, a store
 * that failed to send) is resumed.
 */
function final (err: unknown): boolean {
  if (err instanceof FillError) return err.code !== 'FILL_SOURCE_FAILED'
  if (err instanceof RegistryError) return err.code === 'REGISTRY_NOT_FOUND' || err.code === 'REGISTRY_DENIED' || err.code === 'REGISTRY_REJECTED'
  return false
}

type State = 'running' | 'verified' | 'failed'

export class Fill {
  readonly digest: Digest
  readonly tempPath: string
  size: number | undefined
  /** Bytes in the staging file so far (what readers in other processes may read). */
  get written (): number { return this.writer?.written ?? this.followed }
  /** Bytes received and hashed so far (what readers in this process may read, but the last). */
  received = 0
  /** A follower's view of the leader's progress. */
  private followed = 0
  private writer: StagingWriter | undefined
  private wakeQueued = false
  private readonly recent = new RecentBytes()
  state: State = 'running'
  error: Error | undefined
  /** Resolves when the upstream answered 200 (size known); rejects with the client-facing error otherwise. */
  ready: Promise<void> = Promise.resolve()
  private fh: FileHandle | undefined
  private users = 1 // the fill itself
  private tick!: Promise<void>
  private wake!: () => void
  /** Settles when the fill has ended, verified and committed or failed. */
  readonly done: Promise<void>
  private settle!: () => void

  /** Blobs up to this size (declared by the upstream) are also held in memory while they fill. */
  private readonly holdUpTo: number
  /** The bytes so far of a blob small enough to hold. */
  private held: Buffer[] | undefined
  /** The whole verified blob, when it was small enough to hold: served and cached from memory. */
  bytes: Buffer | undefined

  constructor (digest: Digest, tempPath: string, holdUpTo = 0) {
    this.digest = digest
    this.tempPath = tempPath
    this.holdUpTo = holdUpTo
    this.newTick()
    this.done = new Promise(resolve => { this.settle = resolve })
  }

  private newTick (): void {
    this.tick = new Promise(resolve => { this.wake = resolve })
  }

  /** How the fill ended for the store: committed, or not (set last). */
  outcome: 'verified' | 'failed' | undefined
  /** A follower came too late: the leader's staging file was gone. The store may have the blob. */
  lateJoin = false
  /** Why a verified blob could not be committed. */
  commitError: unknown
  /** Told of every change: the leader's progress goes to the coordinator this way. */
  onChange: ((update: FillUpdate) => void) | undefined

  /** Wake this process's readers: more bytes, or the end. */
  private wakeReaders (): void {
    const wake = this.wake
    this.newTick()
    wake()
  }

  private notify (): void {
    this.wakeReaders()
    this.onChange?.({
      size: this.size,
      written: this.written,
      ...(this.state === 'verified' ? { verified: true } : {}),
      ...(this.outcome !== undefined ? { outcome: this.outcome } : {}),
    })
  }

  /**
   * Mirror a fill that another process leads: read its staging file, learn
   * its progress from `subscribe`. Readers work exactly as on a local fill.
   * Resolves once the leader has its staging file open (and so, normally,
   * knows the size).
   */
  async follow (claim: { path: string, size: number | undefined, written: number, started: boolean }, subscribe: (listener: (u: FillUpdate) => void) => () => void): Promise<void> {
    this.size = claim.size
    this.followed = claim.written
    this.received = claim.written
    let started!: () => void
    const startedP = new Promise<void>(resolve => { started = resolve })
    if (claim.started) started()
    const unsubscribe = subscribe(u => {
      started()
      if (this.state === 'failed') return
      this.size = u.size ?? this.size
      this.followed = Math.max(this.followed, u.written)
      this.received = this.followed
      if (u.outcome === 'failed' && this.state === 'running') {
        unsubscribe()
        this.fail(new FillError('FILL_SOURCE_FAILED', 'the fill of this blob failed in another worker'))
        return
      }
      if (u.verified === true || u.outcome === 'verified') this.state = 'verified'
      this.notify()
      if (u.outcome !== undefined) {
        unsubscribe()
        this.release()
        this.settle()
      }
    })
    await startedP
    if (this.state === 'failed') throw this.error!
    try {
      this.fh = await open(claim.path, 'r')
    } catch (err) {
      // renamed into the store already: readers go to the store
      if ((this.state as State) === 'verified') return
      this.lateJoin = (err as NodeJS.ErrnoException).code === 'ENOENT'
      unsubscribe()
      this.fail(new FillError('FILL_SOURCE_FAILED', 'the fill of this blob ended in another worker before it could be joined', { cause: (err as Error).message }))
      throw this.error!
    }
    if ((this.state as State) !== 'running' && this.users === 0) {
      // ended while opening: nobody else will close it
      await this.fh.close()
      this.fh = undefined
    }
  }

  private fail (err: Error): void {
    if (this.state !== 'running') return
    this.state = 'failed'
    this.error = err
    this.notify()
    this.release()
    this.settle()
  }

  /**
   * Stream `first` into the staging file, resuming from the offset held when
   * the source breaks off or stalls, verify, then commit. Never rejects: the
   * outcome is in `state` and `error`.
   */
  async run (first: OpenedBlob, opts: FillOptions): Promise<void> {
    this.size = first.size
    // set before the first await: readers that come once the fill is ready see it
    if (first.size !== undefined && first.size <= this.holdUpTo) this.held = []
    try {
      this.fh = await open(this.tempPath, 'w+').catch((err: unknown) => { throw stagingError(err, this.tempPath) })
      const writer = this.writer = new StagingWriter(this.fh, this.tempPath, () => {
        const keep = bytesKeptEverywhere() > KEPT_BUDGET ? 0 : KEEP_RECENT
        this.recent.dropBefore(Math.min(writer.written, this.received - keep))
        this.notify()
      })
      this.notify() // followers in other workers may open the file now
      const hash = createHash(this.digest.algorithm)
      let source: OpenedBlob | undefined = first
      for (let failures = 0; ;) {
        try {
          if (source === undefined) source = await opts.reopen(this.received)
          if (source.size !== undefined && this.size !== undefined && source.size !== this.size) {
            throw new FillError('FILL_SIZE_MISMATCH', 'the source changed the blob size between attempts', { before: this.size, now: source.size })
          }
          if (source.start > this.received) throw new FillError('FILL_SOURCE_FAILED', 'the source sent bytes past the offset held', { held: this.received, start: source.start })
          this.size ??= source.size
          await this.pump(source, hash, opts.onBytes)
          if (this.size !== undefined && this.received < this.size) {
            throw new FillError('FILL_SOURCE_FAILED', 'the source closed the transfer early', { declared: this.size, received: this.received })
          }
          break
        } catch (caught) {
          source?.body.discard()
          source = undefined
          // the source's side may report the cut its own way; the disk's failure is the one that counts
          const err = writer.failure ?? caught
          if (final(err) || ++failures > opts.attempts) throw err
          opts.onResume(this.received, err)
          await sleep(opts.backoffMs * 2 ** (failures - 1))
        }
      }
      const actual = hash.digest('hex')
      if (actual !== this.digest.hex) {
        throw new FillError('FILL_DIGEST_MISMATCH', 'the source sent a blob whose digest does not match', { expected: this.digest.value, actual: `${this.digest.algorithm}:${actual}` })
      }
      // verified only once the file holds every byte: readers in other processes read the file
      await writer.drained()
      this.size = this.received
      if (this.held !== undefined) this.bytes = Buffer.concat(this.held, this.received)
      this.held = undefined
      // clients get their last byte now; making it durable in the store is not their wait
      this.state = 'verified'
      this.recent.clear()
      this.notify()
      await this.fh.datasync().catch((err: unknown) => { throw stagingError(err, this.tempPath) })
      await opts.commit(this.tempPath)
      this.outcome = 'verified'
    } catch (err) {
      if (this.state === 'verified') {
        // verified and served, but not stored: the next request fills again
        this.commitError = err
      } else {
        this.state = 'failed'
        this.error = err instanceof FillError || err instanceof RegistryError || err instanceof StoreError ? err : new FillError('FILL_SOURCE_FAILED', 'the source transfer failed', { cause: (err as Error).message })
        this.recent.clear()
        await this.writer?.drained().catch(() => {}) // no write lands in the file after it is gone
      }
      this.outcome = 'failed'
      await unlink(this.tempPath).catch(() => {})
    } finally {
      this.notify()
      this.release()
      this.settle()
    }
  }

  /** Everything `source` sends, past the bytes already held, hashed and handed to the staging writer. */
  private async pump (source: OpenedBlob, hash: Hash, onBytes: (n: number) => void): Promise<void> {
    const sink = this.sink(hash, onBytes, this.received - source.start, source.body.freshChunks === true)
    await source.body.writeTo(sink)
    await new Promise<void>((resolve, reject) => {
      sink.once('error', reject)
      sink.end(() => { sink.off('error', reject); resolve() })
    })
  }

  private sink (hash: Hash, onBytes: (n: number) => void, skip: number, fresh: boolean): Writable {
    const writer = this.writer!
    const take = (chunks: Buffer[]): Promise<void> | undefined => {
      if (skip > 0) {
        // a source that sent the whole blob again: same digest, same bytes, so drop what is held
        const kept: Buffer[] = []
        for (const c of chunks) {
          if (skip >= c.length) { skip -= c.length; continue }
          kept.push(skip > 0 ? c.subarray(skip) : c)
          skip = 0
        }
        chunks = kept
        if (chunks.length === 0) return undefined
      }
      let n = 0
      for (const c of chunks) n += c.length
      if (this.size !== undefined && this.received + n > this.size) {
        throw new FillError('FILL_SIZE_MISMATCH', 'the source sent more bytes than it declared', { declared: this.size })
      }
      // kept past this call (the file, the readers, the held bytes): a source that reuses its buffers hands over copies
      if (!fresh) chunks = chunks.map(c => Buffer.from(c))
      writer.append(chunks, n)
      for (const c of chunks) {
        hash.update(c)
        this.recent.add(c)
        if (this.held !== undefined) this.held.push(c)
      }
      this.received += n
      arrived(n)
      onBytes(n)
      // once per turn of the event loop, after it has read what the socket holds: readers send it in one write
      if (!this.wakeQueued) {
        this.wakeQueued = true
        setImmediate(() => { this.wakeQueued = false; this.wakeReaders() })
      }
      if (writer.behind > MAX_UNWRITTEN) return writer.room(MAX_UNWRITTEN)
      if (writer.behind > MIN_UNWRITTEN && bytesUnwrittenEverywhere() > UNWRITTEN_BUDGET) return writer.room(MIN_UNWRITTEN)
      return undefined
    }
    const done = (chunks: Buffer[], cb: (err?: Error | null) => void): void => {
      let wait: Promise<void> | undefined
      try {
        wait = take(chunks)
      } catch (err) {
        cb(err as Error)
        return
      }
      if (wait === undefined) cb()
      else wait.then(() => cb(), cb)
    }
    return new Writable({
      highWaterMark: MIN_UNWRITTEN, // the staging writer batches; a deeper buffer here would only hold bytes the budgets do not see
      write: (chunk: Buffer, _enc, cb) => { done([chunk], cb) },
      writev: (items, cb) => { done(items.map(i => i.chunk as Buffer), cb) },
    })
  }

  /** How far readers in this process may read: everything once verified, all but the last byte before. */
  private readable (): number {
    if (this.state === 'verified') return this.received
    return Math.max(0, this.received - 1)
  }

  /** The staging file is still open, so readers can be served from it. */
  get open (): boolean { return this.fh !== undefined || this.state === 'running' }

  /**
   * The bytes [range.start, range.end] (inclusive), or the whole blob, served
   * from the staging file as it grows. Writing fails, and so cuts its client,
   * if the fill fails.
   */
  reader (range?: ByteRange): Body {
    if (this.state === 'failed') throw this.error!
    if (this.held !== undefined || this.bytes !== undefined) return this.memoryReader(range)
    this.users++
    let released = false
    const release = (): void => { if (!released) { released = true; this.release() } }
    const growth: Growth = {
      limit: () => {
        if (this.state === 'failed') throw this.error!
        return this.readable()
      },
      complete: () => this.state === 'verified',
      changed: () => this.tick,
      inHand: (pos, limit, max) => this.recent.slices(pos, limit, max),
      onDisk: () => this.written,
    }
    const start = range?.start ?? 0
    return {
      writeTo: async out => {
        try {
          // the leader opens its staging file just after the upstream answered
          while (this.fh === undefined && this.state === 'running') await this.tick
          if (this.state === 'failed') throw this.error!
          const end = range !== undefined ? range.end + 1 : (this.size ?? Infinity)
          return await copyRange(this.fh!, start, end, out, growth)
        } finally {
          release()
        }
      },
      discard: release,
    }
  }

  /**
   * A small blob, whole from memory once verified: the wait is the upstream's
   * few milliseconds, and the staging file is not read back at all.
   */
  private memoryReader (range?: ByteRange): Body {
    return {
      writeTo: async out => {
        while (this.state === 'running') await this.tick
        if (this.bytes === undefined) throw this.error ?? new FillError('FILL_SOURCE_FAILED', 'the source transfer failed')
        const part = range === undefined ? this.bytes : this.bytes.subarray(range.start, range.end + 1)
        return await bufferBody(part).writeTo(out)
      },
      discard: () => {},
    }
  }

  private release (): void {
    if (--this.users === 0 && this.fh !== undefined) {
      const fh = this.fh
      this.fh = undefined
      fh.close().catch(() => {})
    }
  }
}
