// Every place a blob's bytes can come from, behind one interface: this
// proxy's memory and disk (L1), the region's store, a fill another proxy of
// the region leads, another region, the upstream. The blob cache (cache.ts)
// asks them in order; what it gets from the last three it verifies through a
// fill before anyone can have the last byte.
import type { Body } from '../io/body.ts'
import type { RangeSpec } from '../oci/range.ts'
import type { Digest } from '../oci/reference.ts'
import type { Route } from '../upstream/router.ts'

export type BlobSourceName = 'memory' | 'l1' | 'store' | 'region-peer' | 'peer-region' | 'upstream'

export interface BlobWant {
  readonly digest: Digest
  /** The part wanted; undefined: all of it. Sources outside the region take `from` ranges only (a resume). */
  readonly range?: RangeSpec | undefined
  /** Only its size: no bytes move (a HEAD). */
  readonly sizeOnly?: boolean
  /** The repository it is wanted under, for the sources outside the region (the upstream, other regions). */
  readonly route?: Route | undefined
  /** A validator an earlier answer of this source gave, so a resume gets the same bytes (If-Range). */
  readonly validator?: string | undefined
}

export interface OpenedBlob {
  /** The whole blob's size, when the source knows it. */
  readonly size: number | undefined
  /** Offset of the body's first byte in the blob. 0 when the source sent the whole blob though asked for a part. */
  readonly start: number
  /** Bytes in the body, when known. */
  readonly length: number | undefined
  /** Written or discarded by whoever opened it. */
  readonly body: Body
  readonly validator?: string | undefined
}

export interface BlobSource {
  readonly name: BlobSourceName
  /**
   * The blob (or the part wanted): undefined when this source does not hold
   * it. Throws when the source failed, or (the upstream, which has the last
   * word) when it says the blob does not exist.
   */
  open (want: BlobWant): Promise<OpenedBlob | undefined>
}
