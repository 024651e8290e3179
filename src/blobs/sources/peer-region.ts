// The other regions as a source, before the upstream: cheaper than the
// upstream, and there when the upstream is not. They are asked for the
// repository by the name every region knows it by.
import { arrivingBody } from '../../io/body.ts'
import type { Logger } from '../../observe/logger.ts'
import type { PeerRegions } from '../../upstream/peer-regions.ts'
import { canonicalName } from '../../upstream/router.ts'
import type { BlobSource, BlobWant, OpenedBlob } from '../source.ts'

export class PeerRegionSource implements BlobSource {
  readonly name = 'peer-region'
  private readonly regions: PeerRegions
  private readonly log: Logger

  constructor (regions: PeerRegions, log: Logger) {
    this.regions = regions
    this.log = log
  }

  async open (want: BlobWant): Promise<OpenedBlob | undefined> {
    if (want.route === undefined || want.sizeOnly === true) return undefined
    const offset = want.range?.kind === 'from' ? want.range.start : 0
    const got = await this.regions.blob(canonicalName(want.route), want.digest.value, offset)
    if (got === undefined) return undefined
    this.log.info({ digest: want.digest.value, peer: got.peer, offset }, 'blob from a peer region')
    return { size: got.size, start: got.start, length: got.size === undefined ? undefined : got.size - got.start, body: arrivingBody(got.response.body) }
  }
}
