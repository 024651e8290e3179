// How a tag's entries are kept, whatever stores them: one per Accept set,
// the newest first, at most eight.
import { sameSet } from '../oci/media-types.ts'
import type { TagEntry } from './region-state.ts'

export const MAX_ENTRIES_PER_TAG = 8

export function withEntry (entries: readonly TagEntry[], entry: TagEntry): TagEntry[] {
  return [entry, ...entries.filter(e => !sameSet(e.accept, entry.accept))].slice(0, MAX_ENTRIES_PER_TAG)
}

export function withoutAccept (entries: readonly TagEntry[], accept: readonly string[]): TagEntry[] {
  return entries.filter(e => !sameSet(e.accept, accept))
}

/** The field an entry is kept under: its Accept set. */
export function acceptKey (accept: readonly string[]): string {
  return accept.length === 0 ? '-' : accept.join(',')
}
