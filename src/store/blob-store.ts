// The region's content-addressed blob store (L2). Manifests live here too,
// under their digest. Implementations: fs-blob-store.ts, s3-blob-store.ts,
// gcs-blob-store.ts; open-store.ts picks one from the region file.
import type { Body } from '../io/body.ts'
import type { Digest } from '../oci/reference.ts'
import type { ByteRange } from '../oci/range.ts'

export interface BlobInfo {
  readonly size: number
  /** When the blob was last written (ms since epoch): garbage collection spares a blob written within its grace period. */
  readonly modifiedAt: number
}

/** An open blob: its size, then one body of it, whole or a range. */
export interface OpenBlob {
  readonly size: number
  /** The bytes of `range` (inclusive, inside the blob) or all of them; the caller must write or discard it. */
  body (range?: ByteRange): Body
  /** Let go without taking a body. */
  close (): void
}

export interface BlobStore {
  stat (digest: Digest): Promise<BlobInfo | undefined>
  /** undefined when the blob is absent. */
  open (digest: Digest): Promise<OpenBlob | undefined>
  /**
   * Take a local file whose bytes are already verified to hash to `digest` and
   * make it the blob. The file is consumed (moved or uploaded, then removed).
   * Until this resolves, readers see the blob as absent; never half-written.
   */
  commitFile (digest: Digest, localPath: string): Promise<void>
  /** As commitFile, but the local file stays (it is another tier's copy). */
  putFile (digest: Digest, localPath: string): Promise<void>
  delete (digest: Digest): Promise<void>
  /** Every blob in the store, in no particular order. */
  list (): AsyncIterable<Digest>
  /** Whether the store can be used at all (the bucket exists, the credentials work, the folder is writable); throws a StoreError naming the cause. */
  probe (): Promise<void>
  /** Let go of connections. */
  close? (): void
}
