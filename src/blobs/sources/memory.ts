// Small blobs (configs, small layers) kept in memory, so a hit costs no disk
// read. Filled by the cache from fills and tier hits; bounded by bytes.
import { LRUCache } from 'lru-cache'
import { bufferBody, EMPTY_BODY } from '../../io/body.ts'
import { resolveRange } from '../../oci/range.ts'
import type { BlobSource, BlobWant, OpenedBlob } from '../source.ts'

/** Blobs up to this size are kept in memory once read. */
export const SMALL_BLOB_BYTES = 256 * 1024

export class MemorySource implements BlobSource {
  readonly name = 'memory'
  private readonly blobs: LRUCache<string, Buffer>

  constructor (maxBytes: number) {
    this.blobs = new LRUCache({ maxSize: Math.max(SMALL_BLOB_BYTES, maxBytes), sizeCalculation: b => b.length + 100 })
  }

  async open (want: BlobWant): Promise<OpenedBlob | undefined> {
    return this.peek(want)
  }

  /** The same, without a turn of the event loop: the warm path's most frequent answer. */
  peek (want: BlobWant): OpenedBlob | undefined {
    const bytes = this.blobs.get(want.digest.value)
    return bytes === undefined ? undefined : openBuffer(bytes, want)
  }

  has (digest: string): boolean { return this.blobs.has(digest) }

  /** Bytes held (each blob counted with its entry's overhead). */
  get bytes (): number { return this.blobs.calculatedSize }

  /** Keep a verified small blob. */
  keep (digest: string, bytes: Buffer): void {
    if (bytes.length <= SMALL_BLOB_BYTES) this.blobs.set(digest, bytes)
  }
}

/** A blob held whole in memory, as the part wanted. */
export function openBuffer (bytes: Buffer, want: BlobWant): OpenedBlob {
  if (want.sizeOnly === true) return { size: bytes.length, start: 0, length: bytes.length, body: EMPTY_BODY }
  const range = want.range === undefined ? undefined : resolveRange(want.range, bytes.length)
  const part = range === undefined ? bytes : bytes.subarray(range.start, range.end + 1)
  return { size: bytes.length, start: range?.start ?? 0, length: part.length, body: bufferBody(part) }
}
