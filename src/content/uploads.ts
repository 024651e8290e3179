// Blob uploads (the OCI push API). A session is a file under <data>/uploads
// that grows by PATCH at the offset the client states, with a file beside it
// naming the repository it was started for: a session is continued only
// through that repository's path. PUT ?digest= hashes the whole file and,
// only if it matches, hands it to the blob cache. The files are the state: a
// session survives a restart, and a pusher that lost its connection asks the
// offset and goes on from there.
import { createHash, randomUUID, type Hash } from 'node:crypto'
import { createReadStream } from 'node:fs'
import { mkdir, open, readdir, readFile, rm, stat, unlink, writeFile, type FileHandle } from 'node:fs/promises'
import { join } from 'node:path'
import type { Readable } from 'node:stream'
import { pipeline } from 'node:stream/promises'
import { BlobUploadInvalid, BlobUploadUnknown, DigestInvalid } from '../oci/errors.ts'
import type { Digest } from '../oci/reference.ts'
import { StoreError } from '../store/errors.ts'
import { boundedCache } from '../common/bounded-cache.ts'
import { FileAppender } from '../io/file-appender.ts'
import { arrived } from '../io/young-garbage.ts'

/** An upload grew past the most it may hold; the session is gone. */
export class UploadTooLarge extends Error {
  readonly max: number
  constructor (max: number) { super(`the upload passed ${max} bytes`); this.max = max }
}

/** Flush written bytes to disk in the background as an upload grows, so the fsync at completion finds little left to do. */
class Flusher {
  private readonly file: FileHandle
  private unflushed = 0
  private running: Promise<void> | undefined

  constructor (file: FileHandle) { this.file = file }

  wrote (bytes: number): void {
    this.unflushed += bytes
    if (this.unflushed < FLUSH_EVERY || this.running !== undefined) return
    this.unflushed = 0
    this.running = this.file.datasync().catch(() => {}).finally(() => { this.running = undefined })
  }

  async done (): Promise<void> { await this.running }
}

const FLUSH_EVERY = 32 * 1024 * 1024
/** Received and not yet written, at most: the request is read no faster than the disk takes it. */
const UNWRITTEN_MAX = 4 * 1024 * 1024
const SESSION = /^[0-9a-f-]{36}$/
/** Sessions untouched this long are removed (unless the region file says otherwise: gc.uploads). */
const STALE_MS = 24 * 3600_000

export class UploadSessions {
  private readonly root: string
  /** One writer per session at a time. */
  private readonly busy = new Set<string>()
  /** The sha256 of the bytes a session holds, kept as this process appends them (so completion need not read the file again). */
  private readonly live = boundedCache<string, { hash: Hash, offset: number }>(1000)

  constructor (root: string) { this.root = root }

  async init (idleMs = STALE_MS): Promise<void> {
    await mkdir(this.root, { recursive: true })
    await this.sweep(idleMs)
  }

  /** Remove the sessions nobody wrote to for `idleMs` (and their files); how many went. */
  async sweep (idleMs: number): Promise<number> {
    let removed = 0
    for (const name of await readdir(this.root).catch(() => [] as string[])) {
      const session = name.endsWith('.repo') ? name.slice(0, -5) : name
      if (this.busy.has(session)) continue
      const s = await stat(join(this.root, session)).catch(() => undefined)
      // a session's age is its data file's; a lone .repo file goes with it
      if (s === undefined ? name.endsWith('.repo') : Date.now() - s.mtimeMs > idleMs) {
        await rm(join(this.root, name), { force: true })
        this.live.delete(session)
        if (!name.endsWith('.repo')) removed++
      }
    }
    return removed
  }

  private path (session: string): string {
    if (!SESSION.test(session)) throw new BlobUploadUnknown(session)
    return join(this.root, session)
  }

  /** A new session for `repo`. */
  async start (repo: string): Promise<string> {
    const session = randomUUID()
    await writeFile(this.path(session), '')
    await writeFile(`${this.path(session)}.repo`, repo)
    return session
  }

  /** This process's disk holds the session (for whichever repository). */
  async holds (session: string): Promise<boolean> {
    if (!SESSION.test(session)) return false
    return await stat(this.path(session)).then(() => true, () => false)
  }

  /** The session exists and was started for `repo`; otherwise it is unknown here. */
  async check (session: string, repo: string): Promise<void> {
    let owner: string
    try {
      owner = await readFile(`${this.path(session)}.repo`, 'utf8')
    } catch {
      throw new BlobUploadUnknown(session)
    }
    if (owner !== repo) throw new BlobUploadUnknown(session)
  }

  /** Bytes held so far. */
  async offset (session: string): Promise<number> {
    try {
      return (await stat(this.path(session))).size
    } catch {
      throw new BlobUploadUnknown(session)
    }
  }

  /**
   * Append `body` at `start` (the offset the client says it is at; it must be
   * the offset held). Resolves with the new offset. A body cut short keeps
   * what arrived: the client asks the offset and resumes. One that would
   * grow past `max` bytes is dropped whole (UploadTooLarge).
   */
  async append (session: string, start: number | undefined, body: Readable, limit?: number, max = Infinity): Promise<number> {
    const path = this.path(session)
    if (this.busy.has(session)) throw new BlobUploadInvalid('another request is writing this upload', 409)
    this.busy.add(session)
    try {
      const held = await this.offset(session)
      if (start !== undefined && start !== held) {
        body.resume()
        throw new BlobUploadInvalid(`upload is at offset ${held}, not ${start}`, 416, { range: held > 0 ? `0-${held - 1}` : '0-0' })
      }
      let n = 0
      let over = false
      // the running hash goes on from where this process left it; otherwise (a restart, another worker) finish reads the file
      const live = held === 0 ? { hash: createHash('sha256'), offset: 0 } : this.live.get(session)
      const hashing = live !== undefined && live.offset === held ? live.hash : undefined
      this.live.delete(session)
      const handle = await open(path, 'r+')
      const file = new FileAppender(handle, held)
      const flusher = new Flusher(handle)
      try {
        // not pipeline(): past `max` the request must stay open (drained) for the refusal to reach the client
        for await (const chunk of body.iterator({ destroyOnReturn: false }) as AsyncIterable<Buffer>) {
          n += chunk.length
          if (held + n > max) { over = true; break }
          hashing?.update(chunk)
          arrived(chunk.length)
          if (!await file.write(chunk, UNWRITTEN_MAX)) break
          flusher.wrote(chunk.length)
        }
      } catch { /* cut short: what arrived is kept */ }
      await file.drained()
      await flusher.done()
      await handle.close()
      const failed = file.error
      if (failed !== undefined) {
        // this proxy's disk failed (full, most likely): what reached it is kept, the client is told
        body.resume()
        throw new StoreError('write the upload', failed)
      }
      if (over) {
        body.resume()
        await this.drop(session)
        throw new UploadTooLarge(max)
      }
      const now = await this.offset(session)
      // every byte hashed is on disk, and nothing else: the hash stands for the file
      if (hashing !== undefined && now === held + n) this.live.set(session, { hash: hashing, offset: now })
      if (limit !== undefined && n !== limit) throw new BlobUploadInvalid(`expected ${limit} bytes, received ${n}`)
      return now
    } finally {
      this.busy.delete(session)
    }
  }

  /**
   * The upload is complete: hash it. On a match, the file is handed to
   * `commit` (which consumes it); on a mismatch the session is dropped.
   */
  async finish (session: string, digest: Digest, commit: (path: string, size: number) => Promise<void>): Promise<number> {
    const path = this.path(session)
    const size = await this.offset(session)
    const live = this.live.get(session)
    this.live.delete(session)
    let actual: string
    if (live !== undefined && live.offset === size && digest.algorithm === 'sha256') {
      actual = live.hash.digest('hex')
    } else {
      const hash = createHash(digest.algorithm)
      await pipeline(createReadStream(path, { highWaterMark: 1024 * 1024 }), hash)
      actual = hash.digest('hex')
    }
    if (actual !== digest.hex) {
      await this.drop(session)
      throw new DigestInvalid(digest.value, `the uploaded bytes hash to ${digest.algorithm}:${actual}`)
    }
    // the pusher is told its blob is stored: it must survive a crash from here on
    const fh = await open(path, 'r')
    try { await fh.datasync() } finally { await fh.close() }
    await commit(path, size)
    await unlink(`${path}.repo`).catch(() => {})
    return size
  }

  async cancel (session: string): Promise<void> {
    await this.offset(session)
    await this.drop(session)
  }

  private async drop (session: string): Promise<void> {
    this.live.delete(session)
    await unlink(this.path(session)).catch(() => {})
    await unlink(`${this.path(session)}.repo`).catch(() => {})
  }
}
