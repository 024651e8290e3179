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

const REMEMBER_MS = 5_000

export class Quotas {
  private readonly targets: Targets
  private readonly state: RegionState
  private readonly store: BlobStore
  private readonly gauge: Gauge<'namespace'> | undefined
  private readonly known = new Map<string, { bytes: number, blobs: Set<string>, at: number }>()

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
        let size = 0
        try { size = (await this.store.stat(parseDigest(l.digest)))?.size ?? 0 } catch { size = 0 }
        bytes += size
      }
      for (const l of await this.state.links.list(repo, 'manifest')) bytes += (await this.state.manifests.get(l.digest))?.size ?? 0
    }
    const now = { bytes, blobs, at: Date.now() }
    this.known.set(prefix, now)
    this.gauge?.set({ namespace: prefix }, bytes)
    return now
  }

  /**
   * May `target` take these blobs (of `bytes` in all when they are new to
   * the store, else their stored sizes) and `extra` bytes more? Throws
   * DENIED when its namespace would pass its quota; counts them when not.
   */
  async admit (target: Target, digests: readonly Digest[], extra = 0): Promise<void> {
    if (target.kind !== 'hosted' || target.namespace.quota === undefined) return
    const prefix = target.namespace.prefix
    const quota = target.namespace.quota
    const now = await this.current(prefix)
    let adding = extra
    const fresh: string[] = []
    for (const d of digests) {
      if (now.blobs.has(d.value)) continue
      fresh.push(d.value)
      if (extra === 0) adding += (await this.store.stat(d))?.size ?? 0
    }
    if (now.bytes + adding > quota) {
      throw new Denied(`namespace ${prefix} would hold ${now.bytes + adding} bytes, past its quota of ${quota} (it holds ${now.bytes})`, { namespace: prefix, usage: now.bytes, adding, quota })
    }
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
