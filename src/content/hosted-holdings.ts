// What pushed content the region must keep whatever the cache's size: every
// blob and manifest a hosted repository links. Eviction is for cached
// (proxied) content, which can be fetched again; pushed bytes exist nowhere
// else, and leave only with garbage collection.
import type { RegionState } from '../state/region-state.ts'

export type Holdings = () => Promise<ReadonlySet<string>>

export function hostedHoldings (state: RegionState, hostedPrefixes: readonly string[]): Holdings | undefined {
  if (hostedPrefixes.length === 0) return undefined
  return async () => {
    const held = new Set<string>()
    for (const repo of await state.links.repositories()) {
      if (!hostedPrefixes.some(p => repo.startsWith(p))) continue
      for (const kind of ['blob', 'manifest'] as const) {
        for (const link of await state.links.list(repo, kind)) held.add(link.digest)
      }
    }
    return held
  }
}
