// Pages of a sorted list as the distribution spec pages tags and the catalog:
// `n` items after `last`, and a Link to the next page when there is one.

type Query = { n?: number | undefined, last?: string | undefined }
type Page = { items: string[], link: string | undefined }

export function page (all: readonly string[], query: Query, path: string): Page {
  return pageOfSorted([...all].sort(), query, path)
}

/** `page` of a list already sorted (as `Array.prototype.sort` orders strings): no copy, no sort, a binary search for `last`. */
export function pageOfSorted (sorted: readonly string[], query: Query, path: string): Page {
  const from = query.last === undefined ? 0 : firstAfter(sorted, query.last)
  const to = query.n === undefined ? sorted.length : Math.min(sorted.length, from + query.n)
  const items = sorted.slice(from, to)
  if (query.n === undefined || to === sorted.length || query.n === 0) return { items, link: undefined }
  const next = new URLSearchParams({ n: String(query.n), last: items[items.length - 1]! })
  return { items, link: `<${path}?${next.toString()}>; rel="next"` }
}

/** The index of the first item of `sorted` that sorts after `last` (its length when none does). */
export function firstAfter (sorted: readonly string[], last: string): number {
  let from = 0
  let to = sorted.length
  while (from < to) {
    const mid = (from + to) >>> 1
    if (sorted[mid]! > last) to = mid; else from = mid + 1
  }
  return from
}
