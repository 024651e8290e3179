// The region's blob store (L2) named by the region file. The S3 and GCS
// clients are loaded only when used: together they weigh tens of MB that a
// filesystem cache should not carry.
import { mkdir } from 'node:fs/promises'
import type { StoreConfig } from '../config/region-config.ts'
import type { BlobStore } from './blob-store.ts'
import { FsBlobStore } from './fs-blob-store.ts'

export async function openBlobStore (config: StoreConfig): Promise<BlobStore> {
  switch (config.type) {
    case 'fs':
      await mkdir(config.path, { recursive: true })
      return new FsBlobStore(config.path)
    case 's3': {
      const { S3BlobStore } = await import('./s3-blob-store.ts')
      return new S3BlobStore(config)
    }
    case 'gcs': {
      const { GcsBlobStore } = await import('./gcs-blob-store.ts')
      return new GcsBlobStore(config)
    }
  }
}
