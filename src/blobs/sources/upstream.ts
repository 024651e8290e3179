// The upstream registry as a source: the last word on whether a blob exists
// (its 404 is the client's), and the only source that costs the region's
// pull budget. A resume asks from the offset held, guarded by the validator
// of the first answer.
import { arrivingBody, EMPTY_BODY } from '../../io/body.ts'
import type { BlobSource, BlobWant, OpenedBlob } from '../source.ts'

export class UpstreamSource implements BlobSource {
  readonly name = 'upstream'

  async open (want: BlobWant): Promise<OpenedBlob> {
    const route = want.route
    if (route === undefined) throw new Error('the upstream source needs a route')
    if (want.sizeOnly === true) {
      const size = await route.upstream.blobSize(route.repo, want.digest)
      return { size, start: 0, length: size, body: EMPTY_BODY }
    }
    const range = want.range
    if (range !== undefined && (range.kind !== 'from' || range.end !== undefined)) throw new Error('the upstream source resumes from an offset only')
    const got = await route.upstream.blob(route.repo, want.digest, range?.start ?? 0, want.validator)
    const length = got.size === undefined ? undefined : got.size - got.start
    return { size: got.size, start: got.start, length, body: arrivingBody(got.body), validator: got.etag }
  }
}
