// The region's content-addressed blob store (L2). Manifests live here too,
// under their digest. Implementations: fs-blob-store.ts (S3 and GCS follow,
// one file each).
import type { Body } from '../io/body.ts'
import type { Digest } from '../oci/reference.ts'
import type { ByteRange } from '../oci/range.ts'

export interface BlobInfo { readonly size: number }

export interface BlobRead {
  /** Bytes in the body (the range's length, or the blob's size). */
  readonly size: number
  /** The requested bytes; the caller must write or discard it. */
  readonly body: Body
}

export interface BlobStore {
  stat (digest: Digest): Promise<BlobInfo | undefined>
  /** undefined when the blob is absent. The range must lie inside the blob (check against stat first). */
  read (digest: Digest, range?: ByteRange): Promise<BlobRead | undefined>
  /**
   * Take a local file whose bytes are already verified to hash to `digest` and
   * make it the blob. The file is consumed (moved or uploaded, then removed).
   * Until this resolves, readers see the blob as absent; never half-written.
   */
  commitFile (digest: Digest, localPath: string): Promise<void>
  delete (digest: Digest): Promise<void>
  /** Every blob in the store, in no particular order. */
  list (): AsyncIterable<Digest>
}
