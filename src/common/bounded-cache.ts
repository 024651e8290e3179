// An LRU map capped at a number of entries that costs memory only for the
// entries it holds. lru-cache's `max` preallocates its index arrays for
// every entry it may ever hold (with a TTL, four arrays of `max`): the caps
// of 100,000 and 200,000 here cost about 20 MiB of heap on an idle proxy,
// marked on every full GC. Counting each entry as size 1 against `maxSize`
// keeps the same cap with storage that grows as entries come.
import { LRUCache } from 'lru-cache'

type Extra<K extends {}, V extends {}> = Pick<LRUCache.Options<K, V, unknown>, 'ttl' | 'allowStale' | 'noDeleteOnStaleGet'>

export function boundedCache<K extends {}, V extends {}> (entries: number, opts: Extra<K, V> = {}): LRUCache<K, V> {
  return new LRUCache<K, V>({ ...opts, maxSize: entries, sizeCalculation: () => 1 })
}
