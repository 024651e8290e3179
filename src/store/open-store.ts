// The region's blob store (L2) named by the region file.
import { mkdir } from 'node:fs/promises'
import type { StoreConfig } from '../config/schema.ts'
import type { BlobStore } from './blob-store.ts'
import { FsBlobStore } from './fs-blob-store.ts'
import { GcsBlobStore } from './gcs-blob-store.ts'
import { S3BlobStore } from './s3-blob-store.ts'

export async function openBlobStore (config: StoreConfig): Promise<BlobStore> {
  switch (config.type) {
    case 'fs':
      await mkdir(config.path, { recursive: true })
      return new FsBlobStore(config.path)
    case 's3':
      return new S3BlobStore(config)
    case 'gcs':
      return new GcsBlobStore(config)
  }
}
