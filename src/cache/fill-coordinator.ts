// Who fills a digest when several processes share one cache. In one process
// the BlobCache's own map is enough (LocalCoordinator says "lead" to every
// claim). With worker processes, the primary keeps the table: the first
// claim leads, later ones follow the leader's staging file. Redis-backed
// leases for several proxies of a region take the same shape.

export type Claim =
  | { readonly role: 'leader' }
  | {
    readonly role: 'follower'
    readonly path: string
    readonly size: number | undefined
    readonly written: number
    /** The leader has its staging file open. */
    readonly started: boolean
  }
  /** The fill finished while the claim travelled: the store has the blob (or the fill failed and a new claim may lead). */
  | { readonly role: 'retry' }

export interface FillUpdate {
  readonly size: number | undefined
  readonly written: number
  /** The digest verified: every written byte may be served (the store may not have it yet). */
  readonly verified?: boolean
  /** Set on the last update of a fill: committed to the store, or not. */
  readonly outcome?: 'verified' | 'failed'
}

export interface FillCoordinator {
  claim (digest: string, stagingPath: string): Promise<Claim>
  /** The leader reports progress; the coordinator may coalesce. */
  progress (digest: string, update: FillUpdate): void
  /** Follow a fill led elsewhere. */
  subscribe (digest: string, listener: (update: FillUpdate) => void): () => void
}

export class LocalCoordinator implements FillCoordinator {
  async claim (): Promise<Claim> { return { role: 'leader' } }
  progress (): void {}
  subscribe (): () => void { return () => {} }
}
