// What a region knows besides blob bytes: which digest a tag pointed to and
// when that was learned, the media type of each cached manifest, and the last
// good answer of list endpoints, the stream of what the region newly holds
// (the replicator's input) and where replication to each peer stands.
// Implementations:
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

/**
 * What the region's stream records, the replicator's input: a blob that
 * landed in the store, a manifest cached (by digest) under a repository, a
 * tag that now points at a manifest. `name` is the repository as clients of
 * any region name it (with the upstream's prefix, when it has one).
 */
export type RegionEvent =
  | { readonly kind: 'blob', readonly digest: string, readonly size: number, readonly at: number }
  | { readonly kind: 'manifest', readonly name: string, readonly digest: string, readonly mediaType: string, readonly at: number }
  | { readonly kind: 'tag', readonly name: string, readonly tag: string, readonly digest: string, readonly mediaType: string, readonly at: number }

export interface StoredEvent { readonly id: string, readonly event: RegionEvent }

/** An event a peer would not take after every retry, kept for an operator. */
export interface DeadLetter { readonly id: string, readonly event: RegionEvent, readonly error: string, readonly at: number }

/** A robot account: a named, non-human credential with a scope and maybe an expiry. Its secret is kept only as a bcrypt hash. */
export interface RobotRecord {
  readonly name: string
  readonly hash: string
  readonly scopes: readonly { readonly repositories: readonly string[], readonly role: 'reader' | 'writer' | 'admin' }[]
  readonly createdAt: number
  readonly expiresAt: number | undefined
  readonly revokedAt: number | undefined
}

export interface RegionState {
  getTag (key: TagKey): Promise<readonly TagEntry[]>
  putTag (key: TagKey, entries: readonly TagEntry[]): Promise<void>
  getManifestType (digest: string): Promise<string | undefined>
  putManifestType (digest: string, mediaType: string): Promise<void>
  getList (upstream: string, repo: string, key: string): Promise<ListAnswer | undefined>
  putList (upstream: string, repo: string, key: string, answer: ListAnswer): Promise<void>
  appendEvent (event: RegionEvent): Promise<void>
  /** Events after the id `after` ("0" for the start), oldest first. */
  readEvents (after: string, count: number): Promise<StoredEvent[]>
  /** How many events there are after `after`. */
  countEventsAfter (after: string): Promise<number>
  /** Where the replication to `peer` stands: the id of the last event it acknowledged ("0": none). */
  getCursor (peer: string): Promise<string>
  setCursor (peer: string, id: string): Promise<void>
  addDeadLetter (peer: string, letter: DeadLetter): Promise<void>
  deadLetters (peer: string): Promise<DeadLetter[]>
  removeDeadLetter (peer: string, id: string): Promise<void>
  robots (): Promise<RobotRecord[]>
  putRobots (robots: readonly RobotRecord[]): Promise<void>
  close (): Promise<void>
}
