// Reading a hosted repository: only what was pushed to it (or replicated or
// imported into it). Its tags never expire and are never asked of an
// upstream; a digest it does not hold is unknown here, whatever the region
// holds for other repositories.
import type { ManifestStore, Manifest } from '../cache/manifest-store.ts'
import { ANY_ACCEPT, pick } from '../cache/tag-entries.ts'
import type { ListResult } from '../cache/lists.ts'
import { ManifestUnknown } from '../oci/errors.ts'
import { OCI_INDEX } from '../oci/media-types.ts'
import type { Reference } from '../oci/reference.ts'
import type { RegionState } from '../state/region-state.ts'
import { page } from '../oci/paging.ts'

export class HostedReads {
  private readonly state: RegionState
  private readonly manifests: ManifestStore

  constructor (state: RegionState, manifests: ManifestStore) {
    this.state = state
    this.manifests = manifests
  }

  /** The manifest `reference` names in `repo`, by tag or by digest. */
  async manifest (repo: string, reference: Reference, accept: readonly string[]): Promise<Manifest> {
    let digest: string | undefined
    if (reference.kind === 'tag') {
      // a pushed tag names one manifest, whatever the client accepts (the client decides what it can use)
      const entries = await this.state.tags.get(repo, reference.tag)
      digest = (pick(entries, accept) ?? entries.find(e => e.accept[0] === ANY_ACCEPT) ?? entries[0])?.digest
    } else if (await this.state.links.linked(repo, 'manifest', reference.digest.value) !== undefined) {
      digest = reference.digest.value
    }
    const m = digest === undefined ? undefined : await this.manifests.get(digest)
    if (m === undefined) throw new ManifestUnknown(reference.kind === 'tag' ? reference.tag : reference.digest.value)
    return m
  }

  /** The repository's tags, paged with `n` and `last` (distribution-spec "Listing Tags"). */
  async tags (repo: string, query: { n?: number | undefined, last?: string | undefined }): Promise<ListResult> {
    const all = await this.state.tags.list(repo)
    const { items, link } = page(all, query, `/v2/${repo}/tags/list`)
    return { contentType: 'application/json', link, body: JSON.stringify({ name: repo, tags: items }), fetchedAt: Date.now(), stale: false }
  }

  /** The referrers API's index of what refers to `subject` in `repo`, filtered by artifact type. */
  async referrers (repo: string, subject: string, artifactType: string | undefined): Promise<ListResult> {
    const manifests: Record<string, unknown>[] = []
    for (const digest of await this.state.links.referrers(repo, subject)) {
      // a referrer deleted from the repository no longer counts
      if (await this.state.links.linked(repo, 'manifest', digest) === undefined) continue
      const r = await this.state.manifests.get(digest)
      if (r === undefined) continue
      if (artifactType !== undefined && r.artifactType !== artifactType) continue
      manifests.push({
        mediaType: r.mediaType, digest, size: r.size,
        ...(r.artifactType !== undefined ? { artifactType: r.artifactType } : {}),
        ...(r.annotations !== undefined ? { annotations: r.annotations } : {}),
      })
    }
    return {
      contentType: OCI_INDEX,
      link: undefined,
      body: JSON.stringify({ schemaVersion: 2, mediaType: OCI_INDEX, manifests }),
      fetchedAt: Date.now(),
      stale: false,
      ...(artifactType !== undefined ? { filtersApplied: 'artifactType' } : {}),
    }
  }
}

export { ANY_ACCEPT }
