// What the console shows of the content model: repositories (proxied and
// hosted), a repository's tags with what each points at, and one manifest
// with its layers, platforms and referrers. Read from the region's state and
// store only: browsing the console never asks an upstream anything. Which
// repositories a caller may see is decided by the caller's `visible`.
import { Semaphore } from '../common/concurrency.ts'
import type { RepositoryListing } from '../content/repository-listing.ts'
import type { ManifestStore } from '../cache/manifest-store.ts'
import type { Targets } from '../content/target.ts'
import { ManifestUnknown, NameUnknown } from '../oci/errors.ts'
import { parseManifest, type Descriptor } from '../oci/manifest.ts'
import { INDEX_TYPES } from '../oci/media-types.ts'
import { firstAfter } from '../oci/paging.ts'
import type { RegionState, TagEntry } from '../state/region-state.ts'
import type { Usage } from './usage.ts'

export interface RepositoryRow {
  readonly name: string
  readonly kind: 'proxied' | 'hosted'
  /** The upstream a proxied repository comes from. */
  readonly upstream: string | undefined
  readonly tags: number
}

export interface TagRow {
  readonly tag: string
  readonly digest: string
  readonly mediaType: string
  readonly size: number
  /** When the upstream last confirmed it, or when it was pushed. */
  readonly updatedAt: number
  readonly platforms: string[]
  readonly pulls: number
  readonly lastPulledAt: number | undefined
}

export interface ImageView {
  readonly repository: string
  readonly digest: string
  readonly mediaType: string
  readonly size: number
  readonly artifactType: string | undefined
  readonly config: Descriptor | undefined
  readonly layers: readonly Descriptor[]
  /** An index's manifests, with their platforms. */
  readonly manifests: readonly (Descriptor & { platformName: string | undefined })[]
  readonly referrers: readonly { digest: string, mediaType: string, artifactType: string | undefined, size: number }[]
  readonly annotations: Record<string, string> | undefined
  readonly tags: string[]
}

const MAX_PAGE = 500
// State reads one console answer makes at once, of the thread pool's 16 (a page of 50 repositories reads 50
// tag folders; a repository's tags page, one file per tag): 16 clients paging the repositories without pause
// otherwise kept the pool full ahead of fills' writes and warm pulls' reads (npm run bench -- --catalog-flood
// --path '/_ferry/api/v1/repositories?n=50')
const CONSOLE_READS = 8

export class ContentViews {
  private readonly state: RegionState
  private readonly listing: RepositoryListing
  private readonly manifests: ManifestStore
  private readonly targets: Targets
  private readonly usage: Usage
  private readonly reads = new Semaphore(CONSOLE_READS)

  constructor (opts: { state: RegionState, manifests: ManifestStore, targets: Targets, usage: Usage, listing: RepositoryListing }) {
    this.state = opts.state
    this.listing = opts.listing
    this.manifests = opts.manifests
    this.targets = opts.targets
    this.usage = opts.usage
  }

  /** Repositories whose name contains `query`, sorted, `n` after `last`; `next`: the `last` of the following page. */
  async repositories (visible: (repo: string) => boolean, query: { q: string | undefined, n: number, last: string | undefined }): Promise<{ repositories: RepositoryRow[], total: number, next: string | undefined }> {
    const q = query.q?.toLowerCase()
    // the listing is sorted, and a filter keeps its order
    const all = (await this.listing.all()).filter(r => visible(r) && (q === undefined || r.toLowerCase().includes(q)))
    const from = query.last === undefined ? 0 : firstAfter(all, query.last)
    const names = all.slice(from, from + Math.min(query.n, MAX_PAGE))
    const repositories = await Promise.all(names.map(async name => {
      const target = this.kindOf(name)
      return { name, kind: target.kind, upstream: target.upstream, tags: (await this.reads.run(() => this.state.tags.list(name))).length }
    }))
    const lastShown = names[names.length - 1]
    const next = lastShown !== undefined && all[all.length - 1] !== lastShown ? lastShown : undefined
    return { repositories, total: all.length, next }
  }

  private kindOf (name: string): { kind: 'proxied' | 'hosted', upstream: string | undefined } {
    try {
      const t = this.targets.resolve(name, undefined)
      return t.kind === 'proxied' ? { kind: 'proxied', upstream: t.route.upstream.name } : { kind: 'hosted', upstream: undefined }
    } catch {
      return { kind: 'hosted', upstream: undefined }
    }
  }

  /** Every tag of `repo`, newest mapping of each. */
  async tags (repo: string): Promise<TagRow[]> {
    const names = await this.state.tags.list(repo)
    // a repository with no tags is known when it holds anything (not by listing every repository)
    if (names.length === 0 && (await this.state.links.list(repo, 'manifest')).length === 0 && (await this.state.links.list(repo, 'blob')).length === 0) throw new NameUnknown(repo)
    const pulls = await this.usage.of(repo, names)
    const rows = await Promise.all(names.map(async tag => {
      const entries = await this.reads.run(() => this.state.tags.get(repo, tag))
      const newest = entries.reduce<TagEntry | undefined>((a, e) => a === undefined || e.fetchedAt > a.fetchedAt ? e : a, undefined)
      if (newest === undefined) return undefined
      const p = pulls.get(tag)
      return {
        tag,
        digest: newest.digest,
        mediaType: newest.mediaType,
        size: newest.size,
        updatedAt: newest.fetchedAt,
        platforms: await this.reads.run(() => this.platforms(newest.digest, newest.mediaType)),
        pulls: p?.count ?? 0,
        lastPulledAt: p?.last,
      }
    }))
    return rows.filter((r): r is TagRow => r !== undefined)
  }

  /** The platforms an index names ("linux/amd64"); for an image, its config's. */
  private async platforms (digest: string, mediaType: string): Promise<string[]> {
    if (!INDEX_TYPES.has(mediaType)) return []
    const m = await this.manifests.get(digest).catch(() => undefined)
    if (m === undefined) return []
    try {
      return parseManifest(m.body).manifests.map(d => platformName(d.platform)).filter((p): p is string => p !== undefined)
    } catch {
      return []
    }
  }

  private async referrers (repo: string, digest: string): Promise<ImageView['referrers'][number][]> {
    return await referrersOf(this.state, repo, digest)
  }

  /** One manifest of `repo` by digest or tag, if the repository holds it. */
  async image (repo: string, reference: string): Promise<ImageView> {
    let digest = reference
    if (!reference.includes(':')) {
      const entries = await this.state.tags.get(repo, reference)
      const newest = entries.reduce<TagEntry | undefined>((a, e) => a === undefined || e.fetchedAt > a.fetchedAt ? e : a, undefined)
      if (newest === undefined) throw new ManifestUnknown(reference)
      digest = newest.digest
    }
    if (await this.state.links.linked(repo, 'manifest', digest) === undefined) throw new ManifestUnknown(digest)
    const m = await this.manifests.get(digest)
    if (m === undefined) throw new ManifestUnknown(digest)
    const parsed = parseManifest(m.body)
    const referrers = await this.referrers(repo, digest)
    const tags: string[] = []
    for (const t of await this.state.tags.list(repo)) {
      if ((await this.state.tags.get(repo, t)).some(e => e.digest === digest)) tags.push(t)
      if (tags.length >= 50) break
    }
    return {
      repository: repo,
      digest,
      mediaType: m.mediaType,
      size: m.body.length,
      artifactType: parsed.artifactType,
      config: parsed.config,
      layers: parsed.layers,
      manifests: parsed.manifests.map(d => ({ ...d, platformName: platformName(d.platform) })),
      referrers,
      annotations: parsed.annotations,
      tags,
    }
  }
}

/** Held referrers of a pushed or replicated subject, and those of the upstream's last referrers answer (kept for a proxied one). */
async function referrersOf (state: RegionState, repo: string, digest: string): Promise<ImageView['referrers'][number][]> {
  const out = new Map<string, ImageView['referrers'][number]>()
  const kept = await state.lists.get(repo, `referrers|${digest}`).catch(() => undefined)
  if (kept !== undefined) {
    try {
      for (const d of parseManifest(Buffer.from(kept.body)).manifests) out.set(d.digest, { digest: d.digest, mediaType: d.mediaType, artifactType: d.artifactType, size: d.size })
    } catch { /* a kept answer that does not parse shows none */ }
  }
  for (const d of await state.links.referrers(repo, digest)) {
    if (out.has(d)) continue
    const r = await state.manifests.get(d)
    out.set(d, { digest: d, mediaType: r?.mediaType ?? '', artifactType: r?.artifactType, size: r?.size ?? 0 })
  }
  return [...out.values()]
}

function platformName (p: unknown): string | undefined {
  if (typeof p !== 'object' || p === null) return undefined
  const { os, architecture, variant } = p as { os?: unknown, architecture?: unknown, variant?: unknown }
  if (typeof os !== 'string' || typeof architecture !== 'string') return undefined
  return `${os}/${architecture}${typeof variant === 'string' ? `/${variant}` : ''}`
}
