// A blob store of this region as a source: this proxy's L1 disk, or the
// region's store (L2). What is there has verified; a hit counts for its
// recency, and the blob is kept from eviction until its body is written. A
// small blob read here is handed to memory, so its next hit costs no read.
import { collect, EMPTY_BODY, onceDone } from '../../io/body.ts'
import { resolveRange } from '../../oci/range.ts'
import type { BlobStore } from '../../store/blob-store.ts'
import type { CacheIndex } from '../../eviction/cache-index.ts'
import type { BlobSource, BlobWant, OpenedBlob } from '../source.ts'
import { openBuffer, SMALL_BLOB_BYTES, type MemorySource } from './memory.ts'

export class StoreSource<S extends BlobStore = BlobStore> implements BlobSource {
  readonly name: 'l1' | 'store'
  readonly store: S
  readonly index: CacheIndex
  private readonly memory: MemorySource | undefined

  constructor (name: 'l1' | 'store', store: S, index: CacheIndex, memory?: MemorySource) {
    this.name = name
    this.store = store
    this.index = index
    this.memory = memory
  }

  async open (want: BlobWant): Promise<OpenedBlob | undefined> {
    const digest = want.digest
    if (want.sizeOnly === true) {
      const info = await this.store.stat(digest)
      if (info === undefined) return undefined
      this.index.touch(digest.value)
      return { size: info.size, start: 0, length: info.size, body: EMPTY_BODY }
    }
    const unpin = this.index.pin(digest.value)
    let blob
    try {
      blob = await this.store.open(digest)
    } catch (err) {
      unpin()
      throw err
    }
    if (blob === undefined) { unpin(); return undefined }
    let range
    try {
      range = want.range === undefined ? undefined : resolveRange(want.range, blob.size)
    } catch (err) {
      blob.close(); unpin()
      throw err
    }
    this.index.touch(digest.value)
    if (this.memory !== undefined && blob.size <= SMALL_BLOB_BYTES) {
      const bytes = await collect(onceDone(blob.body(), unpin), SMALL_BLOB_BYTES)
      this.memory.keep(digest.value, bytes)
      return openBuffer(bytes, want)
    }
    const length = range === undefined ? blob.size : range.end - range.start + 1
    return { size: blob.size, start: range?.start ?? 0, length, body: onceDone(blob.body(range), unpin) }
  }
}
