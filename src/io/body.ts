// A response body that knows how to write itself to a Writable (an HTTP
// response, or a collector). Hand-written for files because it is the hot
// path: positional reads into pooled buffers, each buffer reused only after
// the socket has taken it, one read ahead of the write in flight.
import { readFileSync } from 'node:fs'
import type { FileHandle } from 'node:fs/promises'
import { PassThrough, Writable, type Readable } from 'node:stream'
import { pipeline } from 'node:stream/promises'
import { CHUNK, MEDIUM_CHUNK, mediumPool, pool, smallPool } from './buffer-pool.ts'
import { BodyTooLarge } from './read-bounded.ts'

export interface Body {
  /** Write every byte to `out`; resolves with the count sent, rejects if either side fails. */
  writeTo (out: Writable): Promise<number>
  /** Let go of the source without sending (HEAD, or an error before sending). */
  discard (): void
  /** Set when the whole body is already in memory: it can go out with the headers in one write. */
  readonly bytes?: Buffer
  /** The chunks it writes are never reused by it: whoever takes them may keep them. */
  readonly freshChunks?: boolean
}

/** How far a file may be read now, and how to wait for more (a file still being filled). */
export interface Growth {
  /** Bytes readable from offset 0; throws when the file will never be complete. */
  limit (): number
  /** No more bytes will come: limit() is final. */
  complete (): boolean
  /** Resolves when limit() may have changed. */
  changed (): Promise<void>
  /**
   * The bytes from `pos` still in memory (none at or past `limit`, at most
   * `max`), to be sent as they are; undefined when they must be read from
   * the file.
   */
  inHand? (pos: number, limit: number, max: number): Buffer[] | undefined
  /** Bytes in the file from offset 0, when less than limit() may be. */
  onDisk? (): number
}

function writeChunk (out: Writable, chunk: Buffer): Promise<void> {
  return new Promise((resolve, reject) => {
    if (out.destroyed) { reject(new Error('client went away')); return }
    out.write(chunk, err => err ? reject(err) : resolve())
  })
}

/** Several chunks in one go (corked: one writev to the socket); resolves when the last is taken. */
function writeChunks (out: Writable, chunks: readonly Buffer[]): Promise<void> {
  if (chunks.length === 1) return writeChunk(out, chunks[0]!)
  return new Promise((resolve, reject) => {
    if (out.destroyed) { reject(new Error('client went away')); return }
    out.cork()
    for (let i = 0; i < chunks.length - 1; i++) out.write(chunks[i]!)
    out.write(chunks[chunks.length - 1]!, err => err ? reject(err) : resolve())
    out.uncork()
  })
}

/**
 * Bytes a client must take as fast as they are read (each write done before
 * the next read is) before it gets 1 MiB buffers. A write is done once the
 * kernel has the bytes, and the kernel takes up to the socket's send buffer
 * plus the receiver's window from a client that reads nothing (here 4 + 32
 * MiB: tcp_wmem and tcp_rmem's maxima): below that, keeping up proves
 * nothing. With 4 MiB, 200 readers that had stopped pinned 363 MiB under
 * load.
 */
const PROVEN = kernelBuffering() + CHUNK
/** 256 KiB buffers once 4 MiB went at the pace below: most of the speed, a quarter of the pin. */
const PROMISING = 4 * CHUNK
/**
 * The pace that earns 256 KiB buffers: 16 MB/s, over each 4 MiB taken.
 * Asking every client to keep up with the disk for them too put each one
 * slower than the page cache on 64 KiB reads for good: containerd, busy
 * unpacking, took each 48 MiB layer in 0.65-1.02 s (50-77 MB/s) and 288 MiB warm in
 * 3,516 thread-pool reads (`npm run bench -- --ctr --strace`). Below the
 * pace a client costs few reads a second whatever their size, and small
 * buffers bound what it pins.
 */
const PACE_BYTES_PER_MS = 16_000
const PACE_WINDOW = 4 * CHUNK

function kernelBuffering (): number {
  const max = (file: string): number => {
    try { return Number(readFileSync(file, 'utf8').trim().split(/\s+/)[2]) || 0 } catch { return 0 }
  }
  const total = max('/proc/sys/net/ipv4/tcp_wmem') + max('/proc/sys/net/ipv4/tcp_rmem')
  return total > 0 ? total : 8 * CHUNK
}

/**
 * Copy bytes [start, end) of `fh` to `out`. With `growth`, bytes past the
 * current limit are waited for. Small buffers first; 256 KiB ones while the
 * client keeps a pace, 1 MiB ones once it keeps up with the disk; small again
 * when it falls behind.
 */
export async function copyRange (fh: FileHandle, start: number, end: number, out: Writable, growth?: Growth): Promise<number> {
  let pos = start
  let inFlight: Promise<void> | undefined
  let failed: unknown
  /** Bytes the client took at the pace (see PACE_BYTES_PER_MS). */
  let kept = 0
  /** Bytes it took as fast as they were read (see PROVEN). */
  let keptUp = 0
  let writing = false
  let paceFrom = performance.now()
  let paceBytes = 0
  const gone = new Promise<never>((_, reject) => {
    out.once('close', () => reject(new Error('client went away')))
  })
  gone.catch(() => {})
  try {
    while (pos < end) {
      const limit = growth === undefined ? end : Math.min(end, growth.limit())
      if (pos >= limit) {
        if (growth === undefined || growth.complete()) break
        await Promise.race([growth.changed(), gone])
        continue
      }
      const from = keptUp >= PROVEN ? pool : kept >= PROMISING ? mediumPool : smallPool
      // chunks in hand are shared with the fill and every other reader: a reader that stops pins no
      // buffer of its own, so they go out at least 256 KiB at a time (64 KiB writes, each one syscall,
      // were most of a cold pull's socket writes)
      const batch = Math.max(from.size, MEDIUM_CHUNK)
      const inHand = growth?.inHand?.(pos, limit, batch)
      let chunks: readonly Buffer[]
      let n = 0
      let giveBack = (): void => {}
      if (inHand !== undefined) {
        // a fill's chunks as they arrived: nothing to read, nothing to copy, no buffer to give back
        for (const c of inHand) n += c.length
        if (pos > start && n < Math.min(batch, end - pos) && !growth!.complete()) {
          // caught up: gather a buffer's worth before the next write, as a file read would (16 readers
          // writing each 64 KiB chunk as it came made the herd 10-20 % slower than reading the file back)
          await Promise.race([growth!.changed(), gone])
          continue
        }
        chunks = inHand
      } else {
        const readTo = growth?.onDisk === undefined ? limit : Math.min(limit, growth.onDisk())
        if (pos >= readTo) {
          // not in the file yet and no longer in hand: cannot happen while the fill keeps what it has not written
          await Promise.race([growth!.changed(), gone])
          continue
        }
        const buf = from.get()
        try {
          ({ bytesRead: n } = await fh.read(buf, 0, Math.min(buf.length, readTo - pos), pos))
        } catch (err) {
          from.put(buf)
          throw err
        }
        if (n === 0) { from.put(buf); throw new Error('file shorter than expected') }
        chunks = [buf.subarray(0, n)]
        giveBack = () => { from.put(buf) }
      }
      keptUp = writing ? 0 : keptUp + n
      if (inFlight !== undefined) await Promise.race([inFlight, gone])
      if (failed !== undefined) throw failed
      const size = n
      writing = true
      inFlight = writeChunks(out, chunks).then(() => {
        writing = false
        kept += size
        paceBytes += size
        if (paceBytes >= PACE_WINDOW) {
          const now = performance.now()
          if (paceBytes / (now - paceFrom) < PACE_BYTES_PER_MS) kept = 0
          paceFrom = now
          paceBytes = 0
        }
        giveBack()
      }, err => { failed = err })
      pos += n
    }
    if (inFlight !== undefined) await Promise.race([inFlight, gone])
    if (failed !== undefined) throw failed
    return pos - start
  } catch (err) {
    // a buffer still in a failed write is dropped, not pooled: the socket may hold it
    await inFlight?.catch(() => {})
    throw err
  }
}

/** Bytes [start, end] (inclusive) of an open file; the body owns the handle and closes it. */
export function fileBody (fh: FileHandle, start: number, end: number): Body {
  let closed = false
  const close = async (): Promise<void> => { if (!closed) { closed = true; await fh.close().catch(() => {}) } }
  return {
    async writeTo (out) {
      try { return await copyRange(fh, start, end + 1, out) } finally { await close() }
    },
    discard () { void close() },
  }
}

/** Call `after` once when the body is written or discarded. */
export function onceDone (body: Body, after: () => void): Body {
  let done = false
  const finish = (): void => { if (!done) { done = true; after() } }
  return {
    async writeTo (out) {
      try { return await body.writeTo(out) } finally { finish() }
    },
    discard () { body.discard(); finish() },
  }
}

/** Bytes already in memory. */
export function bufferBody (bytes: Buffer): Body {
  return {
    bytes,
    async writeTo (out) {
      if (bytes.length > 0) await writeChunk(out, bytes)
      return bytes.length
    },
    discard () {},
  }
}

/** Nothing: a HEAD's answer. */
export const EMPTY_BODY: Body = { bytes: Buffer.alloc(0), writeTo: async () => 0, discard: () => {} }

/** The whole body in memory (a manifest, a small blob); past `limit` bytes, BodyTooLarge. */
export async function collect (body: Body, limit: number): Promise<Buffer> {
  if (body.bytes !== undefined) {
    if (body.bytes.length > limit) throw new BodyTooLarge(limit)
    return body.bytes
  }
  const chunks: Buffer[] = []
  let size = 0
  const sink = new Writable({
    write (chunk: Buffer, _enc, cb) {
      size += chunk.length
      if (size > limit) { cb(new BodyTooLarge(limit)); return }
      chunks.push(Buffer.from(chunk)) // the source may reuse its buffer
      cb()
    },
  })
  await body.writeTo(sink)
  return Buffer.concat(chunks)
}

/**
 * A body arriving from another registry, as it arrives: piped with
 * backpressure; `out` is not ended (its owner ends it). Discarding it
 * destroys the stream, which gives its connection back.
 */
export function arrivingBody (source: Readable): Body {
  return {
    freshChunks: true,
    async writeTo (out) {
      let n = 0
      const count = (chunk: Buffer): void => { n += chunk.length }
      source.on('data', count)
      try {
        await pipeline(source, out, { end: false })
      } finally {
        source.off('data', count)
      }
      return n
    },
    discard () { source.destroy() },
  }
}

/**
 * A body read from a stream (an object store's response). Written with
 * backpressure; fails if the stream ends short of `expected` bytes, so a
 * client never takes a truncated blob for a whole one.
 */
export function streamBody (open: () => Promise<Readable>, expected: number | undefined): Body {
  let source: Readable | undefined
  let discarded = false
  return {
    freshChunks: true,
    async writeTo (out) {
      source = await open()
      if (discarded) { source.destroy(); return 0 }
      let n = 0
      const gone = (): void => { source?.destroy(new Error('client went away')) }
      out.once('close', gone)
      try {
        for await (const chunk of source as AsyncIterable<Buffer>) {
          n += chunk.length
          if (expected !== undefined && n > expected) throw new Error('store sent more bytes than expected')
          if (out.destroyed) throw new Error('client went away')
          if (!out.write(chunk)) await drained(out)
        }
      } catch (err) {
        source.destroy()
        throw err
      } finally {
        out.off('close', gone)
      }
      if (expected !== undefined && n !== expected) throw new Error(`store sent ${n} of ${expected} bytes`)
      return n
    },
    discard () { discarded = true; source?.destroy() },
  }
}

function drained (out: Writable): Promise<void> {
  return new Promise((resolve, reject) => {
    const done = (err?: Error): void => {
      out.off('drain', onDrain); out.off('close', onClose); out.off('error', done)
      if (err) reject(err); else resolve()
    }
    const onDrain = (): void => done()
    const onClose = (): void => done(new Error('client went away'))
    out.once('drain', onDrain); out.once('close', onClose); out.once('error', done)
  })
}

/**
 * A Body as a Readable (a fill reading from a store, an upload reading from
 * one). The chunks are copied: file bodies reuse their pooled buffers once a
 * write is acknowledged, and a stream acknowledges a write as soon as it has
 * queued it, long before its reader has the bytes.
 */
export function bodyReadable (body: Body): Readable {
  const out = new PassThrough({ highWaterMark: 1024 * 1024 })
  const sink = new Writable({
    highWaterMark: 1024 * 1024,
    write (chunk: Buffer, _enc, cb) {
      if (out.write(Buffer.from(chunk))) cb()
      else out.once('drain', () => cb())
    },
  })
  out.once('close', () => sink.destroy())
  body.writeTo(sink).then(() => out.end(), (err: unknown) => out.destroy(err as Error))
  return out
}
