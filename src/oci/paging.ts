// Pages of a sorted list as the distribution spec pages tags and the catalog:
// `n` items after `last`, and a Link to the next page when there is one.

type Query = { n?: number | undefined, last?: string | undefined }
type Page = { items: string[], link: string | undefined }

export function page (all: readonly string[], query: Query, path: string): Page {
  return pageOfSorted([...all].sort(), query, path)
}

/** `page` of a list already sorted (as `Array.prototype.sort` orders strings): no copy, no sort, a binary search for `last`. */
export function pageOfSorted (sorted: readonly string[], query: Query, path: string): Page {
  let from = 0
  if (query.last !== undefined) {
    let hi = sorted.length
    while (from < hi) {
      const mid = (from + hi) >>> 1
      if (sorted[mid]! > query.last) hi = mid; else from = mid + 1
    }
  }
  const to = query.n === undefined ? sorted.length : Math.min(sorted.length, from + query.n)
  const items = sorted.slice(from, to)
  if (query.n === undefined || to === sorted.length || query.n === 0) return { items, link: undefined }
  const next = new URLSearchParams({ n: String(query.n), last: items[items.length - 1]! })
  return { items, link: `<${path}?${next.toString()}>; rel="next"` }
}
