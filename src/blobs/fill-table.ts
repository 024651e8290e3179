// Which process of this proxy fills a digest, when several worker processes
// share one cache: the fill table. In one process the BlobCache's own map is
// enough (LocalFillTable says "lead" to every claim). With workers, the
// primary keeps the table (cluster/primary.ts): the first claim leads, later
// ones follow the leader's staging file. Among the proxies of a region, the
// region lease (region-lease.ts) decides the same question for the region.

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

export interface FillTable {
  claim (digest: string, stagingPath: string): Promise<Claim>
  /** The leader reports progress; the table may coalesce reports. */
  progress (digest: string, update: FillUpdate): void
  /** Follow a fill led elsewhere. */
  subscribe (digest: string, listener: (update: FillUpdate) => void): () => void
}

export class LocalFillTable implements FillTable {
  async claim (): Promise<Claim> { return { role: 'leader' } }
  progress (): void {}
  subscribe (): () => void { return () => {} }
}
