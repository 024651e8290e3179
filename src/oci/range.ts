// Byte ranges, in the three forms a registry meets them:
//   - a client's `Range: bytes=a-b` (RFC 9110 14.1.2), parsed once at the edge
//     into a RangeSpec and resolved against the blob's size where it is served;
//   - a server's `Content-Range: bytes a-b/size` (RFC 9110 14.4), when ferry
//     resumes or reads a part of a blob from another registry;
//   - the push API's upload ranges, `Content-Range: a-b` on a PATCH and
//     `Range: 0-b` in an upload's status (distribution-spec "Pushing a blob
//     in chunks"), which have no unit.
// Multipart ranges are not used by registry clients; a request for several
// ranges gets the whole blob, which RFC 9110 allows.
import { RangeInvalid } from './errors.ts'

/** Bytes start..end, both included, inside a blob. */
export interface ByteRange { readonly start: number, readonly end: number }

/** What a client asked for, before the size is known. */
export type RangeSpec =
  /** From `start` to `end` (included), or to the end of the blob. */
  | { readonly kind: 'from', readonly start: number, readonly end: number | undefined }
  /** The last `length` bytes. */
  | { readonly kind: 'suffix', readonly length: number }

/**
 * A client's Range header; undefined: serve the whole blob. As RFC 9110
 * 14.2 says: a unit other than bytes, or a value that is not a byte range
 * at all, is ignored (the whole blob); a last position past the end is
 * clamped to it. Throws RangeInvalid (416) for a range that is well formed
 * but cannot be satisfied (inverted, or a zero-length suffix).
 */
export function parseRangeHeader (header: string | undefined): RangeSpec | undefined {
  if (header === undefined) return undefined
  const m = /^\s*bytes\s*=\s*(\d*)\s*-\s*(\d*)\s*$/i.exec(header)
  if (m === null) return undefined
  const [, first, last] = m as unknown as [string, string, string]
  if (first === '' && last === '') return undefined
  if (first === '') {
    const length = Number(last)
    if (length === 0) throw new RangeInvalid(header)
    // a suffix longer than any blob is the whole blob
    return { kind: 'suffix', length: Number.isSafeInteger(length) ? length : Number.MAX_SAFE_INTEGER }
  }
  // positions past any possible size: a first one is unsatisfiable where it is served (416 with the size), a last one is clamped
  const start = Math.min(Number(first), Number.MAX_SAFE_INTEGER)
  const end = last === '' || !Number.isSafeInteger(Number(last)) ? undefined : Number(last)
  if (end !== undefined && end < start) throw new RangeInvalid(header.slice(0, 100))
  return { kind: 'from', start, end }
}

/** The bytes of `spec` in a blob of `size` (undefined: not known yet). Throws RangeInvalid (416, with the size) if unsatisfiable. */
export function resolveRange (spec: RangeSpec, size: number | undefined): ByteRange {
  const shown = spec.kind === 'suffix' ? `bytes=-${spec.length}` : `bytes=${spec.start}-${spec.end ?? ''}`
  if (spec.kind === 'suffix') {
    if (size === undefined) throw new RangeInvalid(shown)
    return { start: Math.max(0, size - spec.length), end: size - 1 }
  }
  if (size !== undefined) {
    if (spec.start >= size) throw new RangeInvalid(shown, size)
    return { start: spec.start, end: Math.min(spec.end ?? Infinity, size - 1) }
  }
  if (spec.end === undefined) throw new RangeInvalid(shown)
  return { start: spec.start, end: spec.end }
}

/** The whole-blob-or-range answer to a Range header for a blob of `size`: the two steps above in one. */
export function parseRange (header: string | undefined, size: number | undefined): ByteRange | undefined {
  const spec = parseRangeHeader(header)
  return spec === undefined ? undefined : resolveRange(spec, size)
}

/** From `offset` to the end: how a transfer is resumed. */
export function fromOffset (offset: number): RangeSpec {
  return { kind: 'from', start: offset, end: undefined }
}

/** `Range: bytes=<start>-[end]` for a request to another registry. */
export function rangeHeader (spec: RangeSpec): string {
  return spec.kind === 'suffix' ? `bytes=-${spec.length}` : `bytes=${spec.start}-${spec.end ?? ''}`
}

/** A server's `Content-Range: bytes a-b/size` (or `bytes a-b/*`); undefined when it is not one. */
export function parseContentRange (header: string | string[] | undefined): { start: number, end: number, size: number | undefined } | undefined {
  const v = Array.isArray(header) ? header[0] : header
  if (v === undefined) return undefined
  const m = /^bytes (\d+)-(\d+)\/(\d+|\*)$/.exec(v.trim())
  if (m === null) return undefined
  const start = Number(m[1]); const end = Number(m[2]); const size = m[3] === '*' ? undefined : Number(m[3])
  if (!Number.isSafeInteger(start) || !Number.isSafeInteger(end) || end < start || (size !== undefined && (!Number.isSafeInteger(size) || end >= size))) return undefined
  return { start, end, size }
}

/**
 * The push API's upload range, `a-b` (a PATCH's Content-Range, an upload
 * status's Range; some clients add `bytes ` or `bytes=`); undefined when it
 * is not one.
 */
export function parseUploadRange (header: string | string[] | undefined): ByteRange | undefined {
  const v = Array.isArray(header) ? header[0] : header
  if (v === undefined) return undefined
  const m = /^(?:bytes[ =])?(\d+)-(\d+)$/.exec(v.trim())
  if (m === null) return undefined
  const start = Number(m[1]); const end = Number(m[2])
  if (!Number.isSafeInteger(start) || !Number.isSafeInteger(end) || end < start) return undefined
  return { start, end }
}

/** The push API's `Range` for an upload holding `held` bytes: `0-<last>`, and `0-0` for an empty one as registries say it. */
export function uploadRange (held: number): string {
  return held > 0 ? `0-${held - 1}` : '0-0'
}

/** The same, read back: how many bytes a registry says an upload holds. */
export function heldByUpload (header: string | string[] | undefined): number {
  const r = parseUploadRange(header)
  if (r === undefined || r.start !== 0) return 0
  // "0-0" is what registries say for an empty upload too; a 1-byte upload is the same answer
  return r.end === 0 ? 0 : r.end + 1
}
