// Quotas per hosted namespace: the bytes of the distinct blobs its
// repositories hold (a layer shared by ten repositories of the namespace
// counts once), plus their manifests. A push that would take the namespace
// past its quota is refused with 403 DENIED naming the usage and the limit,
// before anything of it is kept. Usage is computed from the links and
// remembered briefly; what this proxy admits meanwhile is added to it.
import type { Gauge } from 'prom-client'
import { Denied } from '../oci/errors.ts'
import { parseDigest, type Digest } from '../oci/reference.ts'
import type { RegionState } from '../state/region-state.ts'
import type { BlobStore } from '../store/blob-store.ts'
import type { Target, Targets } from './target.ts'
import { boundedCache } from '../common/bounded-cache.ts'

const REMEMBER_MS = 5_000

export class Quotas {
  private readonly targets: Targets
  private readonly state: RegionState
  private readonly store: BlobStore
  private readonly gauge: Gauge<'namespace'> | undefined
  private readonly known = new Map<string, { bytes: number, blobs: Set<string>, at: number }>()
  private readonly sizes = boundedCache<string, number>(100_000)

  constructor (opts: { targets: Targets, state: RegionState, store: BlobStore, gauge?: Gauge<'namespace'> }) {
    this.targets = opts.targets
    this.state = opts.state
    this.store = opts.store
    this.gauge = opts.gauge
  }

  /** The bytes a namespace's repositories hold, each blob once. */
  async usage (prefix: string): Promise<number> {
    return (await this.current(prefix)).bytes
  }

  /** A blob's size on the store (a digest's size never changes, so it is remembered). */
  private async sizeOf (digest: string): Promise<number> {
    const known = this.sizes.get(digest)
    if (known !== undefined) return known
    let size: number | undefined
    try { size = (await this.store.stat(parseDigest(digest)))?.size } catch { size = undefined }
    if (size !== undefined) this.sizes.set(digest, size)
    return size ?? 0
  }

  private async current (prefix: string): Promise<{ bytes: number, blobs: Set<string>, at: number }> {
    const known = this.known.get(prefix)
    if (known !== undefined && Date.now() - known.at < REMEMBER_MS) return known
    const blobs = new Set<string>()
    let bytes = 0
    for (const repo of await this.state.links.repositories()) {
      if (!repo.startsWith(prefix)) continue
      for (const l of await this.state.links.list(repo, 'blob')) {
        if (blobs.has(l.digest)) continue
        blobs.add(l.digest)
        bytes += await this.sizeOf(l.digest)
      }
      for (const l of await this.state.links.list(repo, 'manifest')) bytes += (await this.state.manifests.get(l.digest))?.size ?? 0
    }
    const now = { bytes, blobs, at: Date.now() }
    this.known.set(prefix, now)
    this.gauge?.set({ namespace: prefix }, bytes)
    return now
  }

  /** How many more bytes `target`'s namespace may take (Infinity without a quota). */
  async room (target: Target): Promise<number> {
    if (target.kind !== 'hosted' || target.namespace.quota === undefined) return Infinity
    return Math.max(0, target.namespace.quota - (await this.current(target.namespace.prefix)).bytes)
  }

  /**
   * May `target` take these blobs (`size` when the caller knows it, else
   * their stored size; nothing for a blob the namespace already holds) and
   * `manifestBytes` more? Throws DENIED when its namespace would pass its
   * quota; counts them when not.
   */
  async admit (target: Target, blobs: ReadonlyArray<{ digest: Digest, size?: number }>, manifestBytes = 0): Promise<void> {
    if (target.kind !== 'hosted' || target.namespace.quota === undefined) return
    const prefix = target.namespace.prefix
    const quota = target.namespace.quota
    const now = await this.current(prefix)
    let adding = manifestBytes
    const fresh: string[] = []
    for (const b of blobs) {
      if (now.blobs.has(b.digest.value)) continue
      fresh.push(b.digest.value)
      adding += b.size ?? await this.sizeOf(b.digest.value)
    }
    if (now.bytes + adding > quota) throw exceeded(prefix, quota, now.bytes, adding)
    now.bytes += adding
    for (const d of fresh) now.blobs.add(d)
    this.gauge?.set({ namespace: prefix }, now.bytes)
  }

  /** Forget what is remembered (after a delete or a collection). */
  forget (prefix?: string): void {
    if (prefix === undefined) this.known.clear(); else this.known.delete(prefix)
  }

  get namespaces (): readonly string[] { return this.targets.namespaces.map(n => n.prefix) }
}

/** DENIED, naming the namespace, what it holds, what the push would add and the quota. */
/** DENIED because a hosted namespace would pass its quota (the webhooks' quota.exceeded). */
export class QuotaExceeded extends Denied {
  readonly namespace: string
  readonly quota: number
  constructor (message: string, detail: { namespace: string, quota: number, [k: string]: unknown }) {
    super(message, detail)
    this.namespace = detail.namespace
    this.quota = detail.quota
  }
}

export function exceeded (namespace: string, quota: number, usage: number, adding: number): Denied {
  return new QuotaExceeded(`namespace ${namespace} would hold ${usage + adding} bytes, past its quota of ${quota} (it holds ${usage})`, { namespace, usage, adding, quota })
}

/** DENIED for an upload that grew past the room its namespace had left. */
export function uploadPastRoom (namespace: string, quota: number, room: number): Denied {
  return new QuotaExceeded(`namespace ${namespace} holds ${quota - room} bytes of its quota of ${quota}; this upload passed the ${room} bytes left`, { namespace, usage: quota - room, room, quota })
}
