// Where one fill's bytes come from, asked again from the offset held each
// time the transfer breaks. In order: the region's store (when it is remote
// and may have landed the blob meanwhile); then the region lease decides
// whether this proxy fetches from outside the region (another region, then
// the upstream) or streams the fill another proxy leads. A follower whose
// leader dies keeps asking until the lease expires and it can lead itself.
import { setTimeout as sleep } from 'node:timers/promises'
import { EMPTY_BODY } from '../io/body.ts'
import { fromOffset } from '../oci/range.ts'
import type { Digest } from '../oci/reference.ts'
import type { Logger } from '../observe/logger.ts'
import type { Metrics } from '../observe/metrics.ts'
import type { Route } from '../upstream/router.ts'
import { FillError } from './errors.ts'
import type { Lease, RegionLeases } from './region-lease.ts'
import type { BlobSource, BlobSourceName, OpenedBlob } from './source.ts'
import type { RegionPeers } from './sources/region-peer.ts'
import type { StoreSource } from './sources/store.ts'

export interface FeedSources {
  /** The region's store, when it is not this proxy's own disk. */
  readonly store: StoreSource | undefined
  readonly leases: RegionLeases
  /** The region's other proxies (with shared state only). */
  readonly regionPeers: RegionPeers | undefined
  /** Other regions, asked before the upstream. */
  readonly peerRegions: BlobSource | undefined
  readonly upstream: BlobSource
  /** How long a follower keeps trying an unreachable leader before the lease expires and it may lead. */
  readonly takeoverMs: number
  readonly log: Logger
  readonly metrics: Metrics
}

/** The fill-source metric's label for each source (names kept stable for dashboards). */
const METRIC_LABEL: Partial<Record<BlobSourceName, string>> = { store: 'store', 'region-peer': 'peer', 'peer-region': 'region', upstream: 'upstream' }

export class FillFeed {
  /** The source of the bytes now arriving. */
  from: BlobSourceName | undefined
  /** The region's lease for this digest, once this proxy leads. */
  lease: Lease | undefined
  /** Bytes came from outside the region: this proxy puts the blob in the region's store. */
  newToRegion = false
  private readonly s: FeedSources
  private readonly digest: Digest
  private readonly route: Route
  /** The store was looked at just before the fill started. */
  private storeChecked: boolean
  /** A claim said "stored" and the store did not have it: the next claim leads regardless. */
  private storeMissedAfterMark = false
  private validator: string | undefined

  constructor (sources: FeedSources, digest: Digest, route: Route, storeChecked: boolean) {
    this.s = sources
    this.digest = digest
    this.route = route
    this.storeChecked = storeChecked
  }

  /** The label logs and metrics use for the current source. */
  get label (): string { return METRIC_LABEL[this.from ?? 'upstream'] ?? 'upstream' }

  private using (from: BlobSourceName, opened: OpenedBlob): OpenedBlob {
    this.from = from
    this.s.metrics.fillSources.inc({ source: this.label })
    return opened
  }

  async open (offset: number): Promise<OpenedBlob> {
    const want = { digest: this.digest, route: this.route, range: offset > 0 ? fromOffset(offset) : undefined }
    const deadline = Date.now() + this.s.takeoverMs
    for (let round = 0; ; round++) {
      if (!this.storeChecked && this.s.store !== undefined) {
        const got = await this.fromStore(offset)
        if (got !== undefined) return this.using('store', got)
      }
      this.storeChecked = false // from now on every attempt looks: the blob may land any moment
      if (this.lease === undefined) {
        const claim = await this.s.leases.acquire(this.digest.value, this.storeMissedAfterMark)
        if (claim.role === 'stored') {
          // the last fill put it in the store: read it there (or, if it is not there after all, lead)
          this.storeMissedAfterMark = true
          continue
        }
        if (claim.role === 'follower' && this.s.regionPeers !== undefined) {
          let wait = 250
          try {
            const got = await this.s.regionPeers.at(claim.peer).open(want)
            if (got !== undefined) return this.using('region-peer', got)
            wait = 50 // it answered: its fill has just ended
          } catch (err) {
            if (Date.now() > deadline) throw new FillError('FILL_SOURCE_FAILED', 'the proxy leading this fill is unreachable', { peer: claim.peer, cause: (err as Error).message })
            this.s.log.debug({ digest: this.digest.value, peer: claim.peer, err: (err as Error).message }, 'leading proxy unreachable; waiting for its lease to expire')
          }
          // the leader ended its fill (the store has the blob, or the next claim leads) or is gone
          if (round > 200) throw new FillError('FILL_SOURCE_FAILED', 'no proxy could lead this fill', { peer: claim.peer })
          await sleep(wait)
          continue
        }
        if (claim.role === 'leader') this.lease = claim.lease
      }
      if (this.s.peerRegions !== undefined && this.from !== 'upstream') {
        const got = await this.s.peerRegions.open(want)
        if (got !== undefined) {
          this.newToRegion = true
          return this.using('peer-region', got)
        }
      }
      this.newToRegion = true
      const got = await this.s.upstream.open({ ...want, validator: this.validator })
      if (got === undefined) throw new FillError('FILL_SOURCE_FAILED', 'the upstream has no answer')
      this.validator ??= got.validator
      return this.using('upstream', got)
    }
  }

  /** The store's copy from `offset`, if it has landed there. */
  private async fromStore (offset: number): Promise<OpenedBlob | undefined> {
    const store = this.s.store!
    if (offset === 0) return await store.open({ digest: this.digest })
    const info = await store.open({ digest: this.digest, sizeOnly: true })
    if (info === undefined) return undefined
    if (offset >= info.size!) return { size: info.size, start: offset, length: 0, body: EMPTY_BODY }
    return await store.open({ digest: this.digest, range: fromOffset(offset) })
  }
}
