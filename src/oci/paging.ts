// Pages of a sorted list as the distribution spec pages tags and the catalog:
// `n` items after `last`, and a Link to the next page when there is one.

export function page (all: readonly string[], query: { n?: number | undefined, last?: string | undefined }, path: string): { items: string[], link: string | undefined } {
  let rest = [...all].sort()
  if (query.last !== undefined) rest = rest.filter(x => x > query.last!)
  if (query.n === undefined || rest.length <= query.n) return { items: rest, link: undefined }
  const items = rest.slice(0, query.n)
  if (query.n === 0) return { items, link: undefined }
  const next = new URLSearchParams({ n: String(query.n), last: items[items.length - 1]! })
  return { items, link: `<${path}?${next.toString()}>; rel="next"` }
}
