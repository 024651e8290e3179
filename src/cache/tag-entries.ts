// A tag's entries: one per Accept set it was fetched with (digest, media
// type, when the upstream last confirmed it). An entry answers a request when
// its media type is one the client accepts and it was fetched with at least
// the client's Accept set (or exactly it): the upstream would have answered
// the same, and the cache never hands a client a type it did not accept.
import { accepts, isSubset, sameSet } from '../oci/media-types.ts'
import type { RegionState, TagEntry, TagKey } from '../store/region-state.ts'

const MAX_ENTRIES_PER_TAG = 8

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

/** Changes to tags' entries, one at a time per tag, so concurrent Accept sets do not lose each other. */
export class TagEntries {
  private readonly state: RegionState
  private readonly updates = new Map<string, Promise<void>>()

  constructor (state: RegionState) { this.state = state }

  /** Add or replace the entry for its Accept set. */
  put (key: TagKey, entry: TagEntry): Promise<void> {
    return this.update(key, entries => [entry, ...entries.filter(e => !sameSet(e.accept, entry.accept))].slice(0, MAX_ENTRIES_PER_TAG))
  }

  /** Forget the entry for this Accept set (the upstream no longer has the tag). */
  drop (key: TagKey, accept: readonly string[]): Promise<void> {
    return this.update(key, entries => entries.filter(e => !sameSet(e.accept, accept)))
  }

  private update (key: TagKey, change: (entries: readonly TagEntry[]) => readonly TagEntry[]): Promise<void> {
    const id = `${key.upstream}|${key.repo}|${key.tag}`
    const next = (this.updates.get(id) ?? Promise.resolve())
      .then(async () => { await this.state.putTag(key, change(await this.state.getTag(key))) })
    const tail = next.catch(() => {})
    this.updates.set(id, tail)
    void tail.then(() => { if (this.updates.get(id) === tail) this.updates.delete(id) })
    return next
  }
}
