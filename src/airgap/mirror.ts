// ferry mirror: fill the region with what a mirror list names, through the
// command's own edge. Manifests first, then only the blobs the repository
// does not hold yet (a second run over unchanged content fetches no blob),
// an index's children filtered to the wanted platforms, referrers followed
// for every manifest kept (so each platform's signatures go too). A failing
// reference is reported and the rest go on.
import { inParallel } from '../common/concurrency.ts'
import { parseManifest } from '../oci/manifest.ts'
import { INDEX_TYPES } from '../oci/media-types.ts'
import type { LocalView } from '../serve.ts'
import type { EdgeClient } from './edge-client.ts'
import { platformWanted, selectTags, type MirrorImage, type MirrorList } from './mirror-list.ts'
import type { Progress } from './progress.ts'

export interface ReferenceReport {
  /** The tag or digest the list asked for. */
  readonly reference: string
  readonly digest: string
  readonly mediaType: string
  /** For an index: whether it is kept whole, or which platforms' manifests are. */
  readonly platforms?: { readonly whole: boolean, readonly kept: readonly string[] }
  /** Manifests kept for it (the top one, an index's children, referrers). */
  readonly manifests: number
  readonly blobs: number
  /** Bytes of its blobs, all of them. */
  readonly bytes: number
  /** Bytes fetched for it in this run (a dry run: that would be). */
  readonly fetched: number
  readonly referrers: readonly string[]
}

export interface Failure { readonly reference: string, readonly reason: string }

export interface ImageReport {
  readonly name: string
  readonly references: readonly ReferenceReport[]
  readonly failures: readonly Failure[]
}

export interface MirrorReport {
  readonly dryRun: boolean
  readonly images: readonly ImageReport[]
  readonly references: number
  readonly blobsFetched: number
  readonly bytesFetched: number
  readonly failures: number
  readonly ms: number
}

/** What a reference needs, for an export: its manifests children first (then referrers, after their subjects), and its blobs. */
export interface CollectedReference {
  readonly name: string
  readonly reference: string
  readonly digest: string
  readonly mediaType: string
  readonly manifests: readonly { readonly digest: string, readonly mediaType: string, readonly body: Buffer }[]
  readonly blobs: readonly { readonly digest: string, readonly size: number }[]
}

/** Blobs fetched at once. */
const BLOBS_AT_ONCE = 4
/** How often a blob's fill is asked how far it has come, for the progress bar. */
const PROGRESS_EVERY_MS = 200

export class Mirror {
  private readonly edge: EdgeClient
  private readonly view: LocalView
  private readonly progress: Progress
  private readonly dryRun: boolean
  private blobsFetched = 0
  private bytesFetched = 0
  /** Blobs already fetched (or counted, in a dry run) in this run: an image shares layers with others. */
  private readonly done = new Set<string>()

  private readonly collect: boolean
  /** Filled when constructed with `collect` (an export). */
  readonly collected: CollectedReference[] = []

  constructor (opts: { edge: EdgeClient, view: LocalView, progress: Progress, dryRun: boolean, collect?: boolean }) {
    this.edge = opts.edge
    this.view = opts.view
    this.progress = opts.progress
    this.dryRun = opts.dryRun
    this.collect = opts.collect === true
  }

  async run (list: MirrorList): Promise<MirrorReport> {
    const started = Date.now()
    const images: ImageReport[] = []
    this.progress.start(list.images.length)
    for (const image of list.images) {
      images.push(await this.image(image))
      this.progress.imageDone()
    }
    this.progress.stop()
    return {
      dryRun: this.dryRun,
      images,
      references: images.reduce((n, i) => n + i.references.length, 0),
      blobsFetched: this.blobsFetched,
      bytesFetched: this.bytesFetched,
      failures: images.reduce((n, i) => n + i.failures.length, 0),
      ms: Date.now() - started,
    }
  }

  private async image (image: MirrorImage): Promise<ImageReport> {
    const references: ReferenceReport[] = []
    const failures: Failure[] = []
    const repo = this.view.canonical(image.name)
    if (repo === undefined) return { name: image.name, references, failures: [{ reference: '*', reason: 'no upstream or hosted namespace of this region serves this name' }] }
    let wanted: string[] = [...image.digests]
    try {
      const available = image.tagPattern !== undefined || image.semver !== undefined ? await this.edge.tags(image.name) : []
      wanted = [...selectTags(image, available), ...image.digests]
    } catch (err) {
      failures.push({ reference: 'tags/list', reason: (err as Error).message })
      wanted = [...image.tags, ...image.digests]
    }
    for (const reference of wanted) {
      try {
        const r = await this.reference(image, repo, reference)
        references.push(r)
        this.progress.log({ image: image.name, reference, digest: r.digest, blobs: r.blobs, fetched: r.fetched }, this.dryRun ? 'would mirror' : 'mirrored')
      } catch (err) {
        failures.push({ reference, reason: (err as Error).message })
        this.progress.log({ image: image.name, reference, err: (err as Error).message }, 'not mirrored')
      }
    }
    return { name: image.name, references, failures }
  }

  private async reference (image: MirrorImage, repo: string, reference: string): Promise<ReferenceReport> {
    const top = await this.edge.manifest(image.name, reference)
    const tally = { manifests: 0, blobs: 0, bytes: 0, fetched: 0, referrers: [] as string[] }
    const seen = new Set<string>()
    const kept: { digest: string, mediaType: string, body: Buffer }[] = []
    const blobsOf = new Map<string, number>()
    let platforms: ReferenceReport['platforms']
    const visit = async (m: { digest: string, mediaType: string, body: Buffer }, isTop: boolean): Promise<void> => {
      if (seen.has(m.digest)) return
      seen.add(m.digest)
      tally.manifests++
      const parsed = parseManifest(m.body)
      if (INDEX_TYPES.has(parsed.mediaType ?? m.mediaType) || parsed.manifests.length > 0) {
        const children = parsed.manifests.filter(d => platformWanted(image.platforms, d.platform as { os?: string, architecture?: string, variant?: string } | undefined))
        if (isTop) {
          platforms = {
            whole: children.length === parsed.manifests.length,
            kept: children.map(d => platformName(d.platform) ?? d.digest),
          }
        }
        for (const child of children) await visit(await this.edge.manifest(image.name, child.digest), false)
      } else {
        const blobs = [...(parsed.config !== undefined ? [parsed.config] : []), ...parsed.layers]
        for (const b of blobs) blobsOf.set(b.digest, b.size)
        await inParallel(blobs, BLOBS_AT_ONCE, async b => {
          tally.blobs++
          tally.bytes += b.size
          if (this.done.has(`${repo}@${b.digest}`) || await this.view.holds(repo, 'blob', b.digest)) return
          this.done.add(`${repo}@${b.digest}`)
          if (this.dryRun) { tally.fetched += b.size; this.progress.planned(b.size); return }
          // the edge fills the region without sending the bytes here; the progress comes from the fill itself
          let shown = 0
          const show = (): void => {
            const received = this.view.filling(b.digest)
            if (received !== undefined && received > shown && received <= b.size) { this.progress.bytes(received - shown); shown = received }
          }
          const ticking = setInterval(show, PROGRESS_EVERY_MS)
          try {
            await this.edge.fill(image.name, b.digest, b.size)
          } finally {
            clearInterval(ticking)
          }
          this.progress.bytes(b.size - shown)
          tally.fetched += b.size
          this.blobsFetched++
          this.bytesFetched += b.size
        })
      }
      // after its children and blobs, before its referrers: the order an import puts them in
      kept.push(m)
      if (image.referrers) {
        for (const digest of await this.edge.referrers(image.name, m.digest)) {
          if (seen.has(digest)) continue
          tally.referrers.push(digest)
          await visit(await this.edge.manifest(image.name, digest), false)
        }
      }
    }
    await visit(top, true)
    if (this.dryRun) this.bytesFetched += tally.fetched
    if (this.collect) this.collected.push({ name: image.name, reference, digest: top.digest, mediaType: top.mediaType, manifests: kept, blobs: [...blobsOf].map(([digest, size]) => ({ digest, size })) })
    return { reference, digest: top.digest, mediaType: top.mediaType, ...(platforms !== undefined ? { platforms } : {}), manifests: tally.manifests, blobs: tally.blobs, bytes: tally.bytes, fetched: tally.fetched, referrers: tally.referrers }
  }
}

function platformName (p: unknown): string | undefined {
  if (typeof p !== 'object' || p === null) return undefined
  const { os, architecture, variant } = p as { os?: unknown, architecture?: unknown, variant?: unknown }
  if (typeof os !== 'string' || typeof architecture !== 'string') return undefined
  return typeof variant === 'string' ? `${os}/${architecture}/${variant}` : `${os}/${architecture}`
}
