// Manifest bytes and media types as the region keeps them: the bytes in the
// blob store under their digest (content-addressed, so writing them twice is
// harmless), the media type in the region state, and the hot ones in memory.
import { randomBytes } from 'node:crypto'
import { writeFile } from 'node:fs/promises'
import { join } from 'node:path'
import { LRUCache } from 'lru-cache'
import { collect } from '../io/body.ts'
import { MAX_MANIFEST_BYTES } from '../oci/manifest.ts'
import { parseDigest, type Digest } from '../oci/reference.ts'
import type { BlobStore } from '../store/blob-store.ts'
import type { RegionState } from '../state/region-state.ts'

export interface Manifest {
  readonly digest: string
  readonly mediaType: string
  readonly body: Buffer
  /** Set when a stale tag mapping was served: the upstream failed, or its rate limit is nearly spent. */
  readonly stale?: 'upstream unavailable' | 'upstream rate limit nearly spent'
}

export class ManifestStore {
  private readonly store: BlobStore
  private readonly state: RegionState
  private readonly staging: string
  private readonly memory: LRUCache<string, { mediaType: string, body: Buffer }>

  /** Bytes of manifests held in memory. */
  get memoryBytes (): number { return this.memory.calculatedSize }

  constructor (opts: { store: BlobStore, state: RegionState, staging: string, memoryBytes: number }) {
    this.store = opts.store
    this.state = opts.state
    this.staging = opts.staging
    this.memory = new LRUCache({ maxSize: Math.max(1, opts.memoryBytes), sizeCalculation: v => v.body.length + 200 })
  }

  /** Kept in memory at once; `save` makes it durable. */
  remember (digest: string, mediaType: string, body: Buffer): void {
    this.memory.set(digest, { mediaType, body })
  }

  /** The bytes into the store, then the record (a reader that finds the record finds the bytes). */
  async save (digest: Digest, mediaType: string, body: Buffer, about: { subject?: string | undefined, artifactType?: string | undefined, annotations?: Readonly<Record<string, string>> | undefined } = {}): Promise<void> {
    this.remember(digest.value, mediaType, body)
    const tmp = join(this.staging, `m-${digest.hex.slice(0, 16)}-${randomBytes(6).toString('hex')}`)
    await writeFile(tmp, body)
    await this.store.commitFile(digest, tmp)
    await this.state.manifests.put(digest.value, { mediaType, size: body.length, ...about })
  }

  /** The manifest, if the region holds it. */
  async get (digest: string): Promise<Manifest | undefined> {
    const mem = this.memory.get(digest)
    if (mem !== undefined) return { digest, mediaType: mem.mediaType, body: mem.body }
    const mediaType = (await this.state.manifests.get(digest))?.mediaType
    if (mediaType === undefined) return undefined
    const blob = await this.store.open(parseDigest(digest))
    if (blob === undefined) return undefined
    const body = await collect(blob.body(), MAX_MANIFEST_BYTES)
    this.memory.set(digest, { mediaType, body })
    return { digest, mediaType, body }
  }

  async has (digest: string): Promise<boolean> {
    return this.memory.has(digest) || await this.get(digest) !== undefined
  }
}
