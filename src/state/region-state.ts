// What a region knows besides blob bytes, split by what it holds, each part
// behind its own interface with an embedded implementation (files under
// <data>/state, one machine) and a Redis one (every proxy of a region):
//   tags       a repository's tags, one entry per Accept set they were fetched with
//   manifests  each manifest's media type and size, and what it is a referrer of
//   links      which blobs and manifests each repository holds
//   lists      the last good tags list or referrers answer of an upstream
//   events     the stream of what the region newly holds (the replicator's
//              input), each peer's cursor in it, and its dead letters
//   robots     robot accounts
// Repositories are named as clients name them everywhere:
// `<upstream prefix>/<path at the upstream>`, or a hosted name.

export interface TagEntry {
  /** The client Accept set this answer was fetched with (sorted media types); `['*']` for a pushed tag. */
  readonly accept: readonly string[]
  readonly digest: string
  readonly mediaType: string
  readonly size: number
  /** When the upstream last confirmed this mapping, or when it was pushed (ms since epoch). */
  readonly fetchedAt: number
}

export interface Tags {
  /** The tag's entries; none when the repository has no such tag. */
  get (repo: string, tag: string): Promise<readonly TagEntry[]>
  /**
   * Add the entry, replacing the one of the same Accept set, keeping the
   * eight newest: atomic, so two proxies writing one tag keep both entries.
   * `kept`: a hosted tag, which never expires.
   */
  put (repo: string, tag: string, entry: TagEntry, kept?: boolean): Promise<void>
  /** Forget the entry of one Accept set (the upstream no longer has the tag). */
  drop (repo: string, tag: string, accept: readonly string[]): Promise<void>
  /** Remove the tag whole; false when there was none. */
  remove (repo: string, tag: string): Promise<boolean>
  /** The repository's tags, sorted. */
  list (repo: string): Promise<string[]>
}

export interface ManifestRecord {
  readonly mediaType: string
  /** Bytes; 0 when not recorded (a record from before sizes were kept). */
  readonly size: number
  /** The manifest it refers to (OCI 1.1 `subject`), for the referrers API. */
  readonly subject?: string | undefined
  readonly artifactType?: string | undefined
  readonly annotations?: Readonly<Record<string, string>> | undefined
}

export interface Manifests {
  get (digest: string): Promise<ManifestRecord | undefined>
  put (digest: string, record: ManifestRecord): Promise<void>
  remove (digest: string): Promise<void>
}

export type LinkKind = 'blob' | 'manifest'

export interface Link { readonly digest: string, readonly at: number }

export interface Links {
  /** When `repo` got `digest` (ms since epoch), or undefined when it does not hold it. */
  linked (repo: string, kind: LinkKind, digest: string): Promise<number | undefined>
  /** `repo` holds `digest` as of now (a second link refreshes the time). */
  link (repo: string, kind: LinkKind, digest: string): Promise<void>
  /** `repo` no longer holds `digest`; false when it did not. */
  unlink (repo: string, kind: LinkKind, digest: string): Promise<boolean>
  /** Unlink only a link made before `before` (garbage collection: a push that linked it again meanwhile keeps it); false when none was. */
  unlinkIfOlder (repo: string, kind: LinkKind, digest: string, before: number): Promise<boolean>
  list (repo: string, kind: LinkKind): Promise<Link[]>
  /** Every repository that holds anything. */
  repositories (): Promise<string[]>
  /**
   * Where listing the repositories is costly (the embedded state walks a folder per repository):
   * a count that grows when this process may have added a repository, so a listing can be kept
   * while it stands still. Other processes' additions it does not see.
   */
  repositoryChanges? (): number
  /** `digest`, a manifest of `repo`, refers to `subject`. */
  addReferrer (repo: string, subject: string, digest: string): Promise<void>
  removeReferrer (repo: string, subject: string, digest: string): Promise<void>
  /** The manifests of `repo` that refer to `subject`. */
  referrers (repo: string, subject: string): Promise<string[]>
}

export interface ListAnswer {
  readonly contentType: string
  readonly link: string | undefined
  readonly body: string
  readonly fetchedAt: number
}

export interface ListAnswers {
  get (repo: string, key: string): Promise<ListAnswer | undefined>
  put (repo: string, key: string, answer: ListAnswer): Promise<void>
}

/**
 * What the region's stream records, the replicator's input: a blob that
 * landed in the store, a manifest cached or pushed (by digest) under a
 * repository, a tag that now points at a manifest, and deletes.
 */
export type RegionEvent =
  | { readonly kind: 'blob', readonly digest: string, readonly size: number, readonly at: number }
  | { readonly kind: 'manifest', readonly name: string, readonly digest: string, readonly mediaType: string, readonly at: number }
  | { readonly kind: 'tag', readonly name: string, readonly tag: string, readonly digest: string, readonly mediaType: string, readonly at: number }
  | { readonly kind: 'tag-deleted', readonly name: string, readonly tag: string, readonly at: number }
  | { readonly kind: 'manifest-deleted', readonly name: string, readonly digest: string, readonly at: number }

export interface StoredEvent { readonly id: string, readonly event: RegionEvent }

/** An event a peer would not take after every retry, kept for an operator. */
export interface DeadLetter { readonly id: string, readonly event: RegionEvent, readonly error: string, readonly at: number }

export interface EventLog {
  append (event: RegionEvent): Promise<void>
  /** Events after the id `after` ("0" for the start), oldest first. */
  read (after: string, count: number): Promise<StoredEvent[]>
  /** How many events there are after `after`. */
  countAfter (after: string): Promise<number>
  /** Where the replication to `peer` stands: the id of the last event it acknowledged ("0": none). */
  cursor (peer: string): Promise<string>
  setCursor (peer: string, id: string): Promise<void>
  addDeadLetter (peer: string, letter: DeadLetter): Promise<void>
  deadLetters (peer: string): Promise<DeadLetter[]>
  removeDeadLetter (peer: string, id: string): Promise<void>
  /**
   * Drop what lies before the lowest of `cursors` (every peer has passed
   * it). Reads from an earlier position start at what is kept. Resolves
   * with whether anything was dropped.
   */
  compact (cursors: readonly string[]): Promise<boolean>
}

/** A robot account: a named, non-human credential with a scope and maybe an expiry. Its secret is kept only as a bcrypt hash. */
export interface RobotRecord {
  readonly name: string
  readonly hash: string
  readonly scopes: readonly { readonly repositories: readonly string[], readonly role: 'reader' | 'writer' | 'admin' }[]
  readonly createdAt: number
  readonly expiresAt: number | undefined
  readonly revokedAt: number | undefined
}

export interface Robots {
  list (): Promise<RobotRecord[]>
  replace (robots: readonly RobotRecord[]): Promise<void>
}

export interface RegionState {
  readonly tags: Tags
  readonly manifests: Manifests
  readonly links: Links
  readonly lists: ListAnswers
  readonly events: EventLog
  readonly robots: Robots
  close (): Promise<void>
}
