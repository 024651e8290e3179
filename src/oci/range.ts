// A single `Range: bytes=a-b` (RFC 9110 14.1.2). Multipart ranges are not
// used by registry clients; a request for several ranges gets the whole blob,
// which RFC 9110 allows.
import { RangeInvalid } from './errors.ts'

export interface ByteRange { readonly start: number, readonly end: number } // inclusive

/** undefined: serve the whole entity. Throws RangeInvalid (416) if unsatisfiable. */
export function parseRange (header: string | undefined, size: number | undefined): ByteRange | undefined {
  if (header === undefined) return undefined
  const m = /^\s*bytes\s*=\s*(\d*)\s*-\s*(\d*)\s*$/i.exec(header)
  if (m === null) {
    if (/^\s*bytes\s*=.*,/i.test(header)) return undefined
    throw new RangeInvalid(header.slice(0, 100), size)
  }
  const [, first, last] = m as unknown as [string, string, string]
  if (first === '' && last === '') throw new RangeInvalid(header, size)
  if (first === '') {
    // suffix range: the last N bytes
    if (size === undefined) throw new RangeInvalid(header, size)
    const n = Number(last)
    if (n === 0) throw new RangeInvalid(header, size)
    return { start: Math.max(0, size - n), end: size - 1 }
  }
  const start = Number(first)
  let end = last === '' ? Infinity : Number(last)
  if (!Number.isSafeInteger(start) || (end !== Infinity && !Number.isSafeInteger(end)) || end < start) throw new RangeInvalid(header, size)
  if (size !== undefined) {
    if (start >= size) throw new RangeInvalid(header, size)
    end = Math.min(end, size - 1)
  } else if (end === Infinity) {
    throw new RangeInvalid(header, size)
  }
  return { start, end }
}
