// What the read path tells the eviction policy. In one process that is the
// Eviction itself; with worker processes, a client that batches the calls to
// the primary, which owns the one index of the whole cache.
export interface CacheIndex {
  /** A hit: the blob becomes the most recently used. */
  touch (digest: string): void
  /** A blob was committed to the store. */
  added (digest: string, size: number): void
  /** Keep `digest` from eviction until the returned function is called. */
  pin (digest: string): () => void
  /** The disk is full: free about `bytes` now, oldest first, whatever the limit says. */
  makeRoom (bytes: number): void
}
