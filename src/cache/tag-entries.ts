// A tag's entries: one per Accept set it was fetched with (digest, media
// type, when the upstream last confirmed it). An entry answers a request when
// its media type is one the client accepts and it was fetched with at least
// the client's Accept set (or exactly it): the upstream would have answered
// the same, and the cache never hands a client a type it did not accept.
import { accepts, isSubset, sameSet } from '../oci/media-types.ts'
import type { TagEntry } from '../state/region-state.ts'


/**
 * The Accept set of a pushed tag: a registry that was pushed one manifest
 * answers any client that accepts its type with it, whatever else it accepts.
 */
export const ANY_ACCEPT = '*'

export function pick (entries: readonly TagEntry[], accept: readonly string[]): TagEntry | undefined {
  const exact = entries.find(e => sameSet(e.accept, accept))
  if (exact !== undefined && (accept.length === 0 || accepts(accept, exact.mediaType))) return exact
  const pushed = entries.find(e => e.accept[0] === ANY_ACCEPT && (accept.length === 0 || accepts(accept, e.mediaType)))
  if (pushed !== undefined) return pushed
  if (accept.length === 0) return undefined
  return entries.find(e => accepts(accept, e.mediaType) && isSubset(accept, e.accept))
}
