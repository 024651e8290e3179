// Garbage collection of hosted repositories, online: no downtime, no
// read-only mode. For each hosted repository, what its tags reach (the
// tagged manifests, an index's children, the referrers of anything kept,
// and the config and layers of all of them) stays; any other manifest or
// blob it holds whose link is older than the grace period is unlinked, and
// bytes no repository links any more leave the store if they were written
// before the grace period too. A push links again (now) everything its
// manifest names before the tag is written, and an unlink takes only a link
// still older than the grace period (atomic in Redis), so nothing an upload
// or a manifest PUT in flight is about to reference goes. Cached (proxied)
// content is left to eviction.
import { parseManifest } from '../oci/manifest.ts'
import { parseDigest } from '../oci/reference.ts'
import type { Logger } from '../observe/logger.ts'
import type { LinkKind, RegionState } from '../state/region-state.ts'
import type { BlobStore } from '../store/blob-store.ts'
import type { ManifestStore } from '../cache/manifest-store.ts'

export interface Removal { readonly repository: string, readonly kind: LinkKind, readonly digest: string }
export interface Deletion { readonly kind: LinkKind, readonly digest: string, readonly bytes: number }

export interface GcReport {
  readonly repositories: number
  /** Links taken from repositories: what they no longer hold. */
  readonly unlinked: readonly Removal[]
  /** Bytes that left the store: nothing holds them any more. */
  readonly deleted: readonly Deletion[]
  readonly bytes: number
  readonly dryRun: boolean
  readonly ms: number
}

export interface GcMetrics {
  run (report: GcReport): void
}

export class Collector {
  private readonly state: RegionState
  private readonly store: BlobStore
  private readonly manifests: ManifestStore
  private readonly hosted: readonly string[]
  private readonly graceMs: number
  private readonly log: Logger
  private readonly metrics: GcMetrics | undefined

  constructor (opts: { state: RegionState, store: BlobStore, manifests: ManifestStore, hostedPrefixes: readonly string[], graceMs: number, log: Logger, metrics?: GcMetrics }) {
    this.state = opts.state
    this.store = opts.store
    this.manifests = opts.manifests
    this.hosted = opts.hostedPrefixes
    this.graceMs = opts.graceMs
    this.log = opts.log
    this.metrics = opts.metrics
  }

  async run (dryRun = false): Promise<GcReport> {
    const started = Date.now()
    const cutoff = started - this.graceMs
    const repositories = (await this.state.links.repositories()).filter(r => this.hosted.some(p => r.startsWith(p)))
    const unlinked: Removal[] = []
    for (const repo of repositories) unlinked.push(...await this.collect(repo, cutoff, dryRun))
    // what no repository holds any more may leave the store
    const candidates = new Map<string, LinkKind>()
    for (const u of unlinked) candidates.set(u.digest, u.kind)
    const stillHeld = await this.heldAnywhere(new Set(candidates.keys()), dryRun ? unlinked : [])
    const deleted: Deletion[] = []
    for (const [digest, kind] of candidates) {
      if (stillHeld.has(digest)) continue
      const d = parseDigest(digest)
      const info = await this.store.stat(d)
      if (info === undefined) continue
      // written again within the grace period (pushed or fetched anew): it stays
      if (info.modifiedAt >= cutoff) continue
      if (!dryRun) {
        // one last look: a mount or push that linked it since the scan keeps it
        if ((await this.heldAnywhere(new Set([digest]), [])).has(digest)) continue
        await this.store.delete(d)
        if (kind === 'manifest') await this.state.manifests.remove(digest)
      }
      deleted.push({ kind, digest, bytes: info.size })
    }
    const report: GcReport = { repositories: repositories.length, unlinked, deleted, bytes: deleted.reduce((n, d) => n + d.bytes, 0), dryRun, ms: Date.now() - started }
    if (!dryRun) this.metrics?.run(report)
    this.log.info({ repositories: report.repositories, unlinked: unlinked.length, deleted: deleted.length, bytes: report.bytes, dryRun, ms: report.ms }, 'garbage collected')
    return report
  }

  /** One repository: unlink what its tags do not reach and is older than the grace period. */
  private async collect (repo: string, cutoff: number, dryRun: boolean): Promise<Removal[]> {
    const keep = await this.reachable(repo)
    const out: Removal[] = []
    for (const kind of ['manifest', 'blob'] as const) {
      for (const link of await this.state.links.list(repo, kind)) {
        if (keep.has(link.digest) || link.at >= cutoff) continue
        const gone = dryRun || await this.state.links.unlinkIfOlder(repo, kind, link.digest, cutoff)
        if (!gone) continue
        if (!dryRun && kind === 'manifest') {
          const record = await this.state.manifests.get(link.digest)
          if (record?.subject !== undefined) await this.state.links.removeReferrer(repo, record.subject, link.digest)
        }
        out.push({ repository: repo, kind, digest: link.digest })
      }
    }
    return out
  }

  /** The digests a repository's tags reach: manifests, children of indexes, referrers, and their blobs. */
  private async reachable (repo: string): Promise<Set<string>> {
    const keep = new Set<string>()
    const queue: string[] = []
    for (const tag of await this.state.tags.list(repo)) {
      for (const e of await this.state.tags.get(repo, tag)) queue.push(e.digest)
    }
    while (queue.length > 0) {
      const digest = queue.pop()!
      if (keep.has(digest)) continue
      keep.add(digest)
      for (const r of await this.state.links.referrers(repo, digest)) queue.push(r)
      const m = await this.manifests.get(digest)
      if (m === undefined) continue
      let parsed
      try { parsed = parseManifest(m.body) } catch { continue }
      if (parsed.config !== undefined) keep.add(parsed.config.digest)
      for (const l of parsed.layers) keep.add(l.digest)
      for (const c of parsed.manifests) queue.push(c.digest)
    }
    return keep
  }

  /** Which of `digests` some repository (hosted or proxied) still holds; `without`: links a dry run would have taken. */
  private async heldAnywhere (digests: ReadonlySet<string>, without: readonly Removal[]): Promise<Set<string>> {
    const held = new Set<string>()
    if (digests.size === 0) return held
    const taken = new Set(without.map(w => `${w.repository}\n${w.digest}`))
    for (const repo of await this.state.links.repositories()) {
      for (const kind of ['blob', 'manifest'] as const) {
        for (const link of await this.state.links.list(repo, kind)) {
          if (digests.has(link.digest) && !taken.has(`${repo}\n${link.digest}`)) held.add(link.digest)
        }
      }
    }
    return held
  }
}
