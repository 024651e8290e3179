// What a region knows besides blob bytes: which digest a tag pointed to and
// when that was learned, the media type of each cached manifest, and the last
// good answer of list endpoints, and the stream of blobs newly committed to
// the region's store (the replicator's input). Implementations:
// embedded-state.ts (one process, on disk) and redis-state.ts (every proxy
// of a region).

export interface TagEntry {
  /** The client Accept set this answer was fetched with (sorted media types). */
  readonly accept: readonly string[]
  readonly digest: string
  readonly mediaType: string
  readonly size: number
  /** When the upstream last confirmed this mapping (ms since epoch). */
  readonly fetchedAt: number
}

export interface ListAnswer {
  readonly contentType: string
  readonly link: string | undefined
  readonly body: string
  readonly fetchedAt: number
}

export interface TagKey { readonly upstream: string, readonly repo: string, readonly tag: string }

/** A blob that just landed in the region's store. */
export interface CommittedBlob {
  readonly digest: string
  readonly size: number
  /** ms since epoch */
  readonly at: number
}

export interface RegionState {
  getTag (key: TagKey): Promise<readonly TagEntry[]>
  putTag (key: TagKey, entries: readonly TagEntry[]): Promise<void>
  getManifestType (digest: string): Promise<string | undefined>
  putManifestType (digest: string, mediaType: string): Promise<void>
  getList (upstream: string, repo: string, key: string): Promise<ListAnswer | undefined>
  putList (upstream: string, repo: string, key: string, answer: ListAnswer): Promise<void>
  appendCommitted (blob: CommittedBlob): Promise<void>
  /** Entries after the id `after` ("0" for the start), oldest first. */
  readCommitted (after: string, count: number): Promise<{ id: string, blob: CommittedBlob }[]>
  close (): Promise<void>
}
