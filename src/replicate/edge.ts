// This region's own edge, as the replicator asks it for what the region
// should hold but does not (yet): a GET through the edge fills the region's
// store like any client's pull.
import { setTimeout as sleep } from 'node:timers/promises'
import { ALL_MANIFEST_TYPES } from '../oci/media-types.ts'
import type { Digest } from '../oci/reference.ts'
import { RegistryClient } from '../registry-client/client.ts'
import { createDispatcher } from '../registry-client/dispatcher.ts'
import type { BlobStore } from '../store/blob-store.ts'
import { PushError } from './push-client.ts'

export class Edge {
  private readonly client: RegistryClient
  private readonly store: BlobStore

  constructor (url: string, store: BlobStore) {
    this.client = new RegistryClient({
      name: 'this region\'s edge',
      origin: new URL(url).origin,
      dispatcher: createDispatcher({ connectTimeoutMs: 5000, headersTimeoutMs: 120_000, bodyTimeoutMs: 120_000 }),
      headers: { 'user-agent': 'ferry-replicator' },
    })
    this.store = store
  }

  /** GET it through the edge (which fills the region's store), discarding the bytes. */
  async fetch (name: string, kind: 'blobs' | 'manifests', digest: string): Promise<void> {
    let res
    try {
      res = await this.client.request({ method: 'GET', path: `/v2/${name}/${kind}/${digest}`, resource: kind === 'blobs' ? 'blob' : 'manifest', headers: { accept: ALL_MANIFEST_TYPES.join(', ') } })
    } catch (err) {
      throw new PushError(`this region's edge is unreachable: ${(err as Error).message}`, true)
    }
    await res.body.dump({ limit: Number.MAX_SAFE_INTEGER })
    if (res.status !== 200) throw new PushError(`this region's edge answered ${res.status} for ${kind}/${digest}`, res.status >= 500 || res.status === 429)
  }

  /** Wait until a blob the edge just served is committed to the store (that follows the last byte). */
  async landed (digest: Digest): Promise<{ size: number }> {
    for (let i = 0; i < 600; i++) {
      const info = await this.store.stat(digest)
      if (info !== undefined) return info
      await sleep(100)
    }
    throw new PushError(`blob ${digest.value} did not land in this region's store`, false)
  }

  async close (): Promise<void> { await this.client.close() }
}
