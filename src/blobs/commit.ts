// A verified staging file becomes the blob: into this proxy's disk (L1) and
// the region's store, or the store alone when it is this proxy's disk. A
// blob new to the region (from outside it) is uploaded to the store and
// recorded in the region's stream; one that came from within (the store, or
// the proxy that leads and stores it) is not stored twice.
import type { Digest } from '../oci/reference.ts'
import type { FsBlobStore } from '../store/fs-blob-store.ts'
import type { StoreSource } from './sources/store.ts'

export interface Committer {
  commit (digest: Digest, path: string, size: number, opts: { newToRegion: boolean, record: boolean }): Promise<void>
}

export function committer (region: StoreSource, l1: StoreSource<FsBlobStore> | undefined, onCommitted: (digest: string, size: number) => void): Committer {
  return {
    async commit (digest, path, size, { newToRegion, record }) {
      if (l1 === undefined) {
        await region.store.commitFile(digest, path)
        region.index.added(digest.value, size)
        if (record) onCommitted(digest.value, size)
        return
      }
      const unpin = l1.index.pin(digest.value)
      try {
        await l1.store.commitFile(digest, path)
        l1.index.added(digest.value, size)
        if (newToRegion) {
          await region.store.putFile(digest, l1.store.path(digest))
          region.index.added(digest.value, size)
          if (record) onCommitted(digest.value, size)
        }
      } finally {
        unpin()
      }
    },
  }
}
