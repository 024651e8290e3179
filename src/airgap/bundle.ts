// A bundle: an OCI image layout (oci-layout, blobs/sha256/<hex>, index.json)
// as one tar stream, optionally zstd-compressed, cut into parts of at most
// a given size (for media), with bundle.json beside them naming every part's
// size and sha256 and every image's manifests. A single uncompressed part is
// an ordinary OCI layout tar (`skopeo copy oci-archive:bundle.tar:NAME:TAG`).
import { createHash, type Hash } from 'node:crypto'
import { createReadStream } from 'node:fs'
import { open, rename, stat, type FileHandle } from 'node:fs/promises'
import { join } from 'node:path'
import { PassThrough, Writable, type Readable } from 'node:stream'
import { FileAppender } from '../io/file-appender.ts'

export const BUNDLE_FILE = 'bundle.json'
export const BUNDLE_FORMAT = 'ferry-bundle/1'

export interface BundlePart { readonly file: string, readonly size: number, readonly sha256: string }

export interface BundleImage {
  readonly name: string
  /** The tag or digest the list asked for. */
  readonly reference: string
  readonly digest: string
  readonly mediaType: string
  /** Children first, referrers after their subjects: the order an import puts them in. */
  readonly manifests: readonly { readonly digest: string, readonly mediaType: string }[]
}

export interface BundleManifest {
  readonly format: typeof BUNDLE_FORMAT
  readonly created: string
  readonly compression: 'none' | 'zstd'
  readonly parts: readonly BundlePart[]
  readonly images: readonly BundleImage[]
  /** Blobs and manifests in the tar (not those left out for --since). */
  readonly blobs: number
  readonly bytes: number
}

/** Received by a part writer and not yet written, at most. */
const UNWRITTEN_MAX = 8 * 1024 * 1024

export class BundleError extends Error {
  constructor (message: string) {
    super(message)
    this.name = 'BundleError'
  }
}

/** The name of the single part, or the base the numbered parts share. */
export function partBase (compression: 'none' | 'zstd'): string {
  return compression === 'zstd' ? 'bundle.tar.zst' : 'bundle.tar'
}

/**
 * Bytes in, parts out: `<base>.000`, `<base>.001`, ... of at most `partSize`
 * bytes each, hashed as written; a bundle that fits one part is renamed to
 * `<base>`. `parts` is complete once the stream has finished.
 */
export class PartWriter extends Writable {
  readonly parts: BundlePart[] = []
  private readonly dir: string
  private readonly base: string
  private readonly partSize: number
  private fh: FileHandle | undefined
  private appender: FileAppender | undefined
  private hash: Hash | undefined
  private written = 0

  constructor (dir: string, base: string, partSize: number) {
    super({ highWaterMark: 4 * 1024 * 1024 })
    this.dir = dir
    this.base = base
    this.partSize = partSize
  }

  private numbered (i: number): string { return `${this.base}.${String(i).padStart(3, '0')}` }

  override _write (chunk: Buffer, _enc: BufferEncoding, cb: (err?: Error | null) => void): void {
    this.put(chunk).then(() => cb(), cb)
  }

  private async put (chunk: Buffer): Promise<void> {
    while (chunk.length > 0) {
      if (this.fh === undefined) {
        this.fh = await open(join(this.dir, this.numbered(this.parts.length)), 'w')
        this.appender = new FileAppender(this.fh, 0)
        this.hash = createHash('sha256')
        this.written = 0
      }
      const take = chunk.subarray(0, this.partSize - this.written)
      // behind the stream: the tar's small pieces go to the disk in one writev per round
      if (!await this.appender!.write(take, UNWRITTEN_MAX)) throw this.appender!.error!
      this.hash!.update(take)
      this.written += take.length
      chunk = chunk.subarray(take.length)
      if (this.written === this.partSize) await this.closePart()
    }
  }

  private async closePart (): Promise<void> {
    if (this.fh === undefined) return
    await this.appender!.drained()
    const failed = this.appender!.error
    if (failed !== undefined) throw failed
    await this.fh.sync()
    await this.fh.close()
    this.fh = undefined
    this.appender = undefined
    this.parts.push({ file: this.numbered(this.parts.length), size: this.written, sha256: this.hash!.digest('hex') })
  }

  override _final (cb: (err?: Error | null) => void): void {
    (async () => {
      await this.closePart()
      if (this.parts.length === 1) {
        await rename(join(this.dir, this.parts[0]!.file), join(this.dir, this.base))
        this.parts[0] = { ...this.parts[0]!, file: this.base }
      }
    })().then(() => cb(), cb)
  }
}

/** Every part's size and sha256 against bundle.json, before a byte of the content is used. */
export async function verifyParts (dir: string, parts: readonly BundlePart[], onBytes?: (n: number) => void): Promise<void> {
  for (const part of parts) {
    const path = join(dir, part.file)
    const size = await stat(path).then(s => s.size, () => { throw new BundleError(`part ${part.file} is missing`) })
    if (size !== part.size) throw new BundleError(`part ${part.file} is ${size} bytes; bundle.json says ${part.size} (truncated or not this bundle's)`)
    const hash = createHash('sha256')
    for await (const chunk of createReadStream(path, { highWaterMark: 1024 * 1024 })) {
      hash.update(chunk as Buffer)
      onBytes?.((chunk as Buffer).length)
    }
    const actual = hash.digest('hex')
    if (actual !== part.sha256) throw new BundleError(`part ${part.file} has sha256 ${actual}; bundle.json says ${part.sha256}`)
  }
}

/** The parts, one after the other, as one stream. */
export function concatParts (dir: string, parts: readonly BundlePart[]): Readable {
  const out = new PassThrough({ highWaterMark: 1024 * 1024 })
  ;(async () => {
    for (const part of parts) {
      for await (const chunk of createReadStream(join(dir, part.file), { highWaterMark: 1024 * 1024 })) {
        if (!out.write(chunk)) await new Promise<void>(resolve => out.once('drain', resolve))
      }
    }
    out.end()
  })().catch((err: unknown) => out.destroy(err as Error))
  return out
}
